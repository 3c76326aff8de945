//! `freefall` and `sweep`: the height of a body thrown straight up, every `dt` seconds until
//! it reaches the ground.
//!
//! Without drag every point is the closed form y(t) = y0 + v0·t − g·t²/2 at t = i·dt, so any
//! range of points can be computed on its own. With quadratic drag (a = −g − K·v·|v|) there
//! is no closed form: the trajectory is integrated with RK4, which is sequential. A first pass
//! ([`survey`]) integrates the whole flight once, finds where it lands and keeps the state
//! every [`CHECKPOINT_SPACING`] points; each chunk then restarts from the checkpoint at or
//! before its start. Both passes take the very same steps, so a chunk's heights are
//! bit-identical to the survey's, whoever computes them.

use super::{Cancel, KernelError};
pub use proto::job::SWEEP_WIDTH;
use proto::job::{sweep_drag, Fall, Landing};

/// The most points one trajectory may have (a bound on a job's size, not on memory: points
/// stream to the client through a window).
pub const MAX_POINTS: u64 = 10_000_000_000;
/// Points between two checkpoints of a trajectory with drag.
pub const CHECKPOINT_SPACING: u64 = 1 << 16;
/// Points (or sweep values) per chunk at most, so one chunk's result stays well inside a
/// frame: 512 KiB of heights.
pub const MAX_CHUNK_POINTS: u64 = 1 << 16;
/// Sweep values at most.
pub const MAX_SWEEP_STEPS: u64 = 1_000_000;

/// Points computed between two looks at the cancellation flag.
const CHECK_EVERY: u64 = 1 << 16;

/// Why a throw cannot be computed, in words for the user.
pub fn validate(fall: &Fall) -> Result<(), String> {
    let Fall { y0, v0, g, dt, drag } = *fall;
    if ![y0, v0, g, dt, drag].iter().all(|x| x.is_finite()) {
        return Err("freefall parameters must be finite numbers".into());
    }
    if dt <= 0.0 {
        return Err(format!("--dt must be positive, not {dt}"));
    }
    if g <= 0.0 {
        return Err(format!("--g must be positive (the body must come down), not {g}"));
    }
    if y0 < 0.0 {
        return Err(format!("--y0 must be at or above the ground, not {y0}"));
    }
    if drag < 0.0 {
        return Err(format!("--drag must be zero or positive, not {drag}"));
    }
    // RK4 on v' = −drag·v·|v| is stable while dt·2·drag·|v| stays under ~2.78; |v| is at most
    // the larger of the throw's speed and the terminal speed.
    let fastest = v0.abs().max((g / drag).sqrt());
    let stiffness = dt * 2.0 * drag * fastest;
    if drag > 0.0 && (stiffness.is_nan() || stiffness > 2.5) {
        return Err(format!(
            "--dt {dt:e} is too coarse for --drag {drag:e}: the integration would diverge; \
             lower --dt (below {:.3e})",
            2.5 / (2.0 * drag * fastest)
        ));
    }
    let points = drag_flight_bound(fall) / dt;
    if drag > 0.0 && (points.is_nan() || points >= MAX_POINTS as f64) {
        return Err(format!(
            "with --drag {drag:e} and --dt {dt:e} the body would take over {MAX_POINTS} points \
             to land: raise --dt or lower --drag"
        ));
    }
    Ok(())
}

/// The flight time of a throw with drag, known before integrating it, from the closed forms
/// of the continuous motion (v_t = √(g/drag) the terminal speed): the rise takes
/// (v_t/g)·atan(v0/v_t) and climbs (v_t²/2g)·ln(1 + v0²/v_t²); the fall from rest from height
/// h takes (v_t/g)·acosh(e^(h·drag)). A body thrown down lands sooner than this.
pub fn drag_flight_bound(fall: &Fall) -> f64 {
    let Fall { y0, v0, g, drag, .. } = *fall;
    let terminal = (g / drag).sqrt();
    let r = v0.max(0.0) / terminal;
    // ln(1 + r²), without r² overflowing.
    let ln_1p_r2 = if r > 1e8 { 2.0 * r.ln() } else { (r * r).ln_1p() };
    let top = y0 + terminal * terminal / (2.0 * g) * ln_1p_r2;
    let x = top * drag;
    // acosh(e^x) = x + ln(1 + √(1 − e^(−2x))), accurate for tiny and huge x alike.
    let acosh_exp = x + (-(-2.0 * x).exp_m1()).sqrt().ln_1p();
    terminal / g * (r.atan() + acosh_exp)
}

/// Height at point `i` without drag.
pub fn vacuum_height(fall: &Fall, i: u64) -> f64 {
    let t = fall.time(i);
    fall.y0 + fall.v0 * t - 0.5 * fall.g * t * t
}

/// Where a throw without drag lands, in closed form.
pub fn vacuum_landing(fall: &Fall) -> Landing {
    let impact_speed = (fall.v0 * fall.v0 + 2.0 * fall.g * fall.y0).sqrt();
    let ground_time = (fall.v0 + impact_speed) / fall.g;
    let max_height = fall.y0 + fall.v0.max(0.0).powi(2) / (2.0 * fall.g);
    Landing { ground_time, impact_speed, max_height }
}

/// Points of a throw without drag: every i with y(i·dt) ≥ 0.
pub fn vacuum_points(fall: &Fall) -> Result<u64, KernelError> {
    let estimate = (vacuum_landing(fall).ground_time / fall.dt).floor();
    if estimate.is_nan() || estimate >= MAX_POINTS as f64 {
        return Err(too_many_points());
    }
    // The estimate can be off by one either way through rounding: settle it on the heights
    // the chunks will compute.
    let mut points = estimate as u64 + 1;
    while points > 1 && vacuum_height(fall, points - 1) < 0.0 {
        points -= 1;
    }
    while vacuum_height(fall, points) >= 0.0 {
        points += 1;
    }
    Ok(points)
}

/// Heights of points `start..end` without drag.
pub fn vacuum_heights(
    fall: &Fall,
    start: u64,
    end: u64,
    cancel: &Cancel,
) -> Result<Vec<f64>, KernelError> {
    let mut heights = Vec::with_capacity((end - start) as usize);
    let mut from = start;
    while from < end {
        cancel.check()?;
        let to = end.min(from + CHECK_EVERY);
        heights.extend((from..to).map(|i| vacuum_height(fall, i)));
        from = to;
    }
    Ok(heights)
}

/// One RK4 step of `dt` from `(y, v)`.
fn rk4_step(fall: &Fall, y: f64, v: f64) -> (f64, f64) {
    let accel = |v: f64| -fall.g - fall.drag * v * v.abs();
    let h = fall.dt;
    let (k1y, k1v) = (v, accel(v));
    let (k2y, k2v) = (v + 0.5 * h * k1v, accel(v + 0.5 * h * k1v));
    let (k3y, k3v) = (v + 0.5 * h * k2v, accel(v + 0.5 * h * k2v));
    let (k4y, k4v) = (v + h * k3v, accel(v + h * k3v));
    let y = y + h / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y);
    let v = v + h / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
    (y, v)
}

/// Heights of points `start..end` with drag, integrating from state `(y, v)` at point `at`
/// (`at ≤ start`).
pub fn drag_heights(
    fall: &Fall,
    (at, mut y, mut v): (u64, f64, f64),
    start: u64,
    end: u64,
    cancel: &Cancel,
) -> Result<Vec<f64>, KernelError> {
    if at > start {
        return Err(KernelError::BadRequest(format!(
            "checkpoint {at} is after the chunk's start {start}"
        )));
    }
    let mut heights = Vec::with_capacity((end - start) as usize);
    for i in at..end {
        if i % CHECK_EVERY == 0 {
            cancel.check()?;
        }
        if i >= start {
            heights.push(y);
        }
        (y, v) = rk4_step(fall, y, v);
    }
    Ok(heights)
}

/// A whole trajectory with drag, integrated once.
#[derive(Debug, PartialEq)]
pub struct Survey {
    pub points: u64,
    pub landing: Landing,
    /// State (y, v) at points 0, spacing, 2·spacing, ... (before `points`).
    pub checkpoints: Vec<(f64, f64)>,
}

/// Integrates the whole flight: how many points it has, where it lands, and (when `spacing`
/// is given) its state every `spacing` points.
pub fn survey(fall: &Fall, spacing: Option<u64>, cancel: &Cancel) -> Result<Survey, KernelError> {
    let (mut y, mut v) = (fall.y0, fall.v0);
    let mut max_height = y;
    let mut checkpoints = vec![];
    for i in 0..MAX_POINTS {
        if i % CHECK_EVERY == 0 {
            cancel.check()?;
        }
        if spacing.is_some_and(|s| i % s == 0) {
            checkpoints.push((y, v));
        }
        let (ny, nv) = rk4_step(fall, y, v);
        if !(ny.is_finite() && nv.is_finite()) {
            return Err(KernelError::BadRequest(
                "the integration diverged: lower --dt or --drag".into(),
            ));
        }
        if ny < 0.0 {
            // The ground lies between this point and the next: interpolate linearly.
            let fraction = if y > ny { y / (y - ny) } else { 0.0 };
            let landing = Landing {
                ground_time: (i as f64 + fraction) * fall.dt,
                impact_speed: (v + fraction * (nv - v)).abs(),
                max_height,
            };
            return Ok(Survey { points: i + 1, landing, checkpoints });
        }
        (y, v) = (ny, nv);
        max_height = max_height.max(y);
    }
    Err(too_many_points())
}

/// Sweep values `start..end`: a whole trajectory each, [`SWEEP_WIDTH`] numbers per value.
pub fn sweep(
    fall: &Fall,
    (from, to, steps): (f64, f64, u64),
    start: u64,
    end: u64,
    cancel: &Cancel,
) -> Result<Vec<f64>, KernelError> {
    let mut values = Vec::with_capacity((end - start) as usize * SWEEP_WIDTH);
    for i in start..end {
        let fall = Fall { drag: sweep_drag(from, to, steps, i), ..*fall };
        let landing = survey(&fall, None, cancel)?.landing;
        values.extend([landing.ground_time, landing.impact_speed, landing.max_height]);
    }
    Ok(values)
}

fn too_many_points() -> KernelError {
    KernelError::BadRequest(format!(
        "the body does not reach the ground within {MAX_POINTS} points: raise --dt"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notebooks_throw_lands_after_2048_7_seconds() {
        let fall = Fall::default();
        let points = vacuum_points(&fall).unwrap();
        // t = (v0 + √(v0² + 2·g·y0)) / g = 2048.6874 s: points at i·dt for i in 0..=2048687.
        assert_eq!(points, 2_048_688);
        assert!(vacuum_height(&fall, points - 1) >= 0.0);
        assert!(vacuum_height(&fall, points) < 0.0);
        let landing = vacuum_landing(&fall);
        assert!((landing.ground_time - 2048.687409).abs() < 1e-6, "{landing:?}");
    }

    #[test]
    fn rk4_without_drag_matches_the_closed_form() {
        // RK4 is exact for a constant acceleration, up to rounding.
        let fall = Fall { dt: 0.01, ..Fall::default() };
        let survey = survey(&fall, Some(1000), &Cancel::default()).unwrap();
        assert_eq!(survey.points, vacuum_points(&fall).unwrap());
        let exact = vacuum_landing(&fall);
        assert!((survey.landing.ground_time - exact.ground_time).abs() < 1e-6);
        assert!((survey.landing.impact_speed - exact.impact_speed).abs() < 1e-3);
        assert!((survey.landing.max_height - exact.max_height).abs() < 1.0);
        let heights = drag_heights(&fall, (0, fall.y0, fall.v0), 0, 5000, &Cancel::default());
        for (i, y) in heights.unwrap().into_iter().enumerate() {
            assert!((y - vacuum_height(&fall, i as u64)).abs() < 1e-6 * y.abs().max(1.0));
        }
    }

    #[test]
    fn chunks_from_checkpoints_are_bit_identical_to_one_pass() {
        let fall = Fall { drag: 1e-4, dt: 0.01, ..Fall::default() };
        let cancel = Cancel::default();
        let spacing = 1000;
        let s = survey(&fall, Some(spacing), &cancel).unwrap();
        let whole = drag_heights(&fall, (0, fall.y0, fall.v0), 0, s.points, &cancel).unwrap();
        let (start, end) = (2_500, s.points.min(7_777));
        let k = start / spacing;
        let (y, v) = s.checkpoints[k as usize];
        let part = drag_heights(&fall, (k * spacing, y, v), start, end, &cancel).unwrap();
        assert_eq!(part, whole[start as usize..end as usize]);
        // The trajectory ends where the survey said, and drag slows the body down.
        assert!(*whole.last().unwrap() >= 0.0);
        let vacuum = vacuum_landing(&fall);
        assert!(s.landing.impact_speed < vacuum.impact_speed);
        assert!(s.landing.max_height < vacuum.max_height);
        // Terminal speed sqrt(g/K) ≈ 313 m/s.
        assert!((s.landing.impact_speed - (fall.g / fall.drag).sqrt()).abs() < 1.0);
    }

    #[test]
    fn a_sweep_gives_one_landing_per_drag_value() {
        let fall = Fall { dt: 0.05, ..Fall::default() };
        let values = sweep(&fall, (0.0, 1e-3, 5), 0, 5, &Cancel::default()).unwrap();
        assert_eq!(values.len(), 5 * SWEEP_WIDTH);
        let times: Vec<f64> = values.chunks(SWEEP_WIDTH).map(|v| v[0]).collect();
        assert!((times[0] - vacuum_landing(&fall).ground_time).abs() < 1e-6);
        let heights: Vec<f64> = values.chunks(SWEEP_WIDTH).map(|v| v[2]).collect();
        assert!(heights.windows(2).all(|w| w[1] < w[0]), "more drag, lower peak: {heights:?}");
        assert_eq!(sweep_drag(0.0, 1.0, 5, 4), 1.0);
    }

    #[test]
    fn the_flight_bound_holds_and_is_close() {
        let ms = |drag: f64, v0: f64, y0: f64| Fall { drag, v0, y0, dt: 0.01, ..Fall::default() };
        for fall in [
            ms(1e-4, 10_000.0, 100_000.0),
            ms(1e-2, 50.0, 10.0),
            ms(1e-12, 100.0, 0.0),
            Fall { dt: 1e-4, ..ms(1.0, -500.0, 1_000.0) },
            ms(1e-30, 10.0, 5.0),
        ] {
            let bound = drag_flight_bound(&fall);
            let flight = survey(&fall, None, &Cancel::default()).unwrap().landing.ground_time;
            assert!(flight <= bound + fall.dt, "{fall:?}: {flight} over {bound}");
            assert!(bound < flight * 1.01 + 2.0 * fall.dt, "{fall:?}: {bound} far over {flight}");
        }
        // Dropped from rest with drag 1: t = acosh(e^h)/√g exactly (g = 9.81, h = 10).
        let dropped = Fall { y0: 10.0, v0: 0.0, drag: 1.0, ..Fall::default() };
        let exact = (10f64).exp().acosh() / 9.81f64.sqrt();
        assert!((drag_flight_bound(&dropped) - exact).abs() < 1e-12);
        // Tiny drag: the vacuum's time to the ground, √(2h/g).
        let vacuum = Fall { y0: 10.0, v0: 0.0, drag: 1e-300, ..Fall::default() };
        assert!((drag_flight_bound(&vacuum) - (20.0f64 / 9.81).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn bad_throws_are_refused_and_cancellation_stops_the_survey() {
        for bad in [
            Fall { dt: 0.0, ..Fall::default() },
            Fall { g: -9.81, ..Fall::default() },
            Fall { y0: -1.0, ..Fall::default() },
            Fall { drag: f64::NAN, ..Fall::default() },
            // Physically meaningless: refused at once instead of integrated for minutes.
            Fall { drag: 1e308, ..Fall::default() },
            Fall { dt: 1e-300, drag: 1e-4, ..Fall::default() },
            Fall { dt: 0.01, drag: 1.0, v0: -500.0, ..Fall::default() },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
        let e = validate(&Fall { dt: 1e-300, drag: 1e-4, ..Fall::default() }).unwrap_err();
        assert_eq!(
            e,
            "with --drag 1e-4 and --dt 1e-300 the body would take over 10000000000 points to \
             land: raise --dt or lower --drag"
        );
        let e = validate(&Fall { drag: 1e308, ..Fall::default() }).unwrap_err();
        assert!(e.starts_with("--dt 1e-3 is too coarse for --drag 1e308"), "{e}");
        let cancel = Cancel::default();
        cancel.cancel();
        assert_eq!(survey(&Fall::default(), None, &cancel), Err(KernelError::Cancelled));
        // On the ground and falling: one point.
        let dropped = Fall { y0: 0.0, v0: -1.0, ..Fall::default() };
        assert_eq!(vacuum_points(&dropped).unwrap(), 1);
        assert_eq!(survey(&dropped, None, &Cancel::default()).unwrap().points, 1);
    }
}
