//! `--halt`: when a command job stops early, as GNU parallel's option of that name says it.
//!
//! `never` (the default) runs every unit. Otherwise `WHEN,WHAT=N` or `WHEN,WHAT=N%`:
//! - WHEN: `soon` starts no new unit and lets running ones finish; `now` also stops them;
//! - WHAT: `fail` counts failed units, `success` succeeded ones, `done` both;
//! - N: that many units, or N% of the job's units.
//!
//! GNU parallel's older forms are read too: `0` (never), `1` (`soon,fail=1`), `2`
//! (`now,fail=1`), `-1` (`soon,success=1`), `-2` (`now,success=1`), `N%` (`soon,fail=N%`).
//!
//! A job's exit status is GNU parallel's: the number of failed units, at most 101; for a job
//! a rule halted ([`Halt::exit_status`]), 0 after a `success` rule, the failing unit's own
//! status after `fail=1` (`done=1`), the percentage of the units failed when it halted
//! after a `N%` rule, and the failed units when it halted otherwise.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The highest exit status: "101 or more units failed", as GNU parallel caps it.
pub const MAX_EXIT_STATUS: u8 = 101;

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
    /// Percent of the job's units, above 0 and at most 100.
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
    /// What this rule says once the units of `tally` are done, of a job of `units`.
    pub fn verdict(&self, tally: Tally, units: u64) -> Verdict {
        let Halt::When { now, counting, at } = *self else { return Verdict::Go };
        let counted = match counting {
            Counting::Fail => tally.failed,
            Counting::Success => tally.succeeded,
            Counting::Done => tally.failed + tally.succeeded,
        };
        let reached = match at {
            Threshold::Units(n) => counted >= n,
            Threshold::Percent(p) => counted as f64 * 100.0 >= p * units as f64,
        };
        match (reached, now) {
            (false, _) => Verdict::Go,
            (true, false) => Verdict::Soon,
            (true, true) => Verdict::Now,
        }
    }

    /// The job's exit status when this rule halted it as `tally` reached it, `last` the
    /// unit that did (its exit status and signal), as GNU parallel computes it.
    pub fn exit_status(&self, tally: Tally, units: u64, last: (i32, i32)) -> u8 {
        let Halt::When { counting, at, .. } = *self else { return exit_status(tally.failed) };
        match (counting, at) {
            (Counting::Success, _) => 0,
            (_, Threshold::Percent(_)) => {
                let percent = (tally.failed * 100).div_ceil(units.max(1));
                percent.min(u64::from(u8::MAX)) as u8
            }
            // Bash's way: a signal's number plus 128.
            // (A status that is none, a lost unit's -1, is 255 as GNU parallel's errors.)
            (_, Threshold::Units(1)) => match last {
                (_, signal) if signal > 0 => u8::try_from(signal + 128).unwrap_or(u8::MAX),
                (exit, _) => u8::try_from(exit).unwrap_or(u8::MAX),
            },
            (_, Threshold::Units(_)) => exit_status(tally.failed),
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
            "-1" | "-2" => {
                let at = Threshold::Units(1);
                return Ok(Halt::When { now: text == "-2", counting: Counting::Success, at });
            }
            _ => {}
        }
        if let Some(percent) = text.strip_suffix('%').filter(|p| !p.contains(',')) {
            let p = percent.parse().map_err(|_| bad("N% needs a number before the %"))?;
            let halt =
                Halt::When { now: false, counting: Counting::Fail, at: Threshold::Percent(p) };
            halt.check().map_err(|HaltError(_, why)| bad(why))?;
            return Ok(halt);
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
        assert_eq!(now_fail.verdict(tally(100, 0), 200), Verdict::Go);
        assert_eq!(now_fail.verdict(tally(0, 1), 10_000), Verdict::Now);
        let soon_fail = "soon,fail=3".parse::<Halt>().unwrap();
        assert_eq!(soon_fail.verdict(tally(9, 2), 10_000), Verdict::Go);
        assert_eq!(soon_fail.verdict(tally(9, 3), 10_000), Verdict::Soon);
        assert_eq!(soon_fail.verdict(tally(0, 4), 10_000), Verdict::Soon);
        let success = "now,success=2".parse::<Halt>().unwrap();
        assert_eq!(success.verdict(tally(1, 5), 10_000), Verdict::Go);
        assert_eq!(success.verdict(tally(2, 0), 10_000), Verdict::Now);
        let done = "soon,done=3".parse::<Halt>().unwrap();
        assert_eq!(done.verdict(tally(1, 1), 10_000), Verdict::Go);
        assert_eq!(done.verdict(tally(2, 1), 10_000), Verdict::Soon);
        assert_eq!(Halt::Never.verdict(tally(0, 1_000), 10_000), Verdict::Go);
    }

    #[test]
    fn percentages_are_of_all_the_units_as_in_gnu_parallel() {
        let half = "now,fail=50%".parse::<Halt>().unwrap();
        assert_eq!(half.verdict(tally(0, 4), 10), Verdict::Go);
        assert_eq!(half.verdict(tally(0, 5), 10), Verdict::Now, "exactly half");
        assert_eq!(half.verdict(tally(9, 1), 2), Verdict::Now);
        let tenth = "soon,success=10%".parse::<Halt>().unwrap();
        assert_eq!(tenth.verdict(tally(1, 9), 10), Verdict::Soon);
        assert_eq!(tenth.verdict(tally(1, 9), 11), Verdict::Go);
        let old = "20%".parse::<Halt>().unwrap();
        assert_eq!(old.to_string(), "soon,fail=20%");
        assert_eq!("-2".parse::<Halt>().unwrap().to_string(), "now,success=1");
        assert_eq!("-1".parse::<Halt>().unwrap().to_string(), "soon,success=1");
    }

    #[test]
    fn a_halted_jobs_exit_status_is_gnu_parallels() {
        let rule = |r: &str| r.parse::<Halt>().unwrap();
        // `parallel -j2 --halt soon,fail=20% 'echo {}; exit {}' ::: 0 1 … 9` exits 20.
        assert_eq!(rule("soon,fail=20%").exit_status(tally(1, 2), 10, (2, 0)), 20);
        assert_eq!(rule("soon,fail=20%").exit_status(tally(1, 2), 3, (2, 0)), 67, "rounded up");
        assert_eq!(rule("now,fail=1").exit_status(tally(2, 1), 5, (3, 0)), 3);
        assert_eq!(rule("now,fail=1").exit_status(tally(2, 1), 5, (-1, 9)), 137);
        assert_eq!(rule("now,done=1").exit_status(tally(1, 0), 5, (0, 0)), 0);
        assert_eq!(rule("now,fail=1").exit_status(tally(0, 1), 5, (-1, 0)), 255, "lost");
        assert_eq!(rule("now,fail=1").exit_status(tally(0, 1), 5, (300, 0)), 255);
        assert_eq!(rule("now,fail=1").exit_status(tally(0, 1), 5, (-1, 200)), 255);
        assert_eq!(rule("now,success=1").exit_status(tally(1, 3), 7, (0, 0)), 0);
        assert_eq!(rule("soon,fail=3").exit_status(tally(5, 3), 9, (1, 0)), 3);
        assert_eq!(Halt::Never.exit_status(tally(0, 200), 200, (1, 0)), 101);
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
