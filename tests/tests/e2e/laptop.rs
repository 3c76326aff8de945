use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A laptop's sysfs, as the tests write it: one mains supply and one battery.
struct Sysfs {
    root: std::path::PathBuf,
}

impl Sysfs {
    fn new(dir: &Path) -> Sysfs {
        let sys = Sysfs { root: dir.join("sys") };
        sys.write("class/power_supply/AC/type", "Mains");
        sys.write("class/power_supply/BAT0/type", "Battery");
        sys.write("class/power_supply/BAT0/status", "Charging");
        sys.write("class/power_supply/BAT0/capacity", "57");
        sys.plugged(true);
        sys
    }

    fn write(&self, file: &str, text: &str) {
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
        cmd.args(extra).env("MARMOT_TEST_SYSFS", &self.root);
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
        cmd.args(["--hours", hours]).env("TZ", "UTC").env("MARMOT_TEST_SYSFS", &sys.root);
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
