//! The laptop's facts over the system D-Bus, where the system has them: UPower (on battery,
//! the charge the desktop shows) and logind (whether the seat is idle, the signal before
//! sleep, and the inhibitor lock that lets the worker hand its chunks back first). Changes
//! arrive as signals, not by polling. A worker without a system bus (a container, a service
//! that cannot reach it) or without these services reads sysfs instead, and says so once.
//!
//! Before sleep: logind signals `PrepareForSleep(true)` and waits for the delay locks taken
//! (at most its `InhibitDelayMaxSec`, 5 s by default). The worker then closes its session
//! (the coordinator runs its chunks elsewhere at once), and releases its lock once the session
//! says it has left ([`Sleep::left`]); on `PrepareForSleep(false)` it takes a new lock and
//! reconnects at once.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zbus::zvariant::OwnedFd;

#[zbus::proxy(
    interface = "org.freedesktop.UPower",
    default_service = "org.freedesktop.UPower",
    default_path = "/org/freedesktop/UPower"
)]
trait UPower {
    #[zbus(property)]
    fn on_battery(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    interface = "org.freedesktop.UPower.Device",
    default_service = "org.freedesktop.UPower",
    default_path = "/org/freedesktop/UPower/devices/DisplayDevice"
)]
trait DisplayDevice {
    #[zbus(property)]
    fn percentage(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn is_present(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Login {
    fn inhibit(&self, what: &str, who: &str, why: &str, mode: &str) -> zbus::Result<OwnedFd>;
    #[zbus(signal)]
    fn prepare_for_sleep(&self, start: bool) -> zbus::Result<()>;
    #[zbus(property)]
    fn idle_hint(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn idle_since_hint(&self) -> zbus::Result<u64>;
}

/// What the bus says, as it changes; `None` where it does not say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BusFacts {
    /// UPower's `OnBattery`.
    pub on_battery: Option<bool>,
    /// The display device's charge, when a battery is present.
    pub charge: Option<u8>,
    /// logind's idle hint: idle, and since when (µs since the epoch; 0: unknown).
    pub idle: Option<(bool, u64)>,
}

/// The sleep handshake between logind and the session.
#[derive(Clone, Debug)]
pub struct Sleep {
    /// Whether the machine is about to sleep (or asleep): no session until it wakes.
    pub sleeping: watch::Receiver<bool>,
    /// Told by whoever closed the session for sleep: the lock may go.
    pub left: Arc<Notify>,
}

impl Sleep {
    /// A machine that never sleeps (no logind): for workers without a bus.
    pub fn never() -> Sleep {
        Sleep { sleeping: watch::Sender::new(false).subscribe(), left: Arc::default() }
    }
}

/// How long the worker holds sleep back at most, waiting for its session to close.
const HAND_BACK_WITHIN: Duration = Duration::from_secs(3);

/// Connects to the system bus and watches UPower and logind in tasks of `tasks` until
/// `stop`. `None` when there is no bus or neither service is on it.
pub async fn watch(
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Option<(watch::Receiver<BusFacts>, Sleep)> {
    let conn = match tokio::time::timeout(Duration::from_secs(2), zbus::Connection::system()).await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return said_once(&format!("no system D-Bus ({e})")),
        Err(_) => return said_once("the system D-Bus did not answer within 2 s"),
    };
    let upower = UPowerProxy::new(&conn).await.ok();
    let upower = match upower {
        Some(p) if p.on_battery().await.is_ok() => Some(p),
        _ => None,
    };
    let display = match upower {
        Some(_) => DisplayDeviceProxy::new(&conn).await.ok(),
        None => None,
    };
    let login = match LoginProxy::new(&conn).await {
        Ok(p) if p.idle_hint().await.is_ok() => Some(p),
        _ => None,
    };
    if upower.is_none() && login.is_none() {
        return said_once("neither UPower nor logind is on the system D-Bus");
    }
    tracing::info!(
        "laptop facts over D-Bus: power from {}, idle and sleep from {}",
        if upower.is_some() { "UPower" } else { "sysfs (no UPower)" },
        if login.is_some() { "logind" } else { "nowhere (no logind)" },
    );
    let facts = watch::Sender::new(BusFacts::default());
    let (sleeping_tx, sleeping) = watch::channel(false);
    let left = Arc::new(Notify::new());
    if let Some(upower) = upower {
        tasks.spawn(watch_power(upower, display, facts.clone(), stop.clone()));
    }
    if let Some(login) = login {
        tasks.spawn(watch_idle(login.clone(), facts.clone(), stop.clone()));
        tasks.spawn(watch_sleep(login, sleeping_tx, left.clone(), stop));
    }
    Some((facts.subscribe(), Sleep { sleeping, left }))
}

/// Says once per process why the worker reads sysfs only.
fn said_once<T>(why: &str) -> Option<T> {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| tracing::info!("laptop facts from sysfs only: {why}"));
    None
}

/// UPower's `OnBattery` and the display device's charge, now and at each change.
async fn watch_power(
    upower: UPowerProxy<'static>,
    display: Option<DisplayDeviceProxy<'static>>,
    facts: watch::Sender<BusFacts>,
    stop: CancellationToken,
) {
    use futures_util::StreamExt;
    let mut battery_changes = upower.receive_on_battery_changed().await;
    let mut charge_changes = match &display {
        Some(d) => Some(d.receive_percentage_changed().await),
        None => None,
    };
    loop {
        let on_battery = upower.on_battery().await.ok();
        let charge = match &display {
            Some(d) if d.is_present().await.unwrap_or(false) => d.percentage().await.ok(),
            _ => None,
        };
        let charge = charge.filter(|c| (0.0..=100.0).contains(c)).map(|c| c.round() as u8);
        facts.send_modify(|f| (f.on_battery, f.charge) = (on_battery, charge));
        let charge_changed = async {
            match &mut charge_changes {
                Some(changes) => changes.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            Some(_) = battery_changes.next() => {}
            Some(_) = charge_changed => {}
            else => return,
        }
    }
}

/// logind's idle hint, now and at each change.
async fn watch_idle(
    login: LoginProxy<'static>,
    facts: watch::Sender<BusFacts>,
    stop: CancellationToken,
) {
    use futures_util::StreamExt;
    let mut changes = login.receive_idle_hint_changed().await;
    loop {
        let hint = login.idle_hint().await.ok();
        let since = login.idle_since_hint().await.unwrap_or(0);
        facts.send_modify(|f| f.idle = hint.map(|hint| (hint, since)));
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = changes.next() => if changed.is_none() { return },
        }
    }
}

/// Holds a delay lock on sleep; before sleep, says so and waits for the session to leave
/// (at most [`HAND_BACK_WITHIN`]), then lets go; after, takes a new lock.
async fn watch_sleep(
    login: LoginProxy<'static>,
    sleeping: watch::Sender<bool>,
    left: Arc<Notify>,
    stop: CancellationToken,
) {
    use futures_util::StreamExt;
    let Ok(mut signals) = login.receive_prepare_for_sleep().await else { return };
    let mut lock = take_lock(&login).await;
    loop {
        let signal = tokio::select! {
            _ = stop.cancelled() => return,
            signal = signals.next() => match signal {
                Some(signal) => signal,
                None => return,
            },
        };
        let Ok(args) = signal.args() else { continue };
        if args.start {
            tracing::info!("the machine is going to sleep: handing the chunks back");
            sleeping.send_replace(true);
            let _ = tokio::time::timeout(HAND_BACK_WITHIN, left.notified()).await;
            drop(lock.take());
        } else {
            tracing::info!("the machine woke up: reconnecting");
            sleeping.send_replace(false);
            lock = take_lock(&login).await;
        }
    }
}

/// A delay inhibitor lock on sleep, held as long as its descriptor is open.
async fn take_lock(login: &LoginProxy<'static>) -> Option<OwnedFd> {
    let why = "hands its chunks back to the cluster before the machine sleeps";
    match login.inhibit("sleep", "marmot worker", why, "delay").await {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!("cannot take a sleep inhibitor lock from logind ({e}): chunks run elsewhere only once the coordinator finds this worker gone");
            None
        }
    }
}
