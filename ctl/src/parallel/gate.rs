//! `--load`, `--memfree`, `--noswap`: what a job waits for on the worker that runs it before
//! it starts, as GNU parallel judges them on the machine that runs a job. Each is a line of
//! shell code the job's wrapper runs first, reading that machine's `/proc`: a job waits there,
//! in its slot, until the machine has room (GNU parallel, on one machine, waits before it
//! starts one).

use super::Slots;

/// How often a waiting job looks again.
const EVERY: &str = "1";

/// What a job waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// `--load`: fewer running processes than this (as `-j`: N, N% of the CPUs, +N, -N).
    pub load: Option<Slots>,
    /// `--memfree`: at least this many bytes of memory available.
    pub memfree: Option<u64>,
    /// `--noswap`: the machine is not swapping in and out (over a fifth of a second).
    pub noswap: bool,
}

impl Gate {
    /// The shell code that waits, or `None` when nothing is waited for.
    pub fn shell(&self) -> Option<String> {
        let mut waits = vec![];
        if let Some(bytes) = self.memfree {
            let kib = bytes.div_ceil(1024);
            // MemFree where the kernel has no MemAvailable (before 3.14).
            waits.push(format!(
                "until [ \"$(awk '/^MemAvailable:/{{a=$2}} /^MemFree:/{{f=$2}} \
                 END{{print (a==\"\"?f:a)}}' /proc/meminfo)\" -ge {kib} ]; do sleep {EVERY}; done"
            ));
        }
        if let Some(load) = self.load {
            let most = match load {
                Slots::Count(n) => n.to_string(),
                Slots::Percent(p) => format!("$(( $(nproc) * {p} / 100 ))"),
                Slots::Plus(n) => format!("$(( $(nproc) + {n} ))"),
                Slots::Minus(n) => format!("$(( $(nproc) - {n} ))"),
            };
            // Running processes but the awk that counts them; at least one may run.
            waits.push(format!(
                "most={most}; [ \"$most\" -ge 1 ] || most=1; until [ \"$(awk \
                 '/^procs_running/{{print $2 - 1}}' /proc/stat)\" -lt \"$most\" ]; do sleep \
                 {EVERY}; done"
            ));
        }
        if self.noswap {
            let swapped = "$(awk '/^pswp(in|out) /{printf \"%s \", $2}' /proc/vmstat)";
            waits.push(format!(
                "while s1=\"{swapped}\"; sleep 0.2; s2=\"{swapped}\"; set -- $s1 $s2; \
                 [ \"$1\" != \"$3\" ] && [ \"$2\" != \"$4\" ]; do sleep {EVERY}; done"
            ));
        }
        (!waits.is_empty()).then(|| waits.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `gate`'s code in bash, with `timeout` seconds: whether it let the job start.
    fn starts(gate: &Gate, timeout: &str) -> bool {
        let code = format!("{}; echo started", gate.shell().unwrap());
        let out = Command::new("timeout").args([timeout, "bash", "-c", &code]).output().unwrap();
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout == b"started\n"
    }

    #[test]
    fn nothing_asked_nothing_waited_for() {
        assert_eq!(Gate::default().shell(), None);
    }

    #[test]
    fn a_job_starts_when_the_machine_has_room_and_waits_when_it_has_none() {
        let room = [
            Gate { memfree: Some(1), ..Gate::default() },
            Gate { load: Some(Slots::Count(100_000)), ..Gate::default() },
            Gate { load: Some(Slots::Percent(100_000_000)), ..Gate::default() },
            Gate { load: Some(Slots::Plus(100_000)), ..Gate::default() },
            Gate { memfree: Some(1), load: Some(Slots::Count(100_000)), ..Gate::default() },
        ];
        for gate in room {
            assert!(starts(&gate, "5"), "{gate:?}");
        }
        // No machine has an exabyte free.
        assert!(!starts(&Gate { memfree: Some(1 << 60), ..Gate::default() }, "1.5"));
    }

    /// Busy processes, killed when dropped (a failing test leaves none behind).
    struct Busy(Vec<std::process::Child>);

    impl Drop for Busy {
        fn drop(&mut self) {
            for child in &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    #[test]
    fn a_job_waits_while_the_machine_runs_as_many_processes_as_the_load_allows() {
        let busy = Busy(
            (0..3)
                .map(|_| Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap())
                .collect(),
        );
        let waited = !starts(&Gate { load: Some(Slots::Count(1)), ..Gate::default() }, "1.5");
        drop(busy);
        assert!(waited, "three busy processes, --load 1: the job waited");
    }

    #[test]
    fn a_machine_not_swapping_starts_a_job() {
        // This test's machine may be swapping; a machine that swaps in and out all the time
        // is rare enough to say so.
        let gate = Gate { noswap: true, ..Gate::default() };
        assert!(starts(&gate, "10"), "this machine swapped in and out for 10 s");
    }
}
