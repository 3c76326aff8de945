//! Log output: coloured on a terminal, plain in a pipe or a file, and without our own
//! timestamps under systemd, whose journal stamps every line itself.
//!
//! Lines about peers' mistakes go through a [`crate::throttle::Throttle`], and strings from peers are shown
//! with `proto::names::shown` (escaped, quoted, short): a peer can neither forge a log line
//! nor flood the log.
//!
//! `RUST_LOG` chooses what is logged (`info` by default, `warn` for `marmotd demo`), e.g.
//! `RUST_LOG=debug` or `RUST_LOG=marmotd=debug,quinn=warn`.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

/// Sets up logging to stderr; `default_level` applies unless `RUST_LOG` says otherwise. With
/// `gather`, records of INFO and up are also copied for the coordinator's log book (see
/// [`crate::logbook`]), whatever `RUST_LOG` says of stderr.
pub fn init(default_level: &str, gather: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let stderr = std::io::stderr();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal());
    let fmt = match stderr_is_journal() {
        true => fmt.without_time().with_filter(filter).boxed(),
        false => fmt.with_filter(filter).boxed(),
    };
    // Only marmot's own lines travel: a dependency's INFO is not the cluster's news.
    let gathered = gather.then(|| {
        crate::logbook::capture().with_filter(
            tracing_subscriber::filter::Targets::new().with_target("marmotd", tracing::Level::INFO),
        )
    });
    tracing_subscriber::registry().with(fmt).with(gathered).init();
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
