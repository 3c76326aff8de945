//! The decision, sans-IO: from the laptop's facts (power, heat, minute of the day) and its
//! owner's [`Policy`] to the slots its worker gives now and why not all of them.
//!
//! Rules, each giving a number of slots; the fewest wins (the first of equals names the
//! reason): about to sleep none; outside `--hours` none; on battery what `--on-battery`
//! says, none below `--battery-below`; in use (keyboard or mouse within `--idle-after`) what
//! `--in-use` says; too hot, one slot fewer per [`HEAT_STEP`] while the hottest reading is
//! at or above `--max-temp`, all back once it falls [`COOL_BY`](proto::policy::COOL_BY)
//! degrees below (between the two marks nothing changes: a reading wobbling around one mark
//! does not make the slots flap).

use proto::policy::{Holdback, Mode, Policy, Standing, COOL_BY};
use std::time::Duration;

/// How long the slots stay at one step of the heat rule before another is given up: a slot's
/// heat takes seconds to leave the package and the fan to catch up.
pub const HEAT_STEP: Duration = Duration::from_secs(10);

/// Where the laptop's power comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Mains,
    /// On battery, with its charge in percent when known.
    Battery {
        charge: Option<u8>,
    },
    /// No power supply is listed (a desktop, a virtual machine): as on mains.
    Unknown,
}

/// Whether someone uses the laptop, as far as the worker can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// logind's idle hint: idle for this long, or not idle (`None`: someone is there).
    Idle(Option<Duration>),
    /// Keyboard and mouse interrupts counted so far (the fallback without logind): a new
    /// count is input now.
    Interrupts(u64),
    /// Nothing says.
    Unknown,
}

/// What the laptop says about itself at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facts {
    /// The machine is about to sleep (or asleep).
    pub sleeping: bool,
    pub power: Power,
    pub input: Input,
    /// The hottest reading in °C (`None`: no sensor).
    pub celsius: Option<f64>,
    /// Minutes since local midnight (0 to 1439).
    pub minute: u16,
}

/// The rules and what the heat rule remembers.
#[derive(Debug)]
pub struct Governor {
    policy: Policy,
    /// The worker's slots in full.
    full: u32,
    /// Slots the heat rule gives up now, and when it last gave one up.
    heat_cut: u32,
    last_cut: Option<Duration>,
    /// Input interrupts last counted, and when that count last moved.
    interrupts: Option<u64>,
    last_input: Option<Duration>,
}

impl Governor {
    pub fn new(policy: Policy, full: u32) -> Governor {
        Governor { policy, full, heat_cut: 0, last_cut: None, interrupts: None, last_input: None }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The slots given at time `now` (any monotonic origin) with these facts.
    pub fn decide(&mut self, now: Duration, facts: &Facts) -> Standing {
        let full = self.full;
        let mut fewest: Option<(u32, Holdback)> = None;
        let mut rule = |slots: u32, why: Holdback| {
            if slots < full && fewest.as_ref().is_none_or(|(n, _)| slots < *n) {
                fewest = Some((slots, why));
            }
        };
        if facts.sleeping {
            rule(0, Holdback::Sleeping);
        }
        if self.policy.hours.as_ref().is_some_and(|hours| !hours.contain(facts.minute)) {
            rule(0, Holdback::Hours);
        }
        if let Power::Battery { charge } = facts.power {
            let low =
                self.policy.battery_below.is_some_and(|below| charge.is_some_and(|c| c < below));
            let slots = if low { 0 } else { mode_slots(self.policy.on_battery, full) };
            rule(slots, Holdback::Battery { charge });
        }
        if self.in_use(now, facts.input) {
            rule(mode_slots(self.policy.in_use, full), Holdback::InUse);
        }
        if let Some(celsius) = facts.celsius {
            self.heat(now, celsius);
            rule(
                full - self.heat_cut,
                Holdback::Heat { celsius: celsius.round().clamp(0.0, 250.0) as u16 },
            );
        } else {
            (self.heat_cut, self.last_cut) = (0, None);
        }
        match fewest {
            Some((slots, why)) => Standing { slots, why: Some(why) },
            None => Standing { slots: full, why: None },
        }
    }

    /// Whether someone used the laptop within `--idle-after`: logind's word where it has one,
    /// else the last time the input interrupts moved (not before the worker saw them move).
    fn in_use(&mut self, now: Duration, input: Input) -> bool {
        match input {
            Input::Idle(None) => true,
            Input::Idle(Some(idle)) => idle < self.policy.idle_after,
            Input::Interrupts(count) => {
                if self.interrupts.is_some_and(|seen| seen != count) {
                    self.last_input = Some(now);
                }
                self.interrupts = Some(count);
                self.last_input.is_some_and(|at| now.saturating_sub(at) < self.policy.idle_after)
            }
            Input::Unknown => false,
        }
    }

    /// The heat rule's steps: one slot more given up per [`HEAT_STEP`] at or above the mark,
    /// all back below the lower mark.
    fn heat(&mut self, now: Duration, celsius: f64) {
        let max = f64::from(self.policy.max_temp);
        if celsius >= max {
            let due = self.last_cut.is_none_or(|last| now.saturating_sub(last) >= HEAT_STEP);
            if due && self.heat_cut < self.full {
                self.heat_cut += 1;
                self.last_cut = Some(now);
            }
        } else if celsius < max - f64::from(COOL_BY) {
            (self.heat_cut, self.last_cut) = (0, None);
        }
    }
}

/// The slots a mode gives of `full`.
fn mode_slots(mode: Mode, full: u32) -> u32 {
    match mode {
        Mode::Pause => 0,
        Mode::Slots(n) => n.min(full),
        Mode::Run => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAINS: Facts = Facts {
        sleeping: false,
        power: Power::Mains,
        input: Input::Unknown,
        celsius: None,
        minute: 12 * 60,
    };

    fn battery(charge: u8) -> Facts {
        Facts { power: Power::Battery { charge: Some(charge) }, ..MAINS }
    }

    fn at(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn given(slots: u32, why: Holdback) -> Standing {
        Standing { slots, why: Some(why) }
    }

    const ALL: Standing = Standing { slots: 4, why: None };

    #[test]
    fn on_battery_the_worker_does_what_the_policy_says() {
        let mut g = Governor::new(Policy::default(), 4);
        assert_eq!(g.decide(at(0), &MAINS), ALL);
        assert_eq!(g.decide(at(0), &Facts { power: Power::Unknown, ..MAINS }), ALL);
        let b = Holdback::Battery { charge: Some(80) };
        assert_eq!(g.decide(at(1), &battery(80)), given(0, b.clone()), "pause by default");
        assert_eq!(g.decide(at(2), &MAINS), ALL, "plugged in: all again");
        let slots = Policy { on_battery: Mode::Slots(1), ..Policy::default() };
        assert_eq!(Governor::new(slots, 4).decide(at(0), &battery(80)), given(1, b.clone()));
        let more = Policy { on_battery: Mode::Slots(9), ..Policy::default() };
        assert_eq!(Governor::new(more, 4).decide(at(0), &battery(80)), ALL, "slots=9 of 4: all");
        let run = Policy { on_battery: Mode::Run, ..Policy::default() };
        assert_eq!(Governor::new(run, 4).decide(at(0), &battery(80)), ALL);
        let unknown = Facts { power: Power::Battery { charge: None }, ..MAINS };
        let mut g = Governor::new(Policy::default(), 4);
        assert_eq!(g.decide(at(0), &unknown), given(0, Holdback::Battery { charge: None }));
    }

    #[test]
    fn below_the_charge_mark_it_pauses_whatever_on_battery_says() {
        let run = Policy { on_battery: Mode::Run, battery_below: Some(30), ..Policy::default() };
        let mut g = Governor::new(run, 4);
        assert_eq!(g.decide(at(0), &battery(30)), ALL, "at the mark: still runs");
        let low = Holdback::Battery { charge: Some(29) };
        assert_eq!(g.decide(at(0), &battery(29)), given(0, low));
        let slots =
            Policy { on_battery: Mode::Slots(2), battery_below: Some(30), ..Policy::default() };
        let mut g = Governor::new(slots, 4);
        assert_eq!(g.decide(at(0), &battery(50)).slots, 2);
        assert_eq!(g.decide(at(0), &battery(10)).slots, 0);
        // An unknown charge is not below any mark.
        let unknown = Facts { power: Power::Battery { charge: None }, ..MAINS };
        assert_eq!(g.decide(at(0), &unknown).slots, 2);
        // On mains the charge does not matter.
        let mut g = Governor::new(Policy { battery_below: Some(30), ..Policy::default() }, 4);
        assert_eq!(g.decide(at(0), &MAINS), ALL);
    }

    #[test]
    fn outside_its_hours_it_gives_nothing() {
        let night = Policy { hours: Some("22:00-07:00".parse().unwrap()), ..Policy::default() };
        let mut g = Governor::new(night, 4);
        assert_eq!(g.decide(at(0), &MAINS), given(0, Holdback::Hours), "noon");
        assert_eq!(g.decide(at(0), &Facts { minute: 23 * 60, ..MAINS }), ALL);
        assert_eq!(g.decide(at(0), &Facts { minute: 6 * 60 + 59, ..MAINS }), ALL);
        assert_eq!(g.decide(at(0), &Facts { minute: 7 * 60, ..MAINS }).slots, 0);
        // Both rules hold: the first of equals names the reason.
        assert_eq!(g.decide(at(0), &battery(50)), given(0, Holdback::Hours));
    }

    #[test]
    fn heat_gives_up_a_slot_per_step_and_all_come_back_below_the_lower_mark() {
        let mut g = Governor::new(Policy::default(), 3); // 85 °C, back below 75 °C
        let hot = |c: f64| Facts { celsius: Some(c), ..MAINS };
        let all = Standing { slots: 3, why: None };
        assert_eq!(g.decide(at(0), &hot(84.9)), all);
        assert_eq!(
            g.decide(at(1), &hot(85.0)),
            given(2, Holdback::Heat { celsius: 85 }),
            "at once"
        );
        assert_eq!(g.decide(at(5), &hot(90.0)).slots, 2, "not before a step");
        assert_eq!(g.decide(at(11), &hot(91.4)), given(1, Holdback::Heat { celsius: 91 }));
        assert_eq!(g.decide(at(21), &hot(88.0)).slots, 0);
        assert_eq!(g.decide(at(31), &hot(88.0)).slots, 0, "never below none");
        // Between the marks, wobbling: nothing changes either way.
        for (t, c) in [(32, 84.0), (33, 76.0), (34, 80.0), (35, 75.0)] {
            assert_eq!(g.decide(at(t), &hot(c)).slots, 0, "{c} °C");
        }
        assert_eq!(g.decide(at(36), &hot(74.9)), all, "below the lower mark: all back");
        assert_eq!(g.decide(at(37), &hot(84.0)), all, "and they stay below the upper one");
        assert_eq!(g.decide(at(38), &hot(86.0)).slots, 2, "a new rise cuts at once again");
        // A sensor gone: the heat rule lets go.
        assert_eq!(g.decide(at(39), &MAINS), all);
        assert_eq!(g.decide(at(40), &hot(86.0)).slots, 2);
    }

    #[test]
    fn the_fewest_slots_win_and_name_the_reason() {
        let policy = Policy { on_battery: Mode::Slots(2), ..Policy::default() };
        let mut g = Governor::new(policy, 4);
        let hot_battery = Facts { celsius: Some(99.0), ..battery(60) };
        assert_eq!(g.decide(at(0), &hot_battery), given(2, Holdback::Battery { charge: Some(60) }));
        assert_eq!(g.decide(at(10), &hot_battery).slots, 2, "3 from the heat: the battery's 2 win");
        assert_eq!(g.decide(at(20), &hot_battery), given(1, Holdback::Heat { celsius: 99 }));
        assert_eq!(g.policy().on_battery, Mode::Slots(2));
    }

    #[test]
    fn in_use_by_logind_or_by_input_interrupts_the_worker_does_what_the_policy_says() {
        let policy = Policy { in_use: Mode::Slots(1), idle_after: at(180), ..Policy::default() };
        let mut g = Governor::new(policy, 4);
        let idle = |input| Facts { input, ..MAINS };
        assert_eq!(g.decide(at(0), &idle(Input::Idle(None))), given(1, Holdback::InUse));
        assert_eq!(g.decide(at(0), &idle(Input::Idle(Some(at(179))))).slots, 1);
        assert_eq!(g.decide(at(0), &idle(Input::Idle(Some(at(180))))), ALL);
        assert_eq!(g.decide(at(0), &idle(Input::Unknown)), ALL);
        // Interrupts: the first count is no input; a moved one is, for idle_after.
        assert_eq!(g.decide(at(10), &idle(Input::Interrupts(500))), ALL);
        assert_eq!(g.decide(at(11), &idle(Input::Interrupts(500))), ALL);
        assert_eq!(g.decide(at(12), &idle(Input::Interrupts(503))).slots, 1);
        assert_eq!(g.decide(at(191), &idle(Input::Interrupts(503))).slots, 1);
        assert_eq!(g.decide(at(192), &idle(Input::Interrupts(503))), ALL, "idle for 180 s");
        assert_eq!(g.decide(at(200), &idle(Input::Interrupts(504))).slots, 1, "back");
        let pause = Policy { in_use: Mode::Pause, ..Policy::default() };
        assert_eq!(Governor::new(pause, 4).decide(at(0), &idle(Input::Idle(None))).slots, 0);
        // The default: run while in use (the slots' priority keeps the user's programs fast).
        assert_eq!(
            Governor::new(Policy::default(), 4).decide(at(0), &idle(Input::Idle(None))),
            ALL
        );
    }

    #[test]
    fn about_to_sleep_it_gives_nothing_whatever_else_holds() {
        let mut g = Governor::new(Policy::default(), 4);
        let sleeping = Facts { sleeping: true, celsius: Some(99.0), ..battery(10) };
        assert_eq!(g.decide(at(0), &sleeping), given(0, Holdback::Sleeping));
        assert_eq!(
            g.decide(at(1), &Facts { sleeping: true, ..MAINS }),
            given(0, Holdback::Sleeping)
        );
    }
}
