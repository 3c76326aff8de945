//! Installing a new binary over the running one: stage, verify, smoke-test, swap, re-execute.
//!
//! The new bytes are written to a temp file in the executable's own directory (the same file
//! system, so the final rename is atomic), hashed as they arrive, and checked against the
//! offered size and SHA-256; a mismatch deletes the file and changes nothing. The file must
//! then be an executable for this machine and answer `--version` with the offered version
//! within a deadline. Only then is the old binary hard-linked to `marmotd.prev` and the new
//! one renamed over it (self-replace), and the process re-executes itself: same PID, same
//! arguments, so systemd keeps tracking the same service.

use super::binary::elf_arch;
use super::prev;
use super::Invocation;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::{NamedTempFile, TempPath};

/// The largest binary accepted.
pub const MAX_BINARY_SIZE: u64 = 1 << 30;
/// How long `NEW --version` may take.
const SMOKE_TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A new binary being received: a temp file beside the executable, hashed as it is written.
/// Dropped before [`swap`], it deletes itself.
pub struct Staging {
    file: NamedTempFile,
    hasher: Sha256,
    written: u64,
    size: u64,
}

impl Staging {
    /// Starts receiving a binary of `size` bytes to install at `exe`.
    pub fn create(exe: &Path, size: u64) -> Result<Self> {
        if size > MAX_BINARY_SIZE {
            bail!("a {size}-byte binary is over the {MAX_BINARY_SIZE}-byte limit");
        }
        let dir = exe.parent().context("the executable has no directory")?;
        let file = tempfile::Builder::new()
            .prefix(".marmotd-update-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write a new binary into {}", dir.display()))?;
        Ok(Staging { file, hasher: Sha256::new(), written: 0, size })
    }

    /// The bytes received so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The size offered.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.written += bytes.len() as u64;
        if self.written > self.size {
            bail!("more bytes than the {} offered", self.size);
        }
        self.hasher.update(bytes);
        self.file.write_all(bytes).context("cannot write the new binary")
    }

    /// Keeps the bytes received so far as a file of their own (an upload, checked afterwards),
    /// and returns its path.
    pub fn keep(mut self) -> Result<PathBuf> {
        self.file.flush()?;
        let (_, path) = self.file.keep().context("cannot keep the received file")?;
        Ok(path)
    }

    /// Checks the bytes against the offered size and SHA-256, and makes the file executable.
    pub fn finish(mut self, sha256: &str) -> Result<Staged> {
        if self.written != self.size {
            bail!("received {} of {} bytes", self.written, self.size);
        }
        let got = hex::encode(self.hasher.finalize());
        if got != sha256 {
            bail!("the bytes received hash to {got}, not the offered {sha256}");
        }
        self.file.flush()?;
        self.file.as_file().sync_all().context("cannot sync the new binary")?;
        let mut permissions = self.file.as_file().metadata()?.permissions();
        permissions.set_mode(0o755);
        self.file.as_file().set_permissions(permissions)?;
        // Closes our handle: Linux refuses to run a file open for writing (ETXTBSY).
        Ok(Staged { path: self.file.into_temp_path() })
    }
}

impl Staging {
    /// [`Staging::create`], off the async runtime.
    pub async fn create_async(exe: PathBuf, size: u64) -> Result<Self> {
        tokio::task::spawn_blocking(move || Staging::create(&exe, size)).await?
    }

    /// [`Staging::write`], off the async runtime.
    pub async fn write_async(mut self, bytes: Vec<u8>) -> Result<Self> {
        tokio::task::spawn_blocking(move || self.write(&bytes).map(|()| self)).await?
    }

    /// [`Staging::finish`] (hashing done, a sync to disk), off the async runtime.
    pub async fn finish_async(self, sha256: String) -> Result<Staged> {
        tokio::task::spawn_blocking(move || self.finish(&sha256)).await?
    }
}

/// A received binary whose bytes are verified; deleted if dropped before [`swap`].
pub struct Staged {
    path: TempPath,
}

impl Staged {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the binary is an executable for this machine that answers `--version` with
    /// `version`.
    pub async fn check_runs(&self, version: &str) -> Result<()> {
        let mut header = [0u8; 20];
        std::io::Read::read_exact(&mut std::fs::File::open(self.path())?, &mut header)
            .map_err(|_| anyhow!("the new binary is too short to be an executable"))?;
        let arch = elf_arch(&header).map_err(|e| anyhow!("the new binary is {e}"))?;
        if arch != std::env::consts::ARCH {
            bail!("the new binary is for {arch}, this machine is {}", std::env::consts::ARCH);
        }
        let Some(output) = self.run(&["--version".into()], SMOKE_TEST_TIMEOUT).await? else {
            bail!("`NEW --version` did not answer within {SMOKE_TEST_TIMEOUT:?}");
        };
        let said = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !said.contains(version) {
            bail!(
                "`NEW --version` {} and said {:?}, not version {version}",
                output.status,
                said.trim()
            );
        }
        Ok(())
    }
}

impl Staged {
    /// Runs the binary with `args` to its end, or kills it after `limit` (`None`). Retries
    /// while Linux reports the file busy: a child forked elsewhere in this process while the
    /// file was open for writing holds a copy of that handle until it execs.
    pub async fn run(
        &self,
        args: &[OsString],
        limit: Duration,
    ) -> Result<Option<std::process::Output>> {
        for _ in 0..50 {
            let run = tokio::process::Command::new(self.path())
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(limit, run).await {
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(output) => return Ok(Some(output.context("the new binary does not start")?)),
                Err(_) => return Ok(None),
            }
        }
        bail!("the new binary stayed busy (ETXTBSY)")
    }
}

/// Why a verified binary was not installed.
#[derive(Debug, PartialEq, Eq)]
pub enum NotInstalled {
    /// It failed a check, or could not be put in place: nothing changed.
    Failed(String),
    /// It failed its trial start: the machine stays on its old binary.
    RolledBack(String),
}

/// What [`install`] puts where.
pub struct Plan<'a> {
    /// The running executable, replaced.
    pub exe: &'a Path,
    /// Where the update is recorded until the new binary proves itself (`update::pending`).
    pub state_dir: &'a Path,
    pub from_sha256: &'a str,
    pub to_sha256: &'a str,
    /// The version the new binary must say it is.
    pub version: &'a str,
    /// The arguments of a trial start (a worker's own plus [`TRIAL_FLAG`]), if the binary
    /// must pass one before it is installed.
    pub trial: Option<Vec<OsString>>,
}

/// The flag that makes `marmotd worker` a trial start: connect, be welcomed, exit 0.
pub const TRIAL_FLAG: &str = "--update-trial";

/// Installs a verified binary, the same way on a worker and on the coordinator: it must run
/// here and say its version, pass its trial start (if the plan has one), and only then is the
/// update recorded (the next start is on probation) and the binary swapped in. File work runs
/// off the async runtime.
pub async fn install(staged: Staged, plan: Plan<'_>) -> Result<(), NotInstalled> {
    let failed = |e: anyhow::Error| NotInstalled::Failed(format!("{e:#}"));
    staged.check_runs(plan.version).await.map_err(failed)?;
    if let Some(args) = &plan.trial {
        trial_start(&staged, args).await.map_err(|e| NotInstalled::RolledBack(format!("{e:#}")))?;
    }
    let (exe, state_dir) = (plan.exe.to_path_buf(), plan.state_dir.to_path_buf());
    let (from, to) = (plan.from_sha256.to_string(), plan.to_sha256.to_string());
    let swapped = tokio::task::spawn_blocking(move || {
        super::pending::record(&state_dir, &from, &to)?;
        swap(&exe, staged).inspect_err(|_| super::pending::commit(&state_dir))
    })
    .await;
    match swapped {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(failed(e)),
        Err(e) => Err(NotInstalled::Failed(e.to_string())),
    }
}

/// Runs the staged binary with `args`: it must connect, be welcomed and exit 0 within
/// [`proto::wire::TRIAL_TIMEOUT`].
async fn trial_start(staged: &Staged, args: &[OsString]) -> Result<()> {
    let limit = proto::wire::TRIAL_TIMEOUT;
    let Some(output) = staged.run(args, limit).await? else {
        bail!("the new binary did not complete a handshake within {limit:?}");
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
    Err(anyhow!("the new binary {} at its trial start: {}", describe(output.status), last.trim()))
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Keeps the running binary as `marmotd.prev` and renames the new one over it.
pub fn swap(exe: &Path, staged: Staged) -> Result<()> {
    prev::keep_and_replace(exe, staged.path())
}

/// Re-executes this process from its executable with its arguments, the flag `set.0` (if
/// any) set to `set.1`; returns only on failure. Retries ETXTBSY briefly: a child forked
/// while the new file was still open for writing keeps it "busy" until it execs or exits.
pub fn exec_self(set: Option<(&str, String)>) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let Some(invocation) = Invocation::get() else {
        return anyhow!("this process cannot re-execute itself (not started as marmotd)");
    };
    let args = match set {
        Some((flag, value)) => with_flag(&invocation.args, flag, &value),
        None => invocation.args.clone(),
    };
    let mut last = None;
    for _ in 0..50 {
        let e = std::process::Command::new(&invocation.exe).args(&args).exec();
        if e.raw_os_error() != Some(nix::libc::ETXTBSY) {
            return anyhow!("cannot re-execute {}: {e}", invocation.exe.display());
        }
        last = Some(e);
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = last.map_or_else(|| "no attempt".to_string(), |e| e.to_string());
    anyhow!("cannot re-execute {}: {last}", invocation.exe.display())
}

/// `args` with `--flag VALUE` (or `--flag=VALUE`) set to `value`, added if absent.
fn with_flag(args: &[OsString], flag: &str, value: &str) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut found = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == flag {
            out.extend([arg.clone(), value.into()]);
            iter.next();
            found = true;
        } else if arg.to_str().is_some_and(|a| a.starts_with(&format!("{flag}="))) {
            out.push(format!("{flag}={value}").into());
            found = true;
        } else {
            out.push(arg.clone());
        }
    }
    if !found {
        out.extend([flag.into(), value.into()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::prev::{prev_path, restore_prev};

    #[test]
    fn a_flag_is_set_in_any_spelling() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let set = |v: &[&str]| with_flag(&args(v), "--listen", "1.2.3.4:5");
        assert_eq!(
            set(&["c", "--listen", "x:0", "-v"]),
            args(&["c", "--listen", "1.2.3.4:5", "-v"])
        );
        assert_eq!(set(&["c", "--listen=x:0"]), args(&["c", "--listen=1.2.3.4:5"]));
        assert_eq!(set(&["c"]), args(&["c", "--listen", "1.2.3.4:5"]));
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn a_transfer_must_match_its_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(&exe, b"old").unwrap();
        let mut staging = Staging::create(&exe, 5).unwrap();
        staging.write(b"hello").unwrap();
        let err = staging.finish(&sha(b"other")).err().unwrap().to_string();
        assert!(err.contains("hash to"), "{err}");
        // Nothing is left behind, nothing replaced.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");

        let mut staging = Staging::create(&exe, 3).unwrap();
        assert!(staging.write(b"toolong").is_err());
        assert!(Staging::create(&exe, MAX_BINARY_SIZE + 1).is_err());
    }

    #[test]
    fn swap_keeps_the_previous_binary_and_restore_brings_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        std::fs::write(&exe, b"old").unwrap();
        let mut staging = Staging::create(&exe, 3).unwrap();
        staging.write(b"new").unwrap();
        let staged = staging.finish(&sha(b"new")).unwrap();
        swap(&exe, staged).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
        assert_eq!(std::fs::read(prev_path(&exe)).unwrap(), b"old");
        restore_prev(&exe).unwrap();
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
        // Only the two binaries: no temp files left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[tokio::test]
    async fn a_file_that_is_not_an_executable_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("marmotd");
        let script = b"#!/bin/sh\necho marmotd 9.9.9\n";
        let mut staging = Staging::create(&exe, script.len() as u64).unwrap();
        staging.write(script).unwrap();
        let staged = staging.finish(&sha(script)).unwrap();
        let err = staged.check_runs("9.9.9").await.unwrap_err().to_string();
        assert!(err.contains("not an ELF"), "{err}");
    }
}
