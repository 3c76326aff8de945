use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A laptop's `/sys` and `/proc/interrupts`, as the tests write them (the worker reads them
/// under `MARMOT_TEST_ROOT`): one mains supply and one battery.
struct Sysfs {
    root: std::path::PathBuf,
}

impl Sysfs {
    fn new(dir: &Path) -> Sysfs {
        let sys = Sysfs { root: dir.join("laptop") };
        sys.write("class/power_supply/AC/type", "Mains");
        sys.write("class/power_supply/BAT0/type", "Battery");
        sys.write("class/power_supply/BAT0/status", "Charging");
        sys.write("class/power_supply/BAT0/capacity", "57");
        sys.plugged(true);
        sys
    }

    /// Writes `file` under the laptop's `/sys`.
    fn write(&self, file: &str, text: &str) {
        self.write_at(&format!("sys/{file}"), text);
    }

    fn write_at(&self, file: &str, text: &str) {
        let path = self.root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Written whole, then renamed over: the worker never reads half a value.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{text}\n")).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    fn plugged(&self, on: bool) {
        self.write("class/power_supply/AC/online", if on { "1" } else { "0" });
    }

    fn celsius(&self, c: u32) {
        self.write("class/thermal/thermal_zone0/temp", &(c * 1000).to_string());
    }

    /// A worker reading this sysfs, with `extra` flags.
    fn worker(&self, c: &Coordinator, name: &str, slots: u32, extra: &[&str]) -> Proc {
        let mut cmd =
            worker_command(&bin("marmotd"), &c.dir, &c.addr, name, slots, Some(&c.token()));
        cmd.args(extra).env("MARMOT_TEST_ROOT", &self.root);
        spawn_worker(cmd, &c.dir, name)
    }
}

fn worker_view(c: &Coordinator, name: &str) -> Value {
    let list = c.json(&["workers"]);
    list.as_array().unwrap().iter().find(|w| w["name"] == name).cloned().unwrap_or_default()
}

/// A process's state letter in `/proc` (`T`: stopped), `None` once it is gone.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn unplugged_a_worker_takes_no_chunks_and_suspends_its_units_until_plugged_in() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let sys = Sysfs::new(dir.path());
    let _lap = sys.worker(&c, "lap", 2, &[]);
    c.wait_for_workers(&["lap"]);
    // Two units wait for a file on the laptop, two run at once; each prints where it ran.
    let (pids, go) = (dir.path().join("pids"), dir.path().join("go"));
    let script = format!(
        "echo $$ >> {pids}; if [ $1 = wait ]; then while [ ! -e {go} ]; do sleep 0.02; done; fi; \
         echo $1 $MARMOT_WORKER",
        pids = pids.display(),
        go = go.display()
    );
    let mut run = ctl_command();
    run.arg("--socket").arg(&c.socket);
    run.args([
        "run", "cmd", "-k", "--", "sh", "-c", &script, "sh", ":::", "wait", "wait", "now", "now",
    ]);
    let run = run.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let running = wait_for("the laptop's two units", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        let list: Vec<i32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        (list.len() == 2).then_some(list)
    });

    // Unplugged: both units stopped, and the coordinator told.
    let unplugged = Instant::now();
    sys.plugged(false);
    wait_for("both units stopped (T in /proc)", Duration::from_secs(10), || {
        running.iter().all(|&pid| state(pid) == Some('T')).then_some(())
    });
    let stopped_after = unplugged.elapsed();
    let w = wait_for("the laptop listed as paused", Duration::from_secs(10), || {
        let w = worker_view(&c, "lap");
        (w["slots_now"] == 0).then_some(w)
    });
    assert_eq!(w["held_back"], serde_json::json!({"Battery": {"charge": 57}}), "{w}");
    let listed = c.ctl(&["workers"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("0/2") && listed.contains("paused: battery 57%"), "{listed}");

    // The other two units go to a worker that joins now, and end there; the laptop's stay
    // stopped, the file they wait for there or not.
    std::fs::write(&go, "").unwrap();
    let _desk = c.worker("desk", 1);
    wait_for("the desk's two units", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        (text.lines().count() == 4).then_some(())
    });
    let done = wait_for("the desk done with them", Duration::from_secs(30), || {
        let jobs = c.json(&["jobs"]);
        let units = jobs.as_array()?.first()?["units_done"].as_u64()?;
        (units == 2).then_some(units)
    });
    assert_eq!(done, 2);
    for &pid in &running {
        assert_eq!(state(pid), Some('T'), "unit {pid} ran on while unplugged");
    }

    // Plugged in: continued, and the job ends whole, each unit once.
    let plugged = Instant::now();
    sys.plugged(true);
    wait_for("both units continued", Duration::from_secs(10), || {
        running.iter().all(|&pid| state(pid) != Some('T')).then_some(())
    });
    let continued_after = plugged.elapsed();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().collect::<Vec<_>>(), ["wait lap", "wait lap", "now desk", "now desk"]);
    let w = worker_view(&c, "lap");
    assert_eq!((&w["slots_now"], &w["held_back"]), (&serde_json::json!(2), &Value::Null), "{w}");
    eprintln!(
        "unplugged to units stopped: {:.2} s; plugged in to units continued: {:.2} s",
        stopped_after.as_secs_f64(),
        continued_after.as_secs_f64()
    );
}

#[test]
fn heat_gives_up_a_slot_and_cool_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let sys = Sysfs::new(dir.path());
    sys.celsius(60);
    let _lap = sys.worker(&c, "lap", 2, &["--max-temp", "80"]);
    c.wait_for_workers(&["lap"]);
    assert_eq!(worker_view(&c, "lap")["slots_now"], 2);
    sys.celsius(92);
    let w = wait_for("one slot given up", Duration::from_secs(10), || {
        let w = worker_view(&c, "lap");
        (w["slots_now"] == 1).then_some(w)
    });
    assert_eq!(w["held_back"], serde_json::json!({"Heat": {"celsius": 92}}), "{w}");
    let (_, _, body) = api_with(&c.socket, "GET", "/metrics", None, b"");
    let metrics = String::from_utf8_lossy(&body);
    for line in [
        "marmot_worker_slots_given{worker=\"lap\"} 1",
        "marmot_worker_held_back{worker=\"lap\",reason=\"heat\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line} in {metrics}");
    }
    // A job runs on the slot given, one chunk at a time.
    let job = run_pi(&c, "2e7", "3");
    assert_eq!(job["samples"], 20_000_000, "{job}");
    // Below the lower mark (80 - 10): all back.
    sys.celsius(69);
    wait_for("both slots back", Duration::from_secs(10), || {
        let w = worker_view(&c, "lap");
        (w["slots_now"] == 2 && w["held_back"].is_null()).then_some(())
    });
}

#[test]
fn outside_its_hours_a_worker_gives_nothing() {
    // The worker's clock in UTC: hours that hold now, and hours that do not.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let minute = (now.as_secs() / 60 % 1440) as u32;
    let range = |from: u32, len: u32| {
        let (a, b) = (from % 1440, (from + len) % 1440);
        format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)
    };
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let sys = Sysfs::new(dir.path());
    let working = range(minute + 1440 - 60, 180); // from an hour ago for three hours
    let resting = range(minute + 120, 60); // two hours from now for one hour
    let worker = |name: &str, hours: &str| {
        let mut cmd = worker_command(&bin("marmotd"), &c.dir, &c.addr, name, 1, Some(&c.token()));
        cmd.args(["--hours", hours]).env("TZ", "UTC").env("MARMOT_TEST_ROOT", &sys.root);
        spawn_worker(cmd, &c.dir, name)
    };
    let (_day, _night) = (worker("day", &working), worker("night", &resting));
    c.wait_for_workers(&["day", "night"]);
    let w = wait_for("night listed outside its hours", Duration::from_secs(10), || {
        let w = worker_view(&c, "night");
        (w["slots_now"] == 0).then_some(w)
    });
    assert_eq!(w["held_back"], "Hours", "{w}");
    assert_eq!(worker_view(&c, "day")["slots_now"], 1);
    // Every chunk runs on the worker in its hours.
    let out = c.ctl(&["run", "cmd", "--", "sh", "-c", "echo $MARMOT_WORKER", ":::", "1", "2", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "day\nday\nday\n");
}

#[test]
fn laptop_flags_that_cannot_be_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    for (flags, needle) in [
        (["--on-battery", "sleep"], "pause, run, slots=N"),
        (["--on-battery", "slots=0"], "pause, run, slots=N"),
        (["--battery-below", "0"], "percentage from 1 to 100"),
        (["--max-temp", "300"], "temperature from 40 to 120"),
        (["--hours", "25:00-01:00"], "HH:MM-HH:MM"),
        (["--hours", "10:00-10:00"], "empty range"),
    ] {
        let mut cmd = worker_command(&bin("marmotd"), dir.path(), "127.0.0.1:9", "w", 1, None);
        let out = cmd.args(flags).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
}

/// A private D-Bus "system" bus with python-dbusmock's UPower and logind on it: the real
/// interfaces, faked at their edge. `None` (said on stderr: the case is skipped, visibly) where
/// dbus-daemon, gdbus or Debian's python3-dbusmock is missing; `.ci/run` installs them.
struct MockBus {
    address: String,
    /// Killed when the bus is dropped, services first.
    _services: Vec<Proc>,
    _daemon: Proc,
}

/// `gdbus call` on the bus at `address`: the reply as gdbus prints it.
fn gdbus(address: &str, dest: &str, path: &str, method: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("gdbus")
        .args(["call", "--address", address, "--dest", dest, "--object-path", path])
        .args(["--method", method])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl MockBus {
    fn start(dir: &Path) -> Option<MockBus> {
        let dbusmock = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import dbusmock"])
            .output()
            .is_ok_and(|out| out.status.success());
        if which("dbus-daemon").is_none() || which("gdbus").is_none() || !dbusmock {
            eprintln!("SKIPPED: needs dbus-daemon, gdbus and python3-dbusmock (apt-get install dbus libglib2.0-bin python3-dbusmock)");
            return None;
        }
        let socket = dir.join("system_bus_socket");
        let address = format!("unix:path={}", socket.display());
        let mut daemon = std::process::Command::new("dbus-daemon");
        daemon.args(["--session", "--nofork", "--nopidfile", "--address", &address]);
        let daemon = Proc::spawn(daemon, dir.join("dbus-daemon.log"));
        wait_for("the private bus", Duration::from_secs(10), || socket.exists().then_some(()));
        let mut services = Vec::new();
        for (template, name) in
            [("upower", "org.freedesktop.UPower"), ("logind", "org.freedesktop.login1")]
        {
            let mut mock = std::process::Command::new("/usr/bin/python3");
            mock.args(["-m", "dbusmock", "--system", "--template", template]);
            mock.env("DBUS_SYSTEM_BUS_ADDRESS", &address);
            services.push(Proc::spawn(mock, dir.join(format!("{template}.log"))));
            wait_for(&format!("{name} on the bus"), Duration::from_secs(20), || {
                let (dbus, path) = ("org.freedesktop.DBus", "/org/freedesktop/DBus");
                let owned =
                    gdbus(&address, dbus, path, "org.freedesktop.DBus.NameHasOwner", &[name]);
                (owned.trim() == "(true,)").then_some(())
            });
        }
        Some(MockBus { address, _services: services, _daemon: daemon })
    }

    fn call(&self, dest: &str, path: &str, method: &str, args: &[&str]) -> String {
        gdbus(&self.address, dest, path, method, args)
    }

    fn set(&self, dest: &str, path: &str, interface: &str, property: &str, value: &str) {
        let reply = self.call(
            dest,
            path,
            "org.freedesktop.DBus.Properties.Set",
            &[interface, property, value],
        );
        assert_eq!(reply.trim(), "()", "setting {property} to {value}");
    }

    fn on_battery(&self, on: bool, charge: f64) {
        let device = "/org/freedesktop/UPower/devices/DisplayDevice";
        let (upower, iface) = ("org.freedesktop.UPower", "org.freedesktop.UPower.Device");
        self.set(upower, device, iface, "IsPresent", "<true>");
        self.set(upower, device, iface, "Percentage", &format!("<{charge:.1}>"));
        self.set(upower, "/org/freedesktop/UPower", upower, "OnBattery", &format!("<{on}>"));
    }

    fn prepare_for_sleep(&self, start: bool) {
        let reply = self.call(
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.DBus.Mock.EmitSignal",
            &["org.freedesktop.login1.Manager", "PrepareForSleep", "b", &format!("[<{start}>]")],
        );
        assert_eq!(reply.trim(), "()");
    }

    /// logind's inhibitor locks, as `ListInhibitors` prints them.
    fn inhibitors(&self) -> String {
        self.call(
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager.ListInhibitors",
            &[],
        )
    }

    /// A worker on this bus, reading an empty laptop root (no supplies, no sensors).
    fn worker(&self, c: &Coordinator, name: &str, slots: u32, extra: &[&str]) -> Proc {
        let mut cmd =
            worker_command(&bin("marmotd"), &c.dir, &c.addr, name, slots, Some(&c.token()));
        cmd.args(extra).env("DBUS_SYSTEM_BUS_ADDRESS", &self.address);
        spawn_worker(cmd, &c.dir, name)
    }
}

#[test]
fn upower_pauses_a_worker_on_battery_and_logind_sleep_hands_its_chunks_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bus) = MockBus::start(dir.path()) else { return };
    let c = Coordinator::start(dir.path());
    let lap = bus.worker(&c, "lap", 1, &[]);
    c.wait_for_workers(&["lap"]);
    wait_for("the worker's delay lock on sleep", Duration::from_secs(10), || {
        let locks = bus.inhibitors();
        (locks.contains("'sleep', 'marmot worker'") && locks.contains("'delay'")).then_some(())
    });
    assert!(
        lap.log_text().contains("power from UPower, idle and sleep from logind"),
        "{}",
        lap.log_text()
    );

    // UPower says on battery: paused, with the charge UPower shows; on mains: all back.
    let unplugged = Instant::now();
    bus.on_battery(true, 42.0);
    let w = wait_for("the laptop paused on battery", Duration::from_secs(10), || {
        let w = worker_view(&c, "lap");
        (w["slots_now"] == 0).then_some(w)
    });
    let paused_after = unplugged.elapsed();
    assert_eq!(w["held_back"], serde_json::json!({"Battery": {"charge": 42}}), "{w}");
    bus.on_battery(false, 42.0);
    wait_for("the laptop back on mains", Duration::from_secs(10), || {
        (worker_view(&c, "lap")["slots_now"] == 1).then_some(())
    });

    // A unit running on the laptop when it goes to sleep runs again on another worker at
    // once; the job's output is that unit's, once.
    let (pids, go) = (dir.path().join("pids"), dir.path().join("go"));
    let script = format!(
        "echo $MARMOT_WORKER >> {pids}; while [ ! -e {go} ]; do sleep 0.02; done; echo $1 $MARMOT_WORKER",
        pids = pids.display(),
        go = go.display()
    );
    let mut run = ctl_command();
    run.arg("--socket").arg(&c.socket);
    run.args(["run", "cmd", "--", "sh", "-c", &script, "sh", ":::", "only"]);
    let run = run.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started =
        |who: &str| std::fs::read_to_string(&pids).unwrap_or_default().lines().any(|l| l == who);
    wait_for("the unit on the laptop", Duration::from_secs(30), || started("lap").then_some(()));
    let _desk = c.worker("desk", 1);
    c.wait_for_workers(&["desk", "lap"]);
    let asleep = Instant::now();
    bus.prepare_for_sleep(true);
    wait_for("the unit again on the desk", Duration::from_secs(30), || {
        started("desk").then_some(())
    });
    let elsewhere_after = asleep.elapsed();
    wait_for("the lock let go", Duration::from_secs(10), || {
        (!bus.inhibitors().contains("marmot worker")).then_some(())
    });
    assert!(!c.worker_names().contains(&"lap".to_string()), "the sleeping laptop is not listed");
    std::fs::write(&go, "").unwrap();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "only desk\n");

    // Awake: reconnected at once, with a new lock.
    let woke = Instant::now();
    bus.prepare_for_sleep(false);
    c.wait_for_workers(&["desk", "lap"]);
    let back_after = woke.elapsed();
    wait_for("a new delay lock", Duration::from_secs(10), || {
        bus.inhibitors().contains("marmot worker").then_some(())
    });
    eprintln!(
        "on battery to paused: {:.2} s; sleep to the unit running elsewhere: {:.2} s; wake-up to reconnected: {:.2} s",
        paused_after.as_secs_f64(),
        elsewhere_after.as_secs_f64(),
        back_after.as_secs_f64()
    );
}

#[test]
fn in_use_by_loginds_idle_hint_or_by_keyboard_interrupts() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bus) = MockBus::start(dir.path()) else { return };
    let c = Coordinator::start(dir.path());
    // logind's template starts not idle: someone is there.
    let _lap = bus.worker(&c, "lap", 2, &["--in-use", "slots=1"]);
    c.wait_for_workers(&["lap"]);
    let w = wait_for("one slot while in use", Duration::from_secs(10), || {
        let w = worker_view(&c, "lap");
        (w["slots_now"] == 1).then_some(w)
    });
    assert_eq!(w["held_back"], "InUse", "{w}");
    // Idle for ten minutes: all slots.
    let (login, path, iface) =
        ("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap()
        - Duration::from_secs(600);
    bus.set(login, path, iface, "IdleSinceHint", &format!("<uint64 {}>", since.as_micros()));
    bus.set(login, path, iface, "IdleHint", "<true>");
    wait_for("all slots when idle", Duration::from_secs(10), || {
        (worker_view(&c, "lap")["slots_now"] == 2).then_some(())
    });

    // Without logind: the keyboard's interrupts.
    let sys = Sysfs::new(dir.path());
    sys.write_at("proc/interrupts", "      CPU0\n  1:    100   IO-APIC   1-edge   i8042\n");
    let pc = sys.worker(&c, "pc", 2, &["--in-use", "pause", "--idle-after", "2s"]);
    c.wait_for_workers(&["lap", "pc"]);
    assert_eq!(worker_view(&c, "pc")["slots_now"], 2, "no key pressed since it started");
    sys.write_at("proc/interrupts", "      CPU0\n  1:    103   IO-APIC   1-edge   i8042\n");
    let w = wait_for("paused by a key pressed", Duration::from_secs(10), || {
        let w = worker_view(&c, "pc");
        (w["slots_now"] == 0).then_some(w)
    });
    assert_eq!(w["held_back"], "InUse");
    wait_for("back after 2 s without input", Duration::from_secs(10), || {
        (worker_view(&c, "pc")["slots_now"] == 2).then_some(())
    });
    let log = pc.log_text();
    assert_eq!(log.matches("laptop facts from sysfs only").count(), 1, "{log}");
}
