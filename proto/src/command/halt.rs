//! `--halt`: when a command job stops early, as GNU parallel's option of that name says it.
//!
//! `never` (the default) runs every unit. Otherwise `WHEN,WHAT=N` or `WHEN,WHAT=N%`:
//! - WHEN: `soon` starts no new unit and lets running ones finish; `now` also stops them;
//! - WHAT: `fail` counts failed units, `success` succeeded ones, `done` both;
//! - N: that many units, or N% of the units done so far (once at least 3 are done).
//!
//! GNU parallel's older forms are read too: `0` (never), `1` (`soon,fail=1`), `2`
//! (`now,fail=1`). A job's exit status is the number of failed units, at most 101.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The highest exit status: "101 or more units failed", as GNU parallel caps it.
pub const MAX_EXIT_STATUS: u8 = 101;

/// How many units must be done before a percentage can halt a job.
pub const MIN_DONE_FOR_PERCENT: u64 = 3;

/// When a job halts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Halt {
    #[default]
    Never,
    When {
        now: bool,
        counting: Counting,
        at: Threshold,
    },
}

/// Which units count toward a halt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Counting {
    Fail,
    Success,
    Done,
}

/// How many counted units halt the job.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    Units(u64),
    /// Percent of the units done so far, above 0 and at most 100.
    Percent(f64),
}

/// The units of a job so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub succeeded: u64,
    pub failed: u64,
}

/// What a halt rule says of a tally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep starting units.
    Go,
    /// Start no new unit; let running ones finish.
    Soon,
    /// Stop everything now.
    Now,
}

/// A `--halt` value that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--halt {0:?} is not a halt rule: {1} (e.g. `now,fail=1`, `soon,fail=3`, `now,success=1`, `soon,fail=10%`, `never`)")]
pub struct HaltError(String, &'static str);

impl Halt {
    /// What this rule says once the units of `tally` are done.
    pub fn verdict(&self, tally: Tally) -> Verdict {
        let Halt::When { now, counting, at } = *self else { return Verdict::Go };
        let counted = match counting {
            Counting::Fail => tally.failed,
            Counting::Success => tally.succeeded,
            Counting::Done => tally.failed + tally.succeeded,
        };
        let done = tally.failed + tally.succeeded;
        let reached = match at {
            Threshold::Units(n) => counted >= n,
            Threshold::Percent(p) => {
                done >= MIN_DONE_FOR_PERCENT && counted as f64 * 100.0 >= p * done as f64
            }
        };
        match (reached, now) {
            (false, _) => Verdict::Go,
            (true, false) => Verdict::Soon,
            (true, true) => Verdict::Now,
        }
    }

    /// Checks a rule that came over the network.
    pub fn check(&self) -> Result<(), HaltError> {
        match *self {
            Halt::When { at: Threshold::Units(0), .. } => {
                Err(HaltError(self.to_string(), "the count must be at least 1"))
            }
            Halt::When { at: Threshold::Percent(p), .. } if !(p > 0.0 && p <= 100.0) => {
                Err(HaltError(self.to_string(), "a percentage must be above 0 and at most 100"))
            }
            _ => Ok(()),
        }
    }
}

/// The exit status of a command job with `failed` failed units.
pub fn exit_status(failed: u64) -> u8 {
    failed.min(u64::from(MAX_EXIT_STATUS)) as u8
}

impl FromStr for Halt {
    type Err = HaltError;

    fn from_str(text: &str) -> Result<Halt, HaltError> {
        let bad = |why| HaltError(text.to_string(), why);
        let fail_one = |now| Halt::When { now, counting: Counting::Fail, at: Threshold::Units(1) };
        match text {
            "never" | "0" => return Ok(Halt::Never),
            "1" => return Ok(fail_one(false)),
            "2" => return Ok(fail_one(true)),
            _ => {}
        }
        let (when, rule) = text.split_once(',').ok_or_else(|| bad("it needs WHEN,WHAT=N"))?;
        let now = match when {
            "now" => true,
            "soon" => false,
            _ => return Err(bad("WHEN is `now` or `soon`")),
        };
        let (what, count) = rule.split_once('=').ok_or_else(|| bad("it needs WHAT=N"))?;
        let counting = match what {
            "fail" => Counting::Fail,
            "success" => Counting::Success,
            "done" => Counting::Done,
            _ => return Err(bad("WHAT is `fail`, `success` or `done`")),
        };
        let at = match count.strip_suffix('%') {
            Some(percent) => Threshold::Percent(
                percent.parse().map_err(|_| bad("N% needs a number before the %"))?,
            ),
            None => Threshold::Units(count.parse().map_err(|_| bad("N is a whole number"))?),
        };
        let halt = Halt::When { now, counting, at };
        halt.check().map_err(|HaltError(_, why)| bad(why))?;
        Ok(halt)
    }
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Halt::When { now, counting, at } = self else { return f.write_str("never") };
        let when = if *now { "now" } else { "soon" };
        let what = match counting {
            Counting::Fail => "fail",
            Counting::Success => "success",
            Counting::Done => "done",
        };
        match at {
            Threshold::Units(n) => write!(f, "{when},{what}={n}"),
            Threshold::Percent(p) => write!(f, "{when},{what}={p}%"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(succeeded: u64, failed: u64) -> Tally {
        Tally { succeeded, failed }
    }

    #[test]
    fn rules_read_as_gnu_parallel_writes_them_and_print_back() {
        for text in [
            "never",
            "now,fail=1",
            "soon,fail=3",
            "now,success=1",
            "soon,done=5",
            "soon,fail=10%",
            "now,fail=2.5%",
        ] {
            assert_eq!(text.parse::<Halt>().unwrap().to_string(), text);
        }
        assert_eq!("0".parse::<Halt>().unwrap(), Halt::Never);
        assert_eq!("1".parse::<Halt>().unwrap().to_string(), "soon,fail=1");
        assert_eq!("2".parse::<Halt>().unwrap().to_string(), "now,fail=1");
        assert_eq!(Halt::default(), Halt::Never);
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let why = |text: &str| text.parse::<Halt>().unwrap_err().1;
        assert_eq!(why("later,fail=1"), "WHEN is `now` or `soon`");
        assert_eq!(why("now"), "it needs WHEN,WHAT=N");
        assert_eq!(why("now,fail"), "it needs WHAT=N");
        assert_eq!(why("now,crash=1"), "WHAT is `fail`, `success` or `done`");
        assert_eq!(why("now,fail=x"), "N is a whole number");
        assert_eq!(why("now,fail=-1"), "N is a whole number");
        assert_eq!(why("now,fail=x%"), "N% needs a number before the %");
        assert_eq!(why("now,fail=0"), "the count must be at least 1");
        assert_eq!(why("now,fail=0%"), "a percentage must be above 0 and at most 100");
        assert_eq!(why("now,fail=101%"), "a percentage must be above 0 and at most 100");
        assert_eq!(why("now,fail=NaN%"), "a percentage must be above 0 and at most 100");
        assert!("now,fail=100%".parse::<Halt>().is_ok());
        let e = "3".parse::<Halt>().unwrap_err().to_string();
        assert!(
            e.starts_with("--halt \"3\" is not a halt rule: it needs WHEN,WHAT=N (e.g."),
            "{e}"
        );
    }

    #[test]
    fn counts_halt_soon_or_now_once_reached() {
        let now_fail = "now,fail=1".parse::<Halt>().unwrap();
        assert_eq!(now_fail.verdict(tally(100, 0)), Verdict::Go);
        assert_eq!(now_fail.verdict(tally(0, 1)), Verdict::Now);
        let soon_fail = "soon,fail=3".parse::<Halt>().unwrap();
        assert_eq!(soon_fail.verdict(tally(9, 2)), Verdict::Go);
        assert_eq!(soon_fail.verdict(tally(9, 3)), Verdict::Soon);
        assert_eq!(soon_fail.verdict(tally(0, 4)), Verdict::Soon);
        let success = "now,success=2".parse::<Halt>().unwrap();
        assert_eq!(success.verdict(tally(1, 5)), Verdict::Go);
        assert_eq!(success.verdict(tally(2, 0)), Verdict::Now);
        let done = "soon,done=3".parse::<Halt>().unwrap();
        assert_eq!(done.verdict(tally(1, 1)), Verdict::Go);
        assert_eq!(done.verdict(tally(2, 1)), Verdict::Soon);
        assert_eq!(Halt::Never.verdict(tally(0, 1_000)), Verdict::Go);
    }

    #[test]
    fn percentages_wait_for_three_done_units() {
        let half = "now,fail=50%".parse::<Halt>().unwrap();
        assert_eq!(half.verdict(tally(0, 2)), Verdict::Go, "only two done");
        assert_eq!(half.verdict(tally(1, 2)), Verdict::Now);
        assert_eq!(half.verdict(tally(2, 2)), Verdict::Now, "exactly half");
        assert_eq!(half.verdict(tally(3, 2)), Verdict::Go);
        let tenth = "soon,success=10%".parse::<Halt>().unwrap();
        assert_eq!(tenth.verdict(tally(1, 9)), Verdict::Soon);
        assert_eq!(tenth.verdict(tally(1, 10)), Verdict::Go);
    }

    #[test]
    fn rules_off_the_network_are_checked() {
        let zero = Halt::When { now: true, counting: Counting::Fail, at: Threshold::Units(0) };
        assert!(zero.check().is_err());
        let nan =
            Halt::When { now: true, counting: Counting::Fail, at: Threshold::Percent(f64::NAN) };
        assert!(nan.check().is_err());
        assert!(Halt::Never.check().is_ok());
    }

    #[test]
    fn the_exit_status_counts_failed_units_up_to_101() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(3), 3);
        assert_eq!(exit_status(101), 101);
        assert_eq!(exit_status(102), 101);
        assert_eq!(exit_status(u64::MAX), 101);
    }
}
