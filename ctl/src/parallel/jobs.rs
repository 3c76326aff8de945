//! The jobs of a `marmotctl parallel` run: its records (one per combination of the input
//! sources) grouped into jobs as GNU parallel groups them (one each; `-n`/`-N`/`-L` at a
//! time; under `-m`, `-X` and `--xargs` as many as a line holds, those of the line that
//! reaches the end of the input spread over the job slots), and each job's line of shell
//! code.

use super::perl::{Perl, PerlError};
use super::template::{PerlValues, Template};

/// How records are grouped into jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batching {
    /// `-n N`, `-N N`, `-L N` (one record each by default); `-N 0` reads one and inserts
    /// none; `context` (under `-N` and `-L`) repeats a word with `{}` per argument.
    Each { records: usize, insert: bool, context: bool },
    /// `-m`, `-X` (`context`), `--xargs`: as many as fit in `max_len` bytes (at most
    /// `records` when `-n` says so); under `-m` and `-X` (`spread`), those of the line that
    /// reaches the end of the input (the first, when all fit in it) spread evenly over the
    /// job slots.
    Fill { context: bool, records: Option<usize>, spread: bool },
}

/// One job: its number from 1, its line, and its arguments (for `--tag`); `skip` when a
/// perl expression of it called `skip()` (it keeps its number, and does not run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub seq: u64,
    pub line: String,
    pub args: Vec<String>,
    pub skip: bool,
}

/// Why the records cannot make jobs.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error(transparent)]
    Perl(#[from] PerlError),
    #[error(
        "command line too long ({len} >= {max} bytes) at input {at}: {shown}. Shorten the \
         argument, or raise -s"
    )]
    TooLong { len: usize, max: usize, at: usize, shown: String },
}

/// Makes the jobs of `records` for `template`, for a run of `slots` job slots: no line
/// reaches `max_len` bytes (a job of a single record is an error then, as in GNU parallel).
pub fn jobs(
    records: &[Vec<String>],
    template: &Template,
    batching: Batching,
    max_len: usize,
    slots: usize,
) -> Result<Vec<Job>, JobsError> {
    let mut perl = match template.has_perl() {
        true => Some(Perl::start()?),
        false => None,
    };
    // What `total_jobs()` says: exact one record batch at a time; under -m and -X, where
    // the jobs are not known before they are made, the records.
    let total = match batching {
        Batching::Each { records: n, .. } => records.len().div_ceil(n.max(1)) as u64,
        Batching::Fill { .. } => records.len() as u64,
    };
    let mut jobs = vec![];
    let mut at = 0;
    let mut spread_once = false;
    let mut per_job = match batching {
        Batching::Each { records, .. } => Some(records.max(1)),
        Batching::Fill { records, .. } => records,
    };
    let context = match batching {
        Batching::Each { context, .. } | Batching::Fill { context, .. } => context,
    };
    while at < records.len() {
        let seq = jobs.len() as u64 + 1;
        let mut line_of =
            |from: usize, to: usize| -> Result<(String, Vec<String>, bool), PerlError> {
                let args = flat(&records[from..to]);
                let shown: Vec<&str> = match batching {
                    Batching::Each { insert: false, .. } => vec![],
                    _ => args.iter().map(String::as_str).collect(),
                };
                let values = match &mut perl {
                    Some(perl) => template.evaluate(perl, &shown, seq, total)?,
                    None => PerlValues::default(),
                };
                let line = template.line(&shown, seq, context, &values);
                Ok((line, args, values.skip))
            };
        // The most records from `at` whose line fits, up to `per_job`: found by doubling the
        // count, then halving the gap (a line grows with its records), so that a line of n
        // records costs about 2·log n lines built, not n (30,000 arguments under --xargs took
        // 25 s one record at a time).
        let limit = per_job.map_or(records.len(), |n| records.len().min(at + n));
        let mut end = at;
        let mut built = None;
        let mut too_long = None;
        let mut step = 1;
        while end < limit {
            let to = match too_long {
                Some(too_long) if too_long - end <= 1 => break,
                Some(too_long) => end + (too_long - end) / 2,
                None => (end + step).min(limit),
            };
            let (line, args, skip) = line_of(at, to)?;
            if line.len() < max_len {
                (end, built) = (to, Some((line, args, skip)));
                step *= 2;
            } else if to == at + 1 {
                let shown: String = records[at].join(" ").chars().take(50).collect();
                return Err(JobsError::TooLong {
                    len: line.len(),
                    max: max_len,
                    at: at + 1,
                    shown,
                });
            } else {
                too_long = Some(to);
            }
        }
        // -m, -X: the records of the line that reaches the end of the input are spread over
        // the job slots, once (GNU parallel's rule: the first line when all fit in it, else
        // the last; a job of one record stays one).
        let spreads = matches!(batching, Batching::Fill { spread: true, .. });
        if spreads && !spread_once && end == records.len() {
            spread_once = true;
            let n = (end - at).div_ceil(slots.max(1));
            per_job = Some(per_job.map_or(n, |p| p.min(n)));
            end = at + n;
            built = Some(line_of(at, end)?);
        }
        let (line, args, skip) = match built {
            Some(built) => built,
            None => line_of(at, end)?,
        };
        jobs.push(Job { seq, line, args, skip });
        at = end;
    }
    Ok(jobs)
}

/// The records' values in order.
fn flat(records: &[Vec<String>]) -> Vec<String> {
    records.iter().flatten().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::template::Names;

    fn template(command: &str) -> Template {
        let words: Vec<String> = command.split(' ').map(String::from).collect();
        Template::new(&words, false, &Names::default(), &[]).unwrap()
    }

    fn numbers(n: usize) -> Vec<Vec<String>> {
        (1..=n).map(|i| vec![i.to_string()]).collect()
    }

    fn lines(jobs: Vec<Job>) -> Vec<String> {
        jobs.into_iter().map(|j| j.line).collect()
    }

    #[test]
    fn fill_spreads_over_the_slots_when_all_fit() {
        let fill = Batching::Fill { context: true, records: None, spread: true };
        let got = lines(jobs(&numbers(10), &template("echo"), fill, 1000, 4).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10"]);
        // --xargs fills lines and spreads nothing, as GNU parallel's.
        let xargs = Batching::Fill { context: false, records: None, spread: false };
        let got = lines(jobs(&numbers(10), &template("echo"), xargs, 1000, 4).unwrap());
        assert_eq!(got, ["echo 1 2 3 4 5 6 7 8 9 10"]);
        let got = lines(jobs(&numbers(13), &template("echo"), xargs, 12, 4).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10 11", "echo 12 13"]);
    }

    #[test]
    fn fill_stops_below_the_length() {
        let fill = Batching::Fill { context: false, records: None, spread: true };
        let got = lines(jobs(&numbers(12), &template("echo"), fill, 12, 1).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10 11", "echo 12"]);
        // Not all in the first line: the last line's records are spread over the slots, as
        // GNU parallel spreads them (`seq 13 | parallel -s 12 -m -j4 echo`).
        let got = lines(jobs(&numbers(13), &template("echo"), fill, 12, 4).unwrap());
        let want = ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10 11", "echo 12", "echo 13"];
        assert_eq!(got, want);
        let got = lines(jobs(&numbers(13), &template("echo"), fill, 12, 1).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10 11", "echo 12 13"]);
        // Spread once: 194 records at the end over three slots, as GNU parallel's -j3.
        let got = jobs(&numbers(3000), &template("echo"), fill, 1000, 3).unwrap();
        let counts: Vec<usize> = got.iter().rev().take(4).map(|j| j.args.len()).collect();
        assert_eq!(counts, [64, 65, 65, 199]);
        let err = jobs(&numbers(1), &template("echo"), fill, 5, 1).unwrap_err();
        assert!(matches!(err, JobsError::TooLong { at: 1, .. }));
    }

    #[test]
    fn every_filled_line_holds_the_most_records_that_fit() {
        // Records of varied lengths, many per line: each line is below the length, and the
        // next record would have taken it there (the last line aside); none is lost.
        let records: Vec<Vec<String>> =
            (1..=3000).map(|i| vec!["x".repeat(1 + i * 7 % 13)]).collect();
        for (max_len, per_job) in [(100, None), (1000, None), (4096, None), (1000, Some(40))] {
            let fill = Batching::Fill { context: false, records: per_job, spread: true };
            let got = jobs(&records, &template("echo"), fill, max_len, 1).unwrap();
            let mut at = 0;
            for job in &got {
                assert!(job.line.len() < max_len, "{max_len}: {}", job.line.len());
                assert_eq!(job.args[..], flat(&records[at..at + job.args.len()])[..]);
                at += job.args.len();
                let full = per_job.is_some_and(|n| job.args.len() == n);
                if at < records.len() && !full {
                    let longer = job.line.len() + 1 + records[at][0].len();
                    assert!(longer >= max_len, "{max_len}: record {at} would have fit");
                }
            }
            assert_eq!(at, records.len(), "{max_len}: every record in a job");
        }
    }

    #[test]
    fn each_takes_n_records_and_n0_inserts_none() {
        let each = Batching::Each { records: 2, insert: true, context: true };
        let got = lines(jobs(&numbers(5), &template("echo {1} x {2}"), each, 1000, 1).unwrap());
        assert_eq!(got, ["echo 1 x 2", "echo 3 x 4", "echo 5 x "]);
        let none = Batching::Each { records: 1, insert: false, context: true };
        let got = lines(jobs(&numbers(2), &template("echo hi"), none, 1000, 1).unwrap());
        assert_eq!(got, ["echo hi ", "echo hi "]);
    }
}
