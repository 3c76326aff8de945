//! Exit statuses with a meaning beyond "failed", shared by `marmotd` and its systemd units.
//!
//! A service restarted on every failure must not loop on a mistake only a person can fix (a
//! refused join token, a flag that names no group): those exit with [`CONFIG`], which the
//! units list in `RestartPreventExitStatus=`, so systemd stops and the journal's last line
//! says what to change. Everything else (a crash, the network) exits 1 and is restarted.

/// Command-line usage errors (clap's own status).
pub const USAGE: u8 = 2;

/// A configuration error that restarting cannot fix: `EX_CONFIG` from `sysexits.h`.
pub const CONFIG: u8 = 78;
