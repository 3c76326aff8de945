//! `count`: how often one character occurs in some bytes. Units are bytes: random letters made
//! on the workers, or inline text and files on the coordinator, whose bytes are streamed to the
//! worker with each chunk (plus the few bytes past its end a character starting inside may
//! need). Counts add up.

use super::{Chunk, ChunkInput, DataSource, Feed, Fold, Invalid, Job, Run, Talk, Work};
use crate::kernels::count::{count_random, Pattern, StreamCounter};
use crate::kernels::{simd, KernelError};
use crate::scheduler::{ChunkIndex, JobShape};
use proto::job::{CountSource, JobSpec};
use proto::result::{CountResult, JobResult};
use proto::wire::{ChunkBytes, ChunkOutput, ChunkTask};
use std::sync::Arc;

pub fn job(
    letter: String,
    ignore_case: bool,
    source: CountSource,
) -> Result<Box<dyn Job>, Invalid> {
    let Ok(c) = one_char(&letter) else {
        return Err(Invalid(format!(
            "count needs exactly one character to count, not '{}'",
            letter.escape_debug()
        )));
    };
    let pattern = Pattern::new(c, ignore_case);
    let (data, bytes) = match source {
        CountSource::Random { letters, seed } => (Data::Random { seed }, letters),
        CountSource::Text { text } => {
            let (characters, bytes) = (text.chars().count() as u64, text.len() as u64);
            // The text is held once, for the chunks; views say how much there was.
            let shown = CountSource::Inline { characters, bytes };
            let source = Some(Arc::new(DataSource::Text(text.into_bytes().into())));
            (Data::Held { source, shown }, bytes)
        }
        CountSource::File { path, .. } => {
            let bytes = file_size(&path)?;
            let source = Some(Arc::new(DataSource::File(path.clone().into())));
            (Data::Held { source, shown: CountSource::File { path, bytes } }, bytes)
        }
        CountSource::Inline { .. } => {
            return Err(Invalid("count needs --random, --text or --file".into()));
        }
    };
    Ok(Box::new(CountJob { letter, ignore_case, pattern, data, bytes, count: 0 }))
}

/// The size of a file the coordinator can read, or why it cannot. Opened now, with the
/// coordinator's own rights, so a file it cannot read is refused at once instead of failing
/// on every worker in turn.
fn file_size(path: &str) -> Result<u64, Invalid> {
    let unreadable = |e: std::io::Error| {
        Invalid(format!(
            "the coordinator cannot read {path}: {e}. It reads files with its own \
             rights (under systemd: user marmot, with /home, /root and /tmp hidden): \
             put the file where that user can read it, e.g. under /srv/marmot"
        ))
    };
    // Checked before opening: opening a FIFO would block until a writer came.
    if !std::fs::metadata(path).map_err(unreadable)?.is_file() {
        return Err(Invalid(format!("{path} is not a regular file: count reads files")));
    }
    Ok(std::fs::File::open(path).and_then(|f| f.metadata()).map_err(unreadable)?.len())
}

/// Where a count job's bytes are.
enum Data {
    /// Random letters, made on the workers.
    Random { seed: u64 },
    /// Text or a file on the coordinator, streamed with each chunk; `source` is let go when
    /// the job ends. `shown` is the source as the job's views show it.
    Held { source: Option<Arc<DataSource>>, shown: CountSource },
}

struct CountJob {
    letter: String,
    ignore_case: bool,
    pattern: Pattern,
    data: Data,
    bytes: u64,
    count: u64,
}

impl Job for CountJob {
    fn spec(&self) -> JobSpec {
        let source = match &self.data {
            Data::Random { seed } => CountSource::Random { letters: self.bytes, seed: *seed },
            Data::Held { shown, .. } => shown.clone(),
        };
        JobSpec::Count { letter: self.letter.clone(), ignore_case: self.ignore_case, source }
    }

    fn shape(&self) -> JobShape {
        let rate = match self.data {
            Data::Random { .. } => 2.0e9,
            // Streamed bytes: bounded by the network and the coordinator's disk.
            Data::Held { .. } => 5.0e8,
        };
        JobShape { revocable: true, ..JobShape::new(self.bytes, rate) }
    }

    fn chunk(&self, start: u64, end: u64, _attempt: u32) -> Chunk {
        let (bytes, input) = match &self.data {
            Data::Random { seed } => {
                (ChunkBytes::Random { letters: self.bytes, seed: *seed }, None)
            }
            Data::Held { source, .. } => {
                let tail = self.pattern.max_len() as u64 - 1;
                let stop = end.saturating_add(tail).min(self.bytes);
                let input = source.clone().map(|source| ChunkInput { source, start, stop });
                (ChunkBytes::Streamed, input)
            }
        };
        let task =
            ChunkTask::Count { letter: self.letter.clone(), ignore_case: self.ignore_case, bytes };
        Chunk { task, talk: Talk::Plain(input) }
    }

    fn reduce(&mut self, _chunk: ChunkIndex, _start: u64, output: ChunkOutput) -> Fold {
        if let ChunkOutput::Count { count } = output {
            self.count += count;
        }
        Fold::Added
    }

    fn revoke(&mut self, output: &ChunkOutput) {
        if let ChunkOutput::Count { count } = output {
            self.count -= count;
        }
    }

    fn result(&self, run: Run) -> JobResult {
        JobResult::Count(CountResult {
            letter: self.letter.clone(),
            ignore_case: self.ignore_case,
            count: self.count,
            bytes: self.bytes,
            seconds: run.seconds,
            bytes_per_second: self.bytes as f64 / run.seconds.max(1e-9),
            workers: run.workers,
        })
    }

    fn ended(&mut self) {
        // No chunk will read the job's bytes again; those in flight hold their own reference.
        if let Data::Held { source, .. } = &mut self.data {
            *source = None;
        }
    }
}

/// The one character of a `count` letter.
pub fn one_char(letter: &str) -> Result<char, KernelError> {
    let mut chars = letter.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(KernelError::BadRequest(format!(
            "the letter to count must be exactly one character, not '{}'",
            letter.escape_debug()
        ))),
    }
}

/// How many units a chunk's bytes hold, as far as its task says.
pub fn units(bytes: &ChunkBytes) -> u64 {
    match bytes {
        ChunkBytes::Random { letters, .. } => *letters,
        // The chunk's range is all a streamed chunk knows of its source.
        ChunkBytes::Streamed => u64::MAX,
        ChunkBytes::RetiredText { .. } | ChunkBytes::RetiredFile { .. } => 0,
    }
}

/// Whether `output` can be a count over `units` bytes.
pub fn check(units: u64, output: &ChunkOutput) -> bool {
    matches!(output, ChunkOutput::Count { count } if *count <= units)
}

pub fn work(
    letter: &str,
    ignore_case: bool,
    bytes: ChunkBytes,
    start: u64,
    end: u64,
) -> Result<Work, KernelError> {
    let pattern = Pattern::new(one_char(letter)?, ignore_case);
    match bytes {
        ChunkBytes::Random { seed, .. } => Ok(Work::Compute(Box::new(move |cancel| {
            let count = count_random(&pattern, seed, start, end, simd::Level::detect(), cancel)?;
            Ok(ChunkOutput::Count { count })
        }))),
        ChunkBytes::Streamed => {
            let own = end - start;
            let allowed = own + pattern.max_len() as u64 - 1;
            Ok(Work::Stream(Box::new(StreamedCount {
                counter: StreamCounter::new(pattern, own),
                own,
                allowed,
            })))
        }
        ChunkBytes::RetiredText { .. } | ChunkBytes::RetiredFile { .. } => {
            Err(KernelError::BadRequest(
                "a count over bytes needs its bytes streamed with the chunk".into(),
            ))
        }
    }
}

/// A count over bytes streamed after the chunk's request.
struct StreamedCount {
    counter: StreamCounter,
    own: u64,
    allowed: u64,
}

impl Feed for StreamedCount {
    fn own(&self) -> u64 {
        self.own
    }

    fn allowed(&self) -> u64 {
        self.allowed
    }

    fn feed(&mut self, piece: &[u8]) {
        self.counter.feed(piece);
    }

    fn finish(self: Box<Self>) -> ChunkOutput {
        ChunkOutput::Count { count: self.counter.finish() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Cancel;
    use proto::wire::ChunkRequest;

    fn text(text: &str) -> Box<dyn Job> {
        job("é".into(), true, CountSource::Text { text: text.into() }).unwrap()
    }

    #[test]
    fn requests_that_cannot_be_counted_say_why() {
        let random = CountSource::Random { letters: 1, seed: 0 };
        let e = job("ab".into(), false, random.clone()).err().unwrap();
        assert_eq!(e.0, "count needs exactly one character to count, not 'ab'");
        assert!(job(String::new(), false, random).is_err());
        let inline = CountSource::Inline { characters: 1, bytes: 1 };
        assert!(job("e".into(), false, inline)
            .err()
            .unwrap()
            .0
            .contains("--random, --text or --file"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let e = job("e".into(), false, CountSource::File { path: path.clone(), bytes: 0 })
            .err()
            .unwrap();
        assert_eq!(e.0, format!("{path} is not a regular file: count reads files"));
        let missing = format!("{path}/missing");
        let e =
            job("e".into(), false, CountSource::File { path: missing, bytes: 0 }).err().unwrap();
        assert!(e.0.contains("cannot read") && e.0.contains("/srv/marmot"), "{}", e.0);
    }

    #[test]
    fn inline_text_is_streamed_and_shown_by_its_size() {
        let mut job = text("1ÉmyWordToCountÉé");
        assert_eq!(job.shape().units, 20);
        let shown = JobSpec::Count {
            letter: "é".into(),
            ignore_case: true,
            source: CountSource::Inline { characters: 17, bytes: 20 },
        };
        assert_eq!(job.spec(), shown);
        let chunk = job.chunk(0, 2, 0);
        assert!(matches!(chunk.task, ChunkTask::Count { bytes: ChunkBytes::Streamed, .. }));
        let input = chunk.input().unwrap();
        assert_eq!((input.start, input.stop), (0, 3), "one byte past: 'É' is two");
        assert_eq!(job.chunk(18, 20, 0).input().unwrap().stop, 20, "never past the end");
        job.reduce(0, 0, ChunkOutput::Count { count: 2 });
        job.reduce(1, 10, ChunkOutput::Count { count: 1 });
        job.ended();
        assert!(job.chunk(0, 2, 0).input().is_none(), "the text is let go when the job ends");
        let JobResult::Count(r) = job.result(Run { seconds: 0.5, workers: vec![] }) else {
            panic!()
        };
        assert_eq!((r.count, r.bytes, r.bytes_per_second), (3, 20, 40.0));
    }

    #[test]
    fn workers_count_across_chunk_boundaries() {
        let request = |start, end| ChunkRequest {
            job: 1,
            chunk: 0,
            task: ChunkTask::Count {
                letter: "é".into(),
                ignore_case: true,
                bytes: ChunkBytes::Streamed,
            },
            start,
            end,
        };
        let bytes = "aéÉé".as_bytes();
        let cancel = Cancel::default();
        let first = super::super::run_now(&request(0, 2), &bytes[..3], &cancel).unwrap();
        let rest = super::super::run_now(&request(2, 7), &bytes[2..], &cancel).unwrap();
        assert_eq!(
            (first, rest),
            (ChunkOutput::Count { count: 1 }, ChunkOutput::Count { count: 2 })
        );
        let Ok(Work::Stream(feed)) = work("é", true, ChunkBytes::Streamed, 10, 15) else {
            panic!()
        };
        assert_eq!((feed.own(), feed.allowed()), (5, 6), "its own bytes, and one past for 'É'");
        let retired = ChunkBytes::RetiredText { text: "é".into() };
        assert!(work("é", true, retired, 0, 1).is_err(), "no coordinator sends a text");
        assert!(check(2, &ChunkOutput::Count { count: 2 }));
        assert!(!check(2, &ChunkOutput::Count { count: 3 }));
    }
}
