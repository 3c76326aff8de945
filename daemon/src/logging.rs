//! Log output: coloured on a terminal, plain in a pipe or a file, and without our own
//! timestamps under systemd, whose journal stamps every line itself.
//!
//! `RUST_LOG` chooses what is logged (`info` by default, `warn` for `marmotd demo`), e.g.
//! `RUST_LOG=debug` or `RUST_LOG=marmotd=debug,quinn=warn`.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

/// Sets up logging to stderr; `default_level` applies unless `RUST_LOG` says otherwise.
pub fn init(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let stderr = std::io::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal());
    if stderr_is_journal() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

/// Whether stderr is systemd's journal stream: `JOURNAL_STREAM` names its device and inode,
/// so a variable inherited by a process whose stderr went elsewhere does not count.
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) else { return false };
    is_same_stream(&value.to_string_lossy(), stat.st_dev, stat.st_ino)
}

/// Whether `JOURNAL_STREAM`'s `DEVICE:INODE` names the file with `dev` and `ino`.
fn is_same_stream(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.split_once(':') else { return false };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

#[cfg(test)]
mod tests {
    #[test]
    fn journal_stream_must_name_our_stderr() {
        assert!(super::is_same_stream("12:345", 12, 345));
        assert!(!super::is_same_stream("12:346", 12, 345));
        assert!(!super::is_same_stream("13:345", 12, 345));
        assert!(!super::is_same_stream("garbage", 12, 345));
        assert!(!super::is_same_stream("", 12, 345));
    }
}
