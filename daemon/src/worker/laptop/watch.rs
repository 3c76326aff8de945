//! The driver of [`super::govern`]: reads the laptop's facts every [`EVERY`] off the async
//! runtime, decides, and publishes the worker's standing when it changes (each change said
//! once in the log). The session tells the coordinator; running command units are suspended
//! while it gives no slot, and continued after.

use super::govern::Governor;
use super::sense::Sensors;
use proto::policy::{Policy, Standing};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the facts are read: a few small sysfs files each time (its CPU cost is in the
/// README); a laptop unplugged stops its units within this, and the read.
pub const EVERY: Duration = Duration::from_millis(500);

/// What the worker gives, as it changes.
#[derive(Clone, Debug)]
pub struct Given {
    /// The slots given now and why not all.
    pub standing: watch::Receiver<Standing>,
    /// Whether it gives none: its command units are suspended meanwhile.
    pub paused: watch::Receiver<bool>,
}

impl Given {
    /// All of `slots`, always: a worker without laptop rules (`marmotd local`'s).
    pub fn all(slots: u32) -> Given {
        let (_, standing) = watch::channel(Standing { slots, why: None });
        let (_, paused) = watch::channel(false);
        Given { standing, paused }
    }
}

/// Decides once now, then every [`EVERY`] until `stop`, in a task of `tasks`.
pub async fn start(
    policy: Policy,
    slots: u32,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Given {
    let sensors = Sensors::from_env();
    tracing::info!(
        "laptop rules: on battery {}{}, at most {} °C, {}; reading {}",
        policy.on_battery,
        policy.battery_below.map(|p| format!(" (pause below {p}%)")).unwrap_or_default(),
        policy.max_temp,
        policy.hours.as_ref().map_or("all day".to_string(), |h| format!("working {h}")),
        sensors.describe(),
    );
    let mut governor = Governor::new(policy, slots);
    let origin = Instant::now();
    let first = read(&sensors).await;
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
            }
            let facts = read(&sensors).await;
            let now = governor.decide(origin.elapsed(), &facts);
            if *standing_tx.borrow() != now {
                say(&now, slots);
                paused_tx.send_replace(now.slots == 0);
                standing_tx.send_replace(now);
            }
        }
    });
    Given { standing, paused }
}

async fn read(sensors: &Sensors) -> super::govern::Facts {
    let sensors = sensors.clone();
    match tokio::task::spawn_blocking(move || sensors.read()).await {
        Ok(facts) => facts,
        // The reading panicked (it does not): as a desktop would read.
        Err(_) => super::govern::Facts {
            power: super::govern::Power::Unknown,
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
