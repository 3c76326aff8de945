//! `marmotd install`/`uninstall` as far as a test may go on the build machine (the real
//! installs run under a real systemd in `systemd/lab.sh`), and the Debian package's generated
//! completions and man pages, which must match what the binaries generate now.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn marmotd(args: &[&str]) -> Output {
    Command::new(bin("marmotd")).args(args).output().unwrap()
}

fn token() -> String {
    format!("marmot1-{}-0123abcd", "ab".repeat(32))
}

#[test]
fn a_dry_run_prints_every_step_and_hides_the_token() {
    let token = token();
    let out = marmotd(&[
        "install",
        "worker",
        "--coordinator",
        "192.168.1.25",
        "--token",
        &token,
        "--name",
        "attic",
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let exe = bin("marmotd");
    for want in [
        "# marmotd would do this (--dry-run: nothing was changed):".to_string(),
        format!(
            "install -m 0755 -o marmot -g marmot {} /var/lib/marmot/worker/bin/marmotd",
            exe.display()
        ),
        "    MARMOT_COORDINATOR=192.168.1.25:7070".into(),
        "    MARMOT_TOKEN=<the join token>".into(),
        "    MARMOT_WORKER_FLAGS=--name attic".into(),
        "systemctl daemon-reload".into(),
    ] {
        assert!(stdout.lines().any(|l| l == want), "{want}\nnot in:\n{stdout}");
    }
    assert!(!stdout.contains("0123abcd"), "the token's secret is printed:\n{stdout}");
    assert!(!Path::new("/etc/marmot/worker.env").exists() || is_root(), "a dry run wrote");
    // `--token -` reads it from stdin, out of sight of `ps`.
    let mut cmd = Command::new(bin("marmotd"));
    cmd.args(["install", "worker", "--coordinator", "h", "--token", "-", "--dry-run"]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == "    MARMOT_TOKEN=<the join token>"), "{stdout}");
    let bad = Command::new(bin("marmotd"))
        .args(["install", "worker", "--coordinator", "h", "--token", "-", "--dry-run"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    one_line_error(&bad, "malformed join token");
}

#[test]
fn install_mistakes_are_one_line_each() {
    let token = token();
    // No token for a new worker (the machine running the tests has no marmot installed).
    if !Path::new("/etc/marmot/worker.env").exists() {
        let out = marmotd(&["install", "worker", "--coordinator", "h", "--dry-run"]);
        one_line_error(&out, "--token");
    }
    let out = marmotd(&["install", "worker", "--coordinator", "h", "--token", "x", "--dry-run"]);
    one_line_error(&out, "malformed join token");
    let out = marmotd(&["install", "worker", "--token", &token, "--dry-run"]);
    one_line_error(&out, "--coordinator");
    let out = marmotd(&[
        "install",
        "worker",
        "--coordinator",
        "h",
        "--token",
        &token,
        "--name",
        "my laptop",
        "--dry-run",
    ]);
    one_line_error(&out, "is not a worker name");
    let out = marmotd(&["worker", "--coordinator", "h", "--name", "evil\nname"]);
    one_line_error(&out, "'evil\\nname' is not a worker name");
    assert_eq!(out.status.code(), Some(2));
    let out = marmotd(&["uninstall", "printer"]);
    one_line_error(&out, "printer");
    // Not root: one line that says so (and how to look without changing anything).
    if is_root() {
        let out = as_nobody(&bin("marmotd")).args(["install", "coordinator"]).output().unwrap();
        one_line_error(&out, "must run as root");
        let out = as_nobody(&bin("marmotd")).args(["uninstall"]).output().unwrap();
        one_line_error(&out, "must run as root");
    }
}

/// A dry run where the real run would refuse (not root, no systemd) says so first, in the
/// real run's words, then prints the plan.
#[test]
fn a_dry_run_warns_first_of_what_the_real_run_would_refuse() {
    let warned = |out: &Output, why: &str| {
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("marmotd: warning: without --dry-run this would stop here: ")
                && first.contains(why),
            "{why:?} not said first: {stderr}"
        );
        assert!(stdout.starts_with("# marmotd would do this"), "{stdout}");
    };
    let args = ["install", "coordinator", "--dry-run"];
    if !is_root() {
        return warned(&marmotd(&args), "must run as root");
    }
    let out = as_nobody(&bin("marmotd")).args(args).output().unwrap();
    warned(&out, "must run as root");
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("SKIPPED: systemd runs here, so a dry run as root has nothing to warn of");
    } else {
        warned(&marmotd(&args), "systemd is not running on this machine");
    }
}

/// Where the package's copy of a generated file is.
fn packaged(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/package").join(relative)
}

/// Compares a generated file with the package's copy; with `MARMOT_BLESS=1`, updates the copy.
fn check_current(relative: &str, generated: &[u8], stale: &mut Vec<String>) {
    let path = packaged(relative);
    if std::env::var_os("MARMOT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
    } else if std::fs::read(&path).ok().as_deref() != Some(generated) {
        stale.push(relative.to_string());
    }
}

#[test]
fn the_packages_completions_and_man_pages_are_what_the_binaries_generate() {
    let mut stale = Vec::new();
    let man = tempfile::tempdir().unwrap();
    for binary in ["marmotd", "marmotctl"] {
        for (shell, file) in [
            ("bash", binary.to_string()),
            ("zsh", format!("_{binary}")),
            ("fish", format!("{binary}.fish")),
        ] {
            let out = Command::new(bin(binary)).args(["completions", shell]).output().unwrap();
            assert!(out.status.success(), "{binary} completions {shell}");
            assert!(String::from_utf8_lossy(&out.stdout).contains(binary));
            if shell == "bash" {
                let script = man.path().join(format!("{binary}.bash"));
                std::fs::write(&script, &out.stdout).unwrap();
                let parses = Command::new("bash").arg("-n").arg(&script).status().unwrap();
                assert!(parses.success(), "{binary}'s bash completion does not parse");
                std::fs::remove_file(&script).unwrap();
            }
            check_current(&format!("completions/{shell}/{file}"), &out.stdout, &mut stale);
        }
        let out = Command::new(bin(binary)).arg("man-pages").arg(man.path()).output().unwrap();
        assert!(out.status.success(), "{binary} man-pages");
    }
    let mut pages: Vec<_> = std::fs::read_dir(man.path()).unwrap().map(|e| e.unwrap()).collect();
    pages.sort_by_key(|e| e.file_name());
    let names: Vec<String> =
        pages.iter().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    for want in ["marmotd.1", "marmotd-install-worker.1", "marmotctl.1", "marmotctl-run-pi.1"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for page in &pages {
        let name = page.file_name().to_string_lossy().into_owned();
        check_current(&format!("man/{name}"), &std::fs::read(page.path()).unwrap(), &mut stale);
    }
    // No page left behind for a command that is gone.
    let shipped: Vec<String> = std::fs::read_dir(packaged("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !names.contains(n))
        .collect();
    stale.extend(shipped.into_iter().map(|n| format!("man/{n} (no such command)")));
    assert!(
        stale.is_empty(),
        "systemd/package/ is out of date for {stale:?}: regenerate it with \
         MARMOT_BLESS=1 cargo test -p marmot-tests --test e2e install::the_packages"
    );
}

#[test]
fn the_package_scripts_are_valid_shell_and_call_what_marmotd_has() {
    for script in ["postinst", "prerm", "postrm"] {
        let path = packaged(script);
        let status = Command::new("sh").arg("-n").arg(&path).status().unwrap();
        assert!(status.success(), "{script} does not parse");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o111, 0o111, "{script} is not executable");
    }
    // The postinst's refresh is a real (hidden) command: not root, it refuses in one line.
    if is_root() {
        let out = as_nobody(&bin("marmotd")).args(["install", "refresh"]).output().unwrap();
        one_line_error(&out, "must run as root");
    }
    let postinst = std::fs::read_to_string(packaged("postinst")).unwrap();
    assert!(postinst.contains("/usr/bin/marmotd install refresh"), "{postinst}");
}
