//! A worker on someone's laptop: how many slots it gives, from what the laptop says about
//! itself (on mains or battery and its charge, how hot it runs, the time of day) and its
//! owner's rules (`--on-battery`, `--battery-below`, `--in-use`, `--idle-after`, `--max-temp`,
//! `--hours`), and around sleep.
//!
//! - [`govern`]: facts and time in, the slots given and why not all out (sans-IO), with the
//!   heat rule's steps and hysteresis.
//! - [`sense`]: the facts, read from sysfs (power supplies, thermal zones), `/proc/interrupts`
//!   (keyboard and touchpad) and the local clock.
//! - [`bus`]: the facts UPower and logind give over D-Bus where they run, and sleep: a delay
//!   lock, the signal before sleep, the chunks handed back.
//! - [`watch`]: the driver: reads the facts twice a second and publishes the worker's
//!   [`Standing`](proto::policy::Standing) when it changes; the session tells the coordinator,
//!   the units pause and continue.
//!
//! The slots and units also run at the lowest priority ([`crate::priority`]), whatever the
//! rules say: a laptop's own programs keep their speed while the worker works.

pub mod bus;
pub mod govern;
pub mod sense;
pub mod watch;
