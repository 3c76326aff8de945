//! The previous binary, kept beside the executable as `marmotd.prev` while an update is on
//! probation: the swap that keeps it and puts the new one in place, and the way back. Both
//! the installer and probation use it; it uses neither.

use super::Invocation;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the previous binary is kept: `marmotd.prev` beside `marmotd`.
pub fn prev_path(exe: &Path) -> PathBuf {
    let mut name = exe.file_name().unwrap_or_default().to_os_string();
    name.push(".prev");
    exe.with_file_name(name)
}

/// Keeps the running binary as `marmotd.prev` and renames `new` over it.
pub fn keep_and_replace(exe: &Path, new: &Path) -> Result<()> {
    let prev = prev_path(exe);
    let _ = std::fs::remove_file(&prev);
    std::fs::hard_link(exe, &prev)
        .or_else(|_| std::fs::copy(exe, &prev).map(drop))
        .with_context(|| format!("cannot keep the old binary as {}", prev.display()))?;
    replace(exe, new)
}

/// Puts `marmotd.prev` back in place of the executable.
pub fn restore_prev(exe: &Path) -> Result<()> {
    let prev = prev_path(exe);
    if !prev.exists() {
        bail!("there is no {} to go back to", prev.display());
    }
    replace(exe, &prev)
}

/// Replaces `exe`'s contents by `new`'s, atomically, and syncs the directory so the swap
/// survives a power cut (self-replace does not).
fn replace(exe: &Path, new: &Path) -> Result<()> {
    let is_running = Invocation::get().is_some_and(|i| i.exe == exe)
        && std::env::current_exe().is_ok_and(|e| e == exe);
    if is_running {
        self_replace::self_replace(new).context("cannot replace the running binary")?;
    } else {
        let dir = exe.parent().context("the executable has no directory")?;
        let tmp = tempfile::Builder::new().prefix(".marmotd-swap-").tempfile_in(dir)?;
        std::fs::copy(new, tmp.path())?;
        tmp.persist(exe).map_err(|e| e.error)?;
    }
    if let Some(dir) = exe.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}
