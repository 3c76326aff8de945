//! Starting coordinators and workers as child processes, and talking to them with marmotctl.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the built binaries: this test runs from `target/<profile>/deps/`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MARMOT_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// Polls `check` until it returns `Some`, or panics after `limit` saying what never happened.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process, killed when dropped; its stderr goes to a log file.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(file);
        // A binary copied a moment ago can be "busy" while another test thread's fork still
        // holds the copy's write descriptor (until that child execs): a known Linux race.
        let child =
            wait_for("a spawn not refused as text file busy", Duration::from_secs(5), || match cmd
                .spawn()
            {
                Ok(child) => Some(child),
                Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => None,
                Err(e) => panic!("spawn: {e}"),
            });
        Proc { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: a crash, as far as everyone else can tell.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process (still the same PID) has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        wait_for("process exit", limit, || self.child.try_wait().expect("try_wait"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator with its own state dir and socket.
pub struct Coordinator {
    pub proc: Proc,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub addr: String,
}

impl Coordinator {
    /// Starts a coordinator on an OS-chosen port and waits for its socket.
    pub fn start(dir: &Path) -> Coordinator {
        Self::start_on(dir, "127.0.0.1:0")
    }

    pub fn start_on(dir: &Path, listen: &str) -> Coordinator {
        Self::start_exe(&bin("marmotd"), dir, listen)
    }

    /// Starts a coordinator from the executable `exe` (a copy it may replace when updated).
    pub fn start_exe(exe: &Path, dir: &Path, listen: &str) -> Coordinator {
        Self::start_with(exe, dir, listen, &[])
    }

    /// Starts a coordinator from `exe` with `extra` flags.
    pub fn start_with(exe: &Path, dir: &Path, listen: &str, extra: &[&str]) -> Coordinator {
        Self::start_with_env(exe, dir, listen, extra, &[])
    }

    /// Starts a coordinator from `exe` with `extra` flags and environment variables.
    pub fn start_with_env(
        exe: &Path,
        dir: &Path,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Coordinator {
        std::fs::create_dir_all(dir).expect("dir");
        let socket = dir.join("marmotd.sock");
        let mut cmd = Command::new(exe);
        cmd.envs(env.iter().copied());
        cmd.args(["coordinator", "--listen", listen, "--dead-after", "2s"]);
        cmd.args(extra);
        cmd.arg("--state-dir").arg(dir.join("state"));
        cmd.arg("--socket").arg(&socket);
        let mut proc = Proc::spawn(cmd, dir.join(format!("coordinator-{}.log", unique())));
        // A crashed predecessor may have left its socket file: wait until one answers (a
        // coordinator that stopped meanwhile says why, rather than the wait running out).
        wait_for("the control socket", Duration::from_secs(20), || {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("the coordinator stopped ({status}) before its socket: {}", proc.log_text());
            }
            std::os::unix::net::UnixStream::connect(&socket).ok().map(drop)
        });
        let mut c = Coordinator { proc, dir: dir.to_path_buf(), socket, addr: String::new() };
        c.addr = c.json(&["status"])["listen"].as_str().expect("listen").to_string();
        c
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_command()
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run marmotctl")
    }

    /// Runs `marmotctl --json ARGS`, which must succeed, and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl(&all);
        assert!(
            out.status.success(),
            "marmotctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("marmotctl printed JSON")
    }

    pub fn token(&self) -> String {
        self.json(&["join-token"])["token"].as_str().expect("token").to_string()
    }

    /// The names of the connected workers, sorted.
    pub fn worker_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .json(&["workers"])
            .as_array()
            .expect("list")
            .iter()
            .map(|w| w["name"].as_str().expect("name").to_string())
            .collect();
        names.sort();
        names
    }

    pub fn wait_for_workers(&self, names: &[&str]) {
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        wait_for(&format!("workers {want:?}"), Duration::from_secs(60), || {
            (self.worker_names() == want).then_some(())
        });
    }

    /// Starts workers `(name, slots)` that join with this coordinator's token, and waits until
    /// all of them are listed.
    pub fn workers<const N: usize>(&self, spec: [(&str, u32); N]) -> [Proc; N] {
        let names = spec.map(|(name, _)| name);
        let procs = spec.map(|(name, slots)| self.worker(name, slots));
        self.wait_for_workers(&names);
        procs
    }

    /// Waits until no slot is busy and no job runs, for at most `limit`.
    pub fn wait_idle(&self, limit: Duration) {
        wait_for("every slot idle", limit, || {
            let s = self.json(&["status"]);
            (s["slots_busy"] == 0 && s["jobs_running"] == 0).then_some(())
        });
    }

    /// Starts a misbehaving member (`tests/src/bin/hostile-member.rs`) and waits until it is
    /// listed with whoever else is: `mode` is `hoard` or `lie`.
    pub fn hostile_member(&self, name: &str, slots: u32, mode: &str) -> Proc {
        let mut cmd = Command::new(bin("hostile-member"));
        cmd.args([self.addr.as_str(), &self.token(), name, &slots.to_string(), mode]);
        cmd.arg(self.dir.join(name));
        let proc = Proc::spawn(cmd, self.dir.join(format!("{name}-{}.log", unique())));
        wait_for(&format!("{name} welcomed"), Duration::from_secs(30), || {
            proc.log_text().contains("welcomed").then_some(())
        });
        proc
    }

    /// Starts a worker that joins with this coordinator's token.
    pub fn worker(&self, name: &str, slots: u32) -> Proc {
        let token = self.token();
        start_worker(&self.dir, &self.addr, name, slots, Some(&token))
    }
}

/// The command that starts a worker; its state dir is `dir/NAME`. It is a desktop whatever
/// runs the tests: no power supply, no sensor, no input (`MARMOT_TEST_ROOT` empty) and no
/// system D-Bus, so a laptop on battery runs the tests as any machine (the laptop tests
/// give their workers a laptop of their own).
pub fn worker_command(
    exe: &Path,
    dir: &Path,
    addr: &str,
    name: &str,
    slots: u32,
    token: Option<&str>,
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["worker", "--coordinator", addr, "--name", name, "--dead-after", "2s"]);
    cmd.env("MARMOT_TEST_ROOT", dir.join("no-laptop"));
    cmd.env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}", dir.join("no-bus").display()));
    cmd.args(["--slots", &slots.to_string()]);
    cmd.arg("--state-dir").arg(dir.join(name));
    if let Some(token) = token {
        cmd.args(["--token", token]);
    }
    cmd
}

/// A WAN of `rtt` and `loss` each way in front of coordinator `c`: where far workers dial.
pub fn wan_to(c: &Coordinator, rtt: Duration, loss: f64) -> marmot_tests::wan::Wan {
    let (up, down) = marmot_tests::wan::Link::symmetric(rtt, loss);
    marmot_tests::wan::Wan::start("127.0.0.1:0".parse().unwrap(), c.addr.parse().unwrap(), up, down)
}

/// A one-slot worker running `exe` that reaches `c` through `wan`, waited for; its state dir
/// is `c.dir/NAME`.
pub fn far_worker(c: &Coordinator, wan: &marmot_tests::wan::Wan, exe: &Path, name: &str) -> Proc {
    let command = worker_command(exe, &c.dir, &wan.addr.to_string(), name, 1, Some(&c.token()));
    let worker = spawn_worker(command, &c.dir, name);
    c.wait_for_workers(&[name]);
    worker
}

/// Runs `transfer` (to the workers behind `wan`) and cuts the link once `received` (what has
/// arrived) reaches `at` bytes, until the coordinator has lost every worker; then mends it.
/// Returns what `transfer` returned.
pub fn cut_midway<T: Send>(
    c: &Coordinator,
    wan: &marmot_tests::wan::Wan,
    at: u64,
    received: impl Fn() -> Option<u64>,
    transfer: impl FnOnce() -> T + Send,
) -> T {
    std::thread::scope(|scope| {
        let transfer = scope.spawn(transfer);
        wait_for("the transfer to be far enough along", Duration::from_secs(120), || {
            received().filter(|&n| n >= at)
        });
        wan.cut();
        wait_for("the coordinator to lose its workers", Duration::from_secs(30), || {
            c.worker_names().is_empty().then_some(())
        });
        wan.mend();
        transfer.join().unwrap()
    })
}

/// `marmotctl`, with its cache (the file hashes it remembers) in the tests' own dir under
/// `target/` rather than the user's.
pub fn ctl_command() -> Command {
    let mut command = Command::new(bin("marmotctl"));
    command.env("XDG_CACHE_HOME", Path::new(env!("CARGO_TARGET_TMPDIR")).join("marmotctl-cache"));
    command
}

/// Starts a worker; its state dir is `dir/NAME`.
pub fn start_worker(dir: &Path, addr: &str, name: &str, slots: u32, token: Option<&str>) -> Proc {
    spawn_worker(worker_command(&bin("marmotd"), dir, addr, name, slots, token), dir, name)
}

/// Starts a worker from its command, logging to `dir/NAME-*.log`.
pub fn spawn_worker(cmd: Command, dir: &Path, name: &str) -> Proc {
    Proc::spawn(cmd, dir.join(format!("{name}-{}.log", unique())))
}

/// A copy of the built `marmotd` at `dir/bin/marmotd`, for a process that may replace its own
/// binary (the one cargo built is shared by every test).
pub fn marmotd_copy(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).expect("bin dir");
    let exe = bin_dir.join("marmotd");
    std::fs::copy(bin("marmotd"), &exe).expect("copy marmotd");
    exe
}

/// Starts one-slot workers from copies of `marmotd` under `dir/NAME/`: a test that updates
/// them must not replace the target dir's `marmotd`, which the tests beside it start.
pub fn copied_workers<const N: usize>(c: &Coordinator, dir: &Path, names: [&str; N]) -> [Proc; N] {
    let token = c.token();
    let procs = names.map(|name| {
        let exe = marmotd_copy(&dir.join(name));
        spawn_worker(worker_command(&exe, &c.dir, &c.addr, name, 1, Some(&token)), &c.dir, name)
    });
    c.wait_for_workers(&names);
    procs
}

/// A UDP port that was free a moment ago on 127.0.0.1, below the kernel's range of ports
/// it hands out itself: a coordinator restarted on it (after a kill) finds it free, where
/// an ephemeral port may meanwhile have gone to any process of a test running beside.
pub fn free_udp_port() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let low: u16 =
        range.ok().and_then(|r| r.split_whitespace().next()?.parse().ok()).unwrap_or(32768);
    // 8,192 ports ending a margin below the range.
    let high = low.saturating_sub(1024).max(2048);
    let from = high.saturating_sub(8192).max(1024);
    for _ in 0..1000 {
        let port = fastrand::u16(from..high);
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    // Every one taken: the kernel's choice, as before.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

/// One raw HTTP/1.1 JSON request on the control socket: the status code and the body.
pub fn api(socket: &Path, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _head, body) = api_with(socket, method, path, Some("application/json"), body);
    (status, body)
}

/// One raw HTTP/1.1 request with the given `Content-Type` (or none): the status code, the
/// reply's head (status line and headers) and its body. A body the server stops reading (a
/// refused upload) still gets its reply read.
pub fn api_with(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    let content_type = content_type.map(|t| format!("Content-Type: {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\
         {content_type}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    let _ = stream.write_all(body);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP reply");
    let status = std::str::from_utf8(&reply[9..12]).expect("status").parse().expect("status");
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    (status, head, reply[split + 4..].to_vec())
}

pub fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// A job's view from `marmotctl jobs --json`.
pub fn job_view(c: &Coordinator, id: u64) -> Value {
    c.json(&["jobs"])
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == id)
        .cloned()
        .expect("job listed")
}

/// Submits a job with `--detach` and returns its id.
pub fn detach(c: &Coordinator, args: &[&str]) -> u64 {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push("--detach");
    c.json(&all)["id"].as_u64().expect("job id")
}

/// `marmotctl run pi SAMPLES --seed SEED --json`.
pub fn run_pi(c: &Coordinator, samples: &str, seed: &str) -> Value {
    c.json(&["run", "pi", samples, "--seed", seed])
}

/// Waits until process `pid` has a handler for `signal` (its `SigCgt` mask in
/// `/proc/PID/status`): from then on the signal is handled, not fatal. The event a test waits
/// for before signalling a command that installs its handlers at start.
pub fn wait_for_handler(pid: u32, signal: nix::sys::signal::Signal) {
    let bit = 1u64 << (signal as i32 - 1);
    wait_for(&format!("process {pid} to handle {signal}"), Duration::from_secs(20), || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?.trim().to_string();
        let mask = u64::from_str_radix(&mask, 16).ok()?;
        (mask & bit != 0).then_some(())
    })
}

/// Asserts a failed run printed exactly one line on stderr, mentioning `needle`.
pub fn one_line_error(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "should have failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Resident and peak resident memory of a process, in bytes (from /proc).
pub fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).expect("field");
        line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("kB") * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Whether the tests run as root (some cases drop to another user with `setpriv`).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A command that runs `exe ARGS` as the user `nobody`, with no supplementary groups.
pub fn as_nobody(exe: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(exe);
    cmd
}

/// Runs `cmd` to its end like `Command::output`, but fails the test (killing the process)
/// if it is still running after `limit`: a refusal that never comes must not hang the suite.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{cmd:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}

/// Where `program` is on the PATH, if it is.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Whether GNU parallel (the oracle of `run cmd`'s joblog and of `marmotctl parallel`) is
/// missing here; if so, the test says it is skipped.
pub fn without_gnu_parallel() -> bool {
    let missing = which("parallel").is_none();
    if missing {
        eprintln!("SKIPPED: GNU parallel is not installed (the oracle); .ci/run installs it");
    }
    missing
}
