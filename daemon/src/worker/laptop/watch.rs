//! The driver of [`super::govern`]: reads the laptop's facts every [`EVERY`] off the async
//! runtime (and at once when the bus says something changed), decides, and publishes the
//! worker's standing when it changes (each change said once in the log). The session tells
//! the coordinator; running command units are suspended while it gives no slot, and
//! continued after.

use super::bus::{self, BusFacts, Sleep};
use super::govern::{Facts, Governor, Input, Power};
use super::sense::Sensors;
use proto::policy::{Policy, Standing};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the facts are read: a few small files each time (its CPU cost is in the
/// README); a laptop unplugged stops its units within this, and the read.
pub const EVERY: Duration = Duration::from_millis(500);

/// What the worker gives, as it changes.
#[derive(Clone, Debug)]
pub struct Given {
    /// The slots given now and why not all.
    pub standing: watch::Receiver<Standing>,
    /// Whether it gives none: its command units are suspended meanwhile.
    pub paused: watch::Receiver<bool>,
    /// Sleep, as logind announces it.
    pub sleep: Sleep,
}

impl Given {
    /// All of `slots`, always: a worker without laptop rules (`marmotd local`'s).
    pub fn all(slots: u32) -> Given {
        let (_, standing) = watch::channel(Standing { slots, why: None });
        let (_, paused) = watch::channel(false);
        Given { standing, paused, sleep: Sleep::never() }
    }
}

/// Decides once now, then every [`EVERY`] and at each change the bus reports, until `stop`,
/// in tasks of `tasks`.
pub async fn start(
    policy: Policy,
    slots: u32,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Given {
    let sensors = Sensors::from_env();
    tracing::info!(
        "laptop rules: on battery {}{}; in use {} (input within {}); at most {} °C; {}; reading {}",
        policy.on_battery,
        policy.battery_below.map(|p| format!(" (pause below {p}%)")).unwrap_or_default(),
        policy.in_use,
        humantime::format_duration(policy.idle_after),
        policy.max_temp,
        policy.hours.as_ref().map_or("all day".to_string(), |h| format!("working {h}")),
        sensors.describe(),
    );
    let (mut bus_facts, sleep) = match bus::watch(tasks, stop.clone()).await {
        Some((facts, sleep)) => (facts, sleep),
        None => (watch::Sender::new(BusFacts::default()).subscribe(), Sleep::never()),
    };
    let mut sleeping = sleep.sleeping.clone();
    let mut governor = Governor::new(policy, slots);
    let origin = Instant::now();
    let facts =
        |read: Facts, bus: &BusFacts, sleeping: bool| merge(read, bus, sleeping, SystemTime::now());
    let first =
        facts(read(&sensors).await, &bus_facts.borrow_and_update(), *sleeping.borrow_and_update());
    let first = governor.decide(origin.elapsed(), &first);
    if first.why.is_some() {
        say(&first, slots);
    }
    let (standing_tx, standing) = watch::channel(first.clone());
    let (paused_tx, paused) = watch::channel(first.slots == 0);
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
                Ok(()) = bus_facts.changed() => {}
                Ok(()) = sleeping.changed() => {}
            }
            let read = read(&sensors).await;
            let now = facts(read, &bus_facts.borrow_and_update(), *sleeping.borrow_and_update());
            let now = governor.decide(origin.elapsed(), &now);
            if *standing_tx.borrow() != now {
                say(&now, slots);
                paused_tx.send_replace(now.slots == 0);
                standing_tx.send_replace(now);
            }
        }
    });
    Given { standing, paused, sleep }
}

/// The facts read from files, with what the bus says where it says it: UPower's power and
/// charge over sysfs', logind's idle hint over the input interrupts (`now` for its age).
pub fn merge(mut facts: Facts, bus: &BusFacts, sleeping: bool, now: SystemTime) -> Facts {
    facts.sleeping = sleeping;
    if let Some(on_battery) = bus.on_battery {
        let sysfs_charge = match facts.power {
            Power::Battery { charge } => charge,
            _ => None,
        };
        facts.power = match on_battery {
            true => Power::Battery { charge: bus.charge.or(sysfs_charge) },
            false => Power::Mains,
        };
    }
    if let Some((idle, since_us)) = bus.idle {
        let now_us = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        facts.input = Input::Idle(idle.then(|| match since_us {
            0 => Duration::MAX,
            since => Duration::from_micros(now_us.saturating_sub(since)),
        }));
    }
    facts
}

async fn read(sensors: &Sensors) -> Facts {
    let sensors = sensors.clone();
    match tokio::task::spawn_blocking(move || sensors.read()).await {
        Ok(facts) => facts,
        // The reading panicked (it does not): as a desktop would read.
        Err(_) => Facts {
            sleeping: false,
            power: Power::Unknown,
            input: Input::Unknown,
            celsius: None,
            minute: super::sense::local_minute(),
        },
    }
}

/// A change of standing, in the log.
fn say(standing: &Standing, full: u32) {
    match &standing.why {
        Some(why) if standing.slots == 0 => tracing::info!("paused ({why}): taking no chunks"),
        Some(why) => tracing::info!("giving {} of {full} slots ({why})", standing.slots),
        None => tracing::info!("giving all {full} slots"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Facts = Facts {
        sleeping: false,
        power: Power::Battery { charge: Some(40) },
        input: Input::Interrupts(7),
        celsius: Some(50.0),
        minute: 600,
    };

    #[test]
    fn the_bus_says_power_and_idleness_over_the_files() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(merge(READ, &BusFacts::default(), false, now), READ, "the bus says nothing");
        let bus = BusFacts { on_battery: Some(false), charge: Some(90), idle: Some((false, 0)) };
        let merged = merge(READ, &bus, true, now);
        assert_eq!(
            (merged.power, merged.input, merged.sleeping),
            (Power::Mains, Input::Idle(None), true)
        );
        assert_eq!((merged.celsius, merged.minute), (Some(50.0), 600), "heat and time from files");
        let bus =
            BusFacts { on_battery: Some(true), charge: Some(90), idle: Some((true, 400_000_000)) };
        let merged = merge(READ, &bus, false, now);
        assert_eq!(merged.power, Power::Battery { charge: Some(90) });
        assert_eq!(merged.input, Input::Idle(Some(Duration::from_secs(600))));
        let bus = BusFacts { on_battery: Some(true), charge: None, idle: Some((true, 0)) };
        let merged = merge(READ, &bus, false, now);
        assert_eq!(
            merged.power,
            Power::Battery { charge: Some(40) },
            "UPower without a charge: sysfs'"
        );
        assert_eq!(merged.input, Input::Idle(Some(Duration::MAX)), "idle since ever");
        let desktop = Facts { power: Power::Unknown, ..READ };
        let bus = BusFacts { on_battery: Some(true), ..BusFacts::default() };
        assert_eq!(merge(desktop, &bus, false, now).power, Power::Battery { charge: None });
    }
}
