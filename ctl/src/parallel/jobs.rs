//! The jobs of a `marmotctl parallel` run: its records (one per combination of the input
//! sources) grouped into jobs as GNU parallel groups them (one each; `-n`/`-N`/`-L` at a
//! time; under `-m`, `-X` and `--xargs` as many as a line holds, spread over the job slots
//! when they all fit in one), and each job's line of shell code.

use super::perl::{Perl, PerlError};
use super::template::{PerlValues, Template};

/// How records are grouped into jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batching {
    /// `-n N`, `-N N`, `-L N` (one record each by default); `-N 0` reads one and inserts
    /// none; `context` (under `-N` and `-L`) repeats a word with `{}` per argument.
    Each { records: usize, insert: bool, context: bool },
    /// `-m`, `-X` (`context`), `--xargs`: as many as fit in `max_len` bytes (at most
    /// `records` when `-n` says so); when all fit in the first line, spread evenly over
    /// the job slots.
    Fill { context: bool, records: Option<usize> },
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
        let mut end = at;
        let mut built = None;
        loop {
            if end == records.len() || per_job.is_some_and(|n| end - at >= n) {
                break;
            }
            let (line, args, skip) = line_of(at, end + 1)?;
            if line.len() >= max_len {
                if end == at {
                    let shown: String = records[at].join(" ").chars().take(50).collect();
                    return Err(JobsError::TooLong {
                        len: line.len(),
                        max: max_len,
                        at: at + 1,
                        shown,
                    });
                }
                break;
            }
            end += 1;
            built = Some((line, args, skip));
        }
        // -m, -X: when every record fits in the first line, they are spread over the job
        // slots (as GNU parallel spreads them; a job of one record stays one).
        let first = jobs.is_empty();
        if matches!(batching, Batching::Fill { .. }) && first && end == records.len() {
            let n = end.div_ceil(slots.max(1));
            per_job = Some(per_job.map_or(n, |p| p.min(n)));
            end = n;
            built = Some(line_of(0, end)?);
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
        let fill = Batching::Fill { context: true, records: None };
        let got = lines(jobs(&numbers(10), &template("echo"), fill, 1000, 4).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10"]);
    }

    #[test]
    fn fill_stops_below_the_length() {
        let fill = Batching::Fill { context: false, records: None };
        let got = lines(jobs(&numbers(12), &template("echo"), fill, 12, 1).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10 11", "echo 12"]);
        // Not all in the first line: nothing is spread, whatever the slots.
        let got = lines(jobs(&numbers(12), &template("echo"), fill, 12, 4).unwrap());
        assert_eq!(got, ["echo 1 2 3", "echo 4 5 6", "echo 7 8 9", "echo 10 11", "echo 12"]);
        let err = jobs(&numbers(1), &template("echo"), fill, 5, 1).unwrap_err();
        assert!(matches!(err, JobsError::TooLong { at: 1, .. }));
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
