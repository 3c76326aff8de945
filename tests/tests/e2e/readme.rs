//! The README's first steps as written: the quick start's local cluster, and "A real
//! cluster" (its coordinator, its worker, and the commands beside the coordinator), each line
//! split as a shell splits it and run with `marmotd` and `marmotctl` being the built binaries.
//! Only what cannot be the same here is filled in: the address (127.0.0.1 and a port the OS
//! picks, for 192.168.1.25:7070), the token (the one `join-token` printed), and the socket
//! path `marmotd local` printed. As root the steps run as `nobody`, with the XDG directories
//! in a temp dir, so nothing lands in `/var/lib` or `/run`.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `sh` blocks of the README's section `heading`, in order.
fn blocks(heading: &str) -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text.find(&format!("\n## {heading}\n")).expect("the section");
    let section = &text[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    section.split("```sh\n").skip(1).map(|b| b.split("```").next().unwrap().to_string()).collect()
}

/// A block's commands: each line's words, without its comment; comment-only lines dropped.
fn commands(block: &str) -> Vec<Vec<String>> {
    block
        .lines()
        .map(|line| line.split(" #").next().unwrap().trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| shlex::split(line).expect("a line a shell splits"))
        .collect()
}

/// Where the steps run: their user, environment and the binaries their names stand for.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["data", "run", "home"] {
            let path = dir.path().join(sub);
            std::fs::create_dir(&path).unwrap();
            if is_root() {
                let nobody = Some(nix::unistd::Uid::from_raw(65534));
                nix::unistd::chown(&path, nobody, Some(nix::unistd::Gid::from_raw(65534))).unwrap();
            }
        }
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Machine { dir }
    }

    /// The command for `words` (`VAR=value` first, then the program and its arguments).
    fn command(&self, words: &[String]) -> Command {
        let mut env = vec![];
        let mut words = words.iter().peekable();
        while let Some((var, value)) = words.peek().and_then(|w| w.split_once('=')) {
            env.push((var.to_string(), value.to_string()));
            words.next();
        }
        let program = words.next().expect("a program");
        let exe = match program.rsplit('/').next().unwrap() {
            name @ ("marmotd" | "marmotctl") => bin(name),
            other => panic!("the README runs {other}, not a marmot binary"),
        };
        let mut cmd = match is_root() {
            true => as_nobody(&exe),
            false => Command::new(&exe),
        };
        cmd.args(words).envs(env).stdin(Stdio::null());
        let at = |sub: &str| self.dir.path().join(sub);
        cmd.env("HOME", at("home")).env("XDG_DATA_HOME", at("data"));
        cmd.env("XDG_RUNTIME_DIR", at("run")).env("XDG_CACHE_HOME", at("home"));
        cmd
    }

    /// Runs a command line to its end; it must succeed.
    fn run(&self, words: &[String], env: &[(&str, &str)]) -> String {
        let mut cmd = self.command(words);
        cmd.envs(env.iter().copied());
        let out = output_within(cmd, Duration::from_secs(120));
        let shown = words.join(" ");
        assert!(out.status.success(), "`{shown}`: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a command line that runs until stopped, its stdout in a file.
    fn start(&self, words: &[String]) -> Started {
        let out = self.dir.path().join(format!("{}.out", unique()));
        let mut cmd = self.command(words);
        cmd.stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::null());
        Started { child: cmd.spawn().unwrap(), out }
    }
}

/// A long-running step, stopped (by its PID) when the test ends.
struct Started {
    child: Child,
    out: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn words(line: &[&str]) -> Vec<String> {
    line.iter().map(|w| w.to_string()).collect()
}

#[test]
fn the_quick_starts_local_cluster_runs_as_written() {
    let blocks = blocks("Quick start");
    assert_eq!(blocks.len(), 2, "the set-up commands, then the local cluster");
    assert_eq!(commands(&blocks[0]).len(), 2, "exactly two set-up commands: {}", blocks[0]);
    let steps = commands(&blocks[1]);
    let machine = Machine::new();
    let (local, rest) = steps.split_first().unwrap();
    assert_eq!(&local[1..2], ["local"], "{local:?}");
    let local = machine.start(local);
    let socket = wait_for("the socket path it prints", Duration::from_secs(30), || {
        let printed = std::fs::read_to_string(&local.out).ok()?;
        printed.lines().find_map(|l| l.strip_prefix("control socket: ").map(str::to_string))
    });
    let mut ran = 0;
    for step in rest {
        if step[0] == "export" {
            assert!(step[1].starts_with("MARMOT_SOCKET="), "{step:?}");
            continue;
        }
        let out = machine.run(step, &[("MARMOT_SOCKET", &socket)]);
        assert!(!out.is_empty(), "{step:?} printed nothing");
        ran += 1;
    }
    assert_eq!(ran, 2, "workers, then a job");
}

#[test]
fn a_real_cluster_runs_as_written() {
    let blocks = blocks("A real cluster");
    let (coordinator, worker, beside) = (commands(&blocks[0]), commands(&blocks[1]), &blocks[2]);
    let machine = Machine::new();
    let port = free_udp_port().to_string();
    // The coordinator, on an address of this machine.
    assert_eq!(coordinator[0], words(&["marmotd", "coordinator"]));
    let mut listen = coordinator[0].clone();
    listen.extend(words(&["--listen", &format!("127.0.0.1:{port}")]));
    let _coordinator = machine.start(&listen);
    wait_for("the coordinator's socket", Duration::from_secs(30), || {
        let mut status = machine.command(&words(&["marmotctl", "status"]));
        status.stdout(Stdio::null()).stderr(Stdio::null());
        status.status().unwrap().success().then_some(())
    });
    assert_eq!(coordinator[1], words(&["marmotctl", "join-token"]));
    let printed = machine.run(&coordinator[1], &[]);
    let token = printed.split_whitespace().find(|w| w.starts_with("marmot1-")).expect("a token");
    // The worker, with that token and address.
    assert_eq!(worker.len(), 1);
    let worker: Vec<String> = worker[0]
        .iter()
        .map(|w| {
            w.replace("marmot1-...", token).replace("192.168.1.25", &format!("127.0.0.1:{port}"))
        })
        .collect();
    let _worker = machine.start(&worker);
    wait_for("the worker listed", Duration::from_secs(30), || {
        let listed = machine.command(&words(&["marmotctl", "workers"])).output().unwrap();
        (listed.status.success() && listed.stdout.len() > 1).then_some(())
    });
    // Beside the coordinator, in the README's order; lines that name a worker or a file that
    // are only examples here (`laptop-3`, `./marmotd`) run in `members` and `update`.
    let mut ran = 0;
    for step in commands(beside) {
        if step.iter().any(|w| w == "laptop-3" || w == "./marmotd") {
            continue;
        }
        machine.run(&step, &[]);
        ran += 1;
    }
    assert!(ran >= 12, "{ran} of the README's commands ran");
}
