//! The failed tries of a command job's units that run again (`--retries`), on the
//! coordinator. A chunk's exchange adds a try when its worker reports one; the exchange of
//! the unit's next try writes the earlier ones into the spool before the unit's own record
//! (header only: a try's output is not kept), so the client logs a line per try; when the
//! unit's chunk counts, the job settles its tries into the counts its result shows.
//!
//! Shared by the job and its chunks' exchanges, which run as tasks of their own: the one
//! piece of a job's state that its conversations write.

use proto::command::UnitReport;
use proto::result::RetriedUnit;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The most retried units a result names; past it they are counted.
pub const NAMED: usize = 100;

#[derive(Clone, Default)]
pub struct Tries(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    /// Failed tries of units not yet counted, by unit.
    pending: BTreeMap<u64, Vec<UnitReport>>,
    /// Units counted after more than one try.
    retried: u64,
    /// The first [`NAMED`] of them, with each try's worker.
    named: Vec<RetriedUnit>,
}

impl Tries {
    /// A failed try of `report.unit` (its worker filled in).
    pub fn add(&self, report: UnitReport) {
        self.lock().pending.entry(report.unit).or_default().push(report);
    }

    /// The failed tries of `unit` so far, oldest first.
    pub fn of(&self, unit: u64) -> Vec<UnitReport> {
        self.lock().pending.get(&unit).cloned().unwrap_or_default()
    }

    /// `last` was counted: its earlier tries, if any, make it a retried unit.
    pub fn settle(&self, last: &UnitReport) {
        let mut kept = self.lock();
        let Some(tries) = kept.pending.remove(&last.unit) else { return };
        kept.retried += 1;
        if kept.named.len() < NAMED {
            let mut workers: Vec<String> = tries.into_iter().map(|t| t.worker).collect();
            workers.push(last.worker.clone());
            kept.named.push(RetriedUnit { unit: last.unit, workers });
        }
    }

    /// Units counted after more than one try, and the first [`NAMED`] of them.
    pub fn retried(&self) -> (u64, Vec<RetriedUnit>) {
        let kept = self.lock();
        (kept.retried, kept.named.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::command::UnitEnding;

    fn report(unit: u64, worker: &str, exit: i32) -> UnitReport {
        UnitReport {
            unit,
            ending: UnitEnding::Exited(exit),
            started_ms: 1,
            duration_ms: 2,
            stdout: 0,
            stderr: 0,
            results: 0,
            worker: worker.into(),
        }
    }

    #[test]
    fn a_units_tries_are_kept_until_it_counts_then_named_with_each_worker() {
        let tries = Tries::default();
        tries.add(report(3, "vm", 1));
        tries.add(report(3, "w2", 1));
        tries.add(report(5, "w2", 2));
        assert_eq!(tries.of(3).iter().map(|t| t.worker.as_str()).collect::<Vec<_>>(), ["vm", "w2"]);
        assert!(tries.of(4).is_empty());
        tries.settle(&report(4, "vm", 0)); // never retried
        tries.settle(&report(3, "vm", 0));
        assert!(tries.of(3).is_empty(), "settled");
        let (retried, named) = tries.retried();
        assert_eq!(retried, 1);
        assert_eq!(
            named,
            vec![RetriedUnit { unit: 3, workers: vec!["vm".into(), "w2".into(), "vm".into()] }]
        );
        for unit in 10..10 + NAMED as u64 + 5 {
            tries.add(report(unit, "vm", 1));
            tries.settle(&report(unit, "w2", 0));
        }
        let (retried, named) = tries.retried();
        assert_eq!((retried, named.len()), (NAMED as u64 + 6, NAMED), "counted past the named");
    }
}
