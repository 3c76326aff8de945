//! Log lines gathered in one place: a worker's INFO-and-up records travel to its coordinator,
//! which keeps the last few hundred per worker (and its own), for `marmotctl logs` and the
//! dashboard.
//!
//! - [`Capture`]: a `tracing` layer that copies each record of INFO and up into the process's
//!   [`Outbox`]: rate-limited ([`RATE`] lines per [`RATE_WINDOW`], the rest counted and said
//!   in the next line let through) and bounded ([`OUTBOX`] lines, oldest dropped), so a
//!   flood of log lines costs neither memory nor the link.
//! - A worker's session takes batches from the outbox and sends them
//!   (`WorkerOpen::Logs`); the coordinator's [`LogBook`] takes its own lines from it as it
//!   is read.
//! - [`LogBook`]: the coordinator's lines, per worker, each ring bounded ([`KEPT_PER_SOURCE`]),
//!   and the number of rings bounded ([`MAX_SOURCES`]): a worker name gone longest is forgotten
//!   first.
//!
//! Lines taken from the outbox are gone: a batch lost with its connection is not sent again.
//! The log on the worker's own stderr (its journal) keeps every line.

use crate::throttle::Throttle;
use proto::api::{KeptLine, LogsReply};
use proto::logs::{Level, LogLine};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Lines waiting in a process's outbox, at most.
pub const OUTBOX: usize = 512;
/// Lines let into the outbox per [`RATE_WINDOW`], at most.
pub const RATE: u32 = 100;
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Lines the coordinator keeps per worker (and of its own).
pub const KEPT_PER_SOURCE: usize = 500;
/// Workers whose lines are kept, at most.
pub const MAX_SOURCES: usize = 1024;
/// Lines one read returns, at most.
pub const MAX_READ: usize = 5000;

/// The lines a process logged and has not handed on yet.
pub struct Outbox {
    inner: Mutex<Pending>,
}

struct Pending {
    lines: VecDeque<LogLine>,
    throttle: Throttle,
}

static OUTBOX_OF_PROCESS: OnceLock<Outbox> = OnceLock::new();

/// The process's outbox, once [`capture`] made one (every role's process; in `marmotd local`,
/// whose roles share one, only the coordinator takes from it).
pub fn outbox() -> Option<&'static Outbox> {
    OUTBOX_OF_PROCESS.get()
}

/// The layer that fills the process's outbox.
pub fn capture() -> Capture {
    let outbox = OUTBOX_OF_PROCESS.get_or_init(Outbox::new);
    Capture { outbox }
}

impl Outbox {
    fn new() -> Self {
        Outbox {
            inner: Mutex::new(Pending {
                lines: VecDeque::new(),
                throttle: Throttle::new(RATE, RATE_WINDOW),
            }),
        }
    }

    /// Adds a line logged at `now`, unless the rate is used up; the oldest goes when full.
    pub fn push(&self, now: Instant, line: LogLine) {
        let mut pending = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(held_back) = pending.throttle.allow(now) else { return };
        if held_back > 0 {
            let note = format!(
                "{held_back} log lines were held back (more than {RATE} in {RATE_WINDOW:?})"
            );
            let note = LogLine::new(line.unix_ms, Level::Warn, "marmotd::logbook", &note);
            pending.lines.push_back(note);
        }
        pending.lines.push_back(line);
        while pending.lines.len() > OUTBOX {
            pending.lines.pop_front();
        }
    }

    /// Takes up to `max` of the oldest lines.
    pub fn take(&self, max: usize) -> Vec<LogLine> {
        let mut pending = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = pending.lines.len().min(max);
        pending.lines.drain(..n).collect()
    }
}

/// A `tracing` layer copying records of INFO and up into an [`Outbox`].
pub struct Capture {
    outbox: &'static Outbox,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            _ => return,
        };
        let mut text = Text::default();
        event.record(&mut text);
        let line = LogLine::new(unix_ms(), level, meta.target(), &text.0);
        self.outbox.push(Instant::now(), line);
    }
}

/// A record's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = match field.name() {
            "message" => write!(self.0, "{value:?}"),
            name => write!(self.0, "{name}={value:?}"),
        };
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

pub fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The coordinator's kept lines: its own, and each worker's.
pub struct LogBook {
    /// By worker name; `None` is the coordinator.
    sources: HashMap<Option<String>, Source>,
    /// The number of the next line kept.
    next: u64,
    /// Where the coordinator's own lines come from (its process's outbox), if anywhere.
    own: Option<&'static Outbox>,
}

#[derive(Default)]
struct Source {
    lines: VecDeque<KeptLine>,
}

impl Source {
    fn last_seq(&self) -> u64 {
        self.lines.back().map_or(0, |l| l.seq)
    }
}

/// Which lines a read wants.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// One worker's lines; `None` for every worker's and the coordinator's.
    pub worker: Option<String>,
    /// Only lines numbered after this one (a follower's `next`).
    pub after: Option<u64>,
    /// Only lines logged at or after this Unix time, in milliseconds.
    pub since_ms: Option<u64>,
    /// At most this many: the first ones after `after`, or else the last ones.
    pub limit: usize,
}

impl LogBook {
    /// A book that also keeps the lines of this process's outbox.
    pub fn with_own(own: Option<&'static Outbox>) -> Self {
        LogBook { own, next: 1, sources: HashMap::new() }
    }

    /// Keeps `lines` from `worker` (`None`: the coordinator).
    pub fn add(&mut self, worker: Option<&str>, lines: Vec<LogLine>) {
        if lines.is_empty() {
            return;
        }
        let key = worker.map(str::to_string);
        if !self.sources.contains_key(&key) && self.sources.len() >= MAX_SOURCES {
            // Forget the source whose last line is oldest (never the coordinator's).
            let oldest = self
                .sources
                .iter()
                .filter(|(k, _)| k.is_some())
                .min_by_key(|(_, s)| s.last_seq())
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.sources.remove(&oldest);
            }
        }
        let next = &mut self.next;
        let source = self.sources.entry(key).or_default();
        for line in lines {
            source.lines.push_back(KeptLine {
                seq: *next,
                worker: worker.map(str::to_string),
                line,
            });
            *next += 1;
        }
        while source.lines.len() > KEPT_PER_SOURCE {
            source.lines.pop_front();
        }
    }

    /// Takes the coordinator's own new lines in.
    fn take_own(&mut self) {
        if let Some(own) = self.own {
            let lines = own.take(OUTBOX);
            self.add(None, lines);
        }
    }

    /// The lines `query` asks for, oldest first.
    pub fn read(&mut self, query: &Query) -> LogsReply {
        self.take_own();
        let limit = query.limit.clamp(1, MAX_READ);
        let wanted = |l: &&KeptLine| {
            query.after.is_none_or(|after| l.seq > after)
                && query.since_ms.is_none_or(|since| l.line.unix_ms >= since)
        };
        let mut lines: Vec<KeptLine> = match &query.worker {
            Some(name) => self
                .sources
                .get(&Some(name.clone()))
                .map(|s| s.lines.iter().filter(wanted).cloned().collect())
                .unwrap_or_default(),
            None => {
                self.sources.values().flat_map(|s| s.lines.iter().filter(wanted).cloned()).collect()
            }
        };
        lines.sort_unstable_by_key(|l| l.seq);
        if query.after.is_some() {
            lines.truncate(limit);
        } else if lines.len() > limit {
            lines.drain(..lines.len() - limit);
        }
        let next = match lines.last() {
            Some(last) => last.seq,
            // Nothing yet: a follower goes on from what exists now.
            None => query.after.unwrap_or(self.next.saturating_sub(1)),
        };
        LogsReply { lines, next }
    }

    /// Whether worker `name` has lines kept.
    pub fn has_source(&self, name: &str) -> bool {
        self.sources.contains_key(&Some(name.to_string()))
    }

    /// The coordinator's last `n` lines: the dashboard's event log.
    pub fn events(&mut self, n: usize) -> Vec<KeptLine> {
        self.take_own();
        let Some(own) = self.sources.get(&None) else { return vec![] };
        own.lines.iter().skip(own.lines.len().saturating_sub(n)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: u64, text: &str) -> LogLine {
        LogLine::new(ms, Level::Info, "t", text)
    }

    fn texts(reply: &LogsReply) -> Vec<String> {
        reply.lines.iter().map(|l| l.line.message.clone()).collect()
    }

    #[test]
    fn an_outbox_lets_through_a_rate_then_says_how_many_it_held_back() {
        let outbox = Outbox::new();
        let t0 = Instant::now();
        for i in 0..RATE + 5 {
            outbox.push(t0, line(1, &format!("l{i}")));
        }
        let first = outbox.take(usize::MAX);
        assert_eq!(first.len(), RATE as usize);
        assert_eq!(first[0].message, "l0");
        outbox.push(t0 + RATE_WINDOW, line(2, "later"));
        let second = outbox.take(usize::MAX);
        assert_eq!(second.len(), 2);
        assert!(second[0].message.starts_with("5 log lines were held back"), "{second:?}");
        assert_eq!(second[0].level, Level::Warn);
        assert_eq!(second[1].message, "later");
    }

    #[test]
    fn an_outbox_keeps_the_newest_lines_and_hands_them_in_batches() {
        let outbox = Outbox::new();
        let mut t = Instant::now();
        for i in 0..OUTBOX + 10 {
            if i % RATE as usize == 0 {
                t += RATE_WINDOW;
            }
            outbox.push(t, line(1, &format!("l{i}")));
        }
        let batch = outbox.take(100);
        assert_eq!(batch.len(), 100);
        assert_eq!(batch[0].message, "l10", "the 10 oldest were dropped");
        assert_eq!(outbox.take(usize::MAX).len(), OUTBOX - 100);
        assert!(outbox.take(10).is_empty());
    }

    #[test]
    fn a_book_reads_one_worker_or_all_in_order_and_follows_from_next() {
        let mut book = LogBook::with_own(None);
        book.add(Some("w1"), vec![line(10, "a"), line(20, "b")]);
        book.add(Some("w2"), vec![line(15, "c")]);
        book.add(None, vec![line(30, "d")]);
        let all = book.read(&Query { limit: 100, ..Default::default() });
        assert_eq!(texts(&all), ["a", "b", "c", "d"]);
        assert_eq!(all.lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(all.lines[3].worker, None);
        assert_eq!(all.next, 4);
        let w1 = book.read(&Query { worker: Some("w1".into()), limit: 100, ..Default::default() });
        assert_eq!(texts(&w1), ["a", "b"]);
        let last = book.read(&Query { limit: 2, ..Default::default() });
        assert_eq!(texts(&last), ["c", "d"], "without after: the last ones");
        let one = book.read(&Query { limit: 1, ..Default::default() });
        assert_eq!(texts(&one), ["d"]);
        let first = book.read(&Query { after: Some(1), limit: 2, ..Default::default() });
        assert_eq!(texts(&first), ["b", "c"], "after: the first ones after it");
        assert_eq!(first.next, 3);
        let since = book.read(&Query { since_ms: Some(15), limit: 100, ..Default::default() });
        assert_eq!(texts(&since), ["b", "c", "d"]);
        let none = book.read(&Query { after: Some(4), limit: 100, ..Default::default() });
        assert!(none.lines.is_empty());
        assert_eq!(none.next, 4, "a follower stays where it was");
        let fresh = LogBook::with_own(None).read(&Query { limit: 1, ..Default::default() });
        assert_eq!(fresh.next, 0);
    }

    #[test]
    fn a_book_is_bounded_per_worker_and_in_workers() {
        let mut book = LogBook::with_own(None);
        book.add(Some("w"), (0..KEPT_PER_SOURCE + 3).map(|i| line(i as u64, "x")).collect());
        let kept =
            book.read(&Query { worker: Some("w".into()), limit: MAX_READ, ..Default::default() });
        assert_eq!(kept.lines.len(), KEPT_PER_SOURCE);
        assert_eq!(kept.lines[0].seq, 4, "the oldest went");
        book.add(None, vec![line(0, "own")]);
        for i in 0..MAX_SOURCES {
            book.add(Some(&format!("n{i}")), vec![line(1, "y")]);
        }
        assert_eq!(book.sources.len(), MAX_SOURCES);
        assert!(!book.sources.contains_key(&Some("w".into())), "the longest silent went first");
        assert!(book.sources.contains_key(&None), "the coordinator's own stay");
        assert_eq!(book.events(5).len(), 1);
    }
}
