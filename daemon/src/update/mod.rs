//! Replacing the running `marmotd` with a new binary, safely, on workers and the coordinator.
//!
//! The steps, each in its own module:
//! - [`version`]: this build's version, stamped verbatim into the binary so a coordinator can
//!   read the version of a binary it cannot run (another architecture), and the order between
//!   versions (semver, then the build number).
//! - [`binary`]: what a file is: SHA-256, ELF architecture, version stamp.
//! - [`decide`]: whether a machine takes a binary on offer (current, wrong architecture,
//!   downgrade).
//! - [`install`]: stage the bytes beside the running executable, verify them, smoke-test
//!   `NEW --version`, keep the old binary as `marmotd.prev`, swap, and re-execute in place (same
//!   PID, so systemd sees the same service); [`install::install`] is those steps in order,
//!   with a trial start for a worker, for both roles.
//! - [`prev`]: the previous binary kept as `marmotd.prev`: the swap, and the way back.
//! - [`pending`]: an update survives restarts as a file in the state dir until the new binary
//!   proves healthy; too many starts put `marmotd.prev` back.
//! - [`probation`]: a start's probation for both roles, driven from here: what the start
//!   found, the deadline to prove healthy, passed or rolled back.
//!
//! The process's own executable path and arguments are captured once at start
//! ([`Invocation::capture`]): after a swap, `/proc/self/exe` names a deleted file.

pub mod binary;
pub mod decide;
pub mod install;
pub mod pending;
pub mod prev;
pub mod probation;
pub mod version;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// How this process was started, for re-executing it.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

static INVOCATION: OnceLock<Invocation> = OnceLock::new();

impl Invocation {
    /// Records the executable and arguments of this process; `marmotd`'s `main` calls it
    /// first thing. Without it (a library user, `marmotd local`'s in-process workers) nothing
    /// can update itself.
    pub fn capture() -> std::io::Result<()> {
        let exe = std::env::current_exe()?;
        let args = std::env::args_os().skip(1).collect();
        let _ = INVOCATION.set(Invocation { exe, args });
        Ok(())
    }

    pub fn get() -> Option<&'static Invocation> {
        INVOCATION.get()
    }
}
