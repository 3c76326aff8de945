//! Users' commands over lists of inputs (`marmotctl run cmd`), the parts both binaries share:
//! what a command and its inputs may be, when a job halts, and how its units are logged.
//!
//! # Layout
//! - [`template`]: the command with GNU parallel's replacement strings (`{}`, `{#}`, `{.}`,
//!   `{/}`, `{//}`, `{/.}`), checked where it is typed, expanded where it runs.
//! - [`inputs`]: the inputs, one per unit, from arguments or lines, bounded.
//! - [`halt`]: `--halt now,fail=1` and friends: when failures (or successes) stop a job, and
//!   the exit status that counts failed units.
//! - [`joblog`]: `--joblog FILE`, one line per unit in GNU parallel's columns.
//! - [`file`]: a file by content, as jobs name it and stores keep it.
//! - [`spec`]: the job as submitted, the files its units need, what a unit's run reports.
//! - [`spool`]: how units' output is laid out on its way back to `marmotctl`.
//! - [`placed`]: `marmotctl parallel`'s files, at their relative paths in a unit's work dir,
//!   and what units make there coming back.
//! - [`termseq`]: `--termseq`, the signals that stop a unit.

pub mod file;
pub mod halt;
pub mod inputs;
pub mod joblog;
pub mod placed;
pub mod spec;
pub mod spool;
pub mod template;
pub mod termseq;

pub use halt::{Halt, Tally, Verdict};
pub use spec::{CmdSpec, FileRef, UnitEnding, UnitReport};
pub use template::{Template, TemplateError};
