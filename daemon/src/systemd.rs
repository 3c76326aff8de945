//! Talking to systemd when it runs `marmotd` as a `Type=notify` service (see `systemd/`).

/// Tells systemd that start-up is done: the coordinator listens, or the worker has loaded its
/// state and starts connecting. Does nothing when not started by systemd.
pub fn notify_ready() {
    // `unset_env = false`: a process that re-executes itself after an update must still be
    // able to notify.
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::debug!("sd_notify: {e}");
    }
}
