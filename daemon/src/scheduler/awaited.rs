//! Command chunks given before a restart, waiting for their member instead of running again:
//! their units may still run on the worker they were given to, under its lease. The member's
//! next session says which chunks it runs or holds ([`Event::MemberHolds`]); those wait for
//! its delivery, the others run again at once, and a member that does not come back within
//! [`AWAIT_MEMBER`] has its chunks run elsewhere. A kernel's chunk is not awaited: it runs
//! again at once (it has no side effects), and a result held through the restart still
//! counts if it comes first.
//!
//! [`Event::MemberHolds`]: super::Event::MemberHolds

use super::{Action, ChunkIndex, JobId, Scheduler, WorkerId};
use std::time::Duration;

/// How long a chunk given before a restart waits for its member to say it still holds it
/// (a worker reconnects within a few seconds of its coordinator's return), and, once that
/// member's worker is lost again, for it to come back.
pub const AWAIT_MEMBER: Duration = Duration::from_secs(15);

/// Why a started chunk waits, rather than running again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Awaited {
    /// For its member to say, until then, whether it still runs or holds it.
    Until(Duration),
    /// Its member said it does: until it delivers, or its worker is lost.
    Held,
}

impl<R: PartialEq> Scheduler<R> {
    /// Makes a resumed command job's given chunks (not running, not done) wait for their
    /// members until `now` + [`AWAIT_MEMBER`] rather than run again.
    pub(super) fn await_given(&mut self, job: JobId, now: Duration) {
        let Some(job) = self.jobs.get_mut(&job).filter(|job| job.exec) else { return };
        for state in job.started.values_mut() {
            if !state.given.is_empty() && state.running.is_empty() {
                state.awaited = Some(Awaited::Until(now + AWAIT_MEMBER));
            }
        }
        let started = &job.started;
        job.retry.retain(|chunk| started.get(chunk).is_none_or(|s| s.awaited.is_none()));
    }

    /// `worker`'s member runs or holds the chunks in `held`: its awaited chunks among them
    /// wait for its delivery; the others it was given run again now.
    pub(super) fn member_holds(
        &mut self,
        worker: WorkerId,
        held: &[(JobId, ChunkIndex)],
        out: &mut Vec<Action<R>>,
    ) {
        let Some(member) = self.member(worker) else { return };
        for (&id, job) in &mut self.jobs {
            for (&chunk, state) in &mut job.started {
                if state.awaited.is_none() || !state.given.contains(&member) {
                    continue;
                }
                if held.contains(&(id, chunk)) {
                    state.awaited = Some(Awaited::Held);
                } else {
                    state.awaited = None;
                    job.retry.push_back(chunk);
                    job.progress.chunks_rerun += 1;
                    out.push(Action::UnitsLost { job: id, chunk, member: member.clone() });
                }
            }
        }
    }

    /// At `now`: awaited chunks whose time is up run again.
    pub(super) fn lapse_awaited(&mut self, now: Duration, out: &mut Vec<Action<R>>) {
        for (&id, job) in &mut self.jobs {
            for (&chunk, state) in &mut job.started {
                if matches!(state.awaited, Some(Awaited::Until(until)) if until <= now) {
                    state.awaited = None;
                    job.retry.push_back(chunk);
                    job.progress.chunks_rerun += 1;
                    for member in &state.given {
                        out.push(Action::UnitsLost { job: id, chunk, member: member.clone() });
                    }
                }
            }
        }
    }

    /// `member` has no worker connected any more (at `now`): the chunks it held wait
    /// [`AWAIT_MEMBER`] for it to come back and say so again.
    pub(super) fn member_gone(&mut self, member: &str, now: Duration) {
        if self.workers.values().any(|w| w.member == member) {
            return;
        }
        for job in self.jobs.values_mut() {
            for state in job.started.values_mut() {
                if state.awaited == Some(Awaited::Held) && state.given.iter().any(|m| m == member) {
                    state.awaited = Some(Awaited::Until(now + AWAIT_MEMBER));
                }
            }
        }
    }
}
