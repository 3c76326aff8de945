//! The lowest CPU and I/O priority Linux offers, taken by what runs the cluster's work on
//! someone's laptop: the slot threads (kernels) and every command unit run under
//! `SCHED_IDLE` (a weight of 3 against a nice-0 program's 1024: they get the time nobody
//! else wants, and give it up at once) and in the idle I/O class (their disk reads wait
//! while anything else reads).
//!
//! Under the worker's systemd unit the whole service is idle too (`CPUWeight=idle`, the
//! cgroup's `cpu.idle`, and `IOSchedulingClass=idle`); started by hand, this is what keeps
//! the laptop's own programs at full speed (figures in the README's section for laptop
//! owners). The worker's own threads (its connection, heartbeats, transfers) keep the
//! priority they started with, so a busy laptop does not make it miss its heartbeats.

use std::io;

/// `ioprio_set`'s "which": one thread (or process).
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
/// The idle I/O class, in an I/O priority's top bits.
const IOPRIO_CLASS_IDLE: libc::c_int = 3 << 13;

/// Puts the calling thread (or, between fork and exec, the new process) at the lowest
/// priority: `SCHED_IDLE` and the idle I/O class. System calls only, no allocation: safe
/// between fork and exec. What the thread starts inherits both.
pub fn lowest() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param`, which lives across the call; pid 0 is the
    // calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ioprio_set takes three integers; who 0 is the calling thread.
    let set =
        unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE) };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// [`lowest`] for a slot thread as it starts: a system that refuses (a seccomp filter
/// stricter than the worker unit's) leaves the thread as it was, said once in the log.
pub fn lowest_or_warn() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Err(e) = lowest() {
        WARNED.call_once(|| {
            tracing::warn!("cannot lower the slots' priority (SCHED_IDLE, idle I/O): {e}")
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_takes_the_idle_cpu_and_io_classes_and_others_keep_theirs() {
        let (policy, ioprio) = std::thread::spawn(|| {
            super::lowest().unwrap();
            // SAFETY: plain queries of the calling thread.
            unsafe { (libc::sched_getscheduler(0), libc::syscall(libc::SYS_ioprio_get, 1, 0)) }
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
        assert_eq!(ioprio >> 13, 3, "the idle I/O class");
        // SAFETY: as above; this thread did not call it.
        assert_ne!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
    }
}
