//! The slot threads: kernels run here, one chunk per thread, never on the async runtime.
//!
//! Plain threads that sleep on a channel between chunks. A work-stealing pool (rayon, used
//! before) spins and yields for a while after each job, looking for more: with tiny chunks on a
//! small machine that spinning took a third of a worker's CPU, taken from the coordinator and
//! the other workers beside it. A slot runs one chunk at a time, so there is nothing to steal.

use anyhow::{Context, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

type Work = Box<dyn FnOnce() + Send>;

/// A fixed pool of `slots` threads. The threads end when the last clone is dropped.
#[derive(Clone)]
pub struct SlotPool {
    queue: mpsc::Sender<Work>,
    slots: usize,
}

impl SlotPool {
    pub fn new(slots: u32) -> Result<Self> {
        let slots = slots.max(1) as usize;
        let (queue, waiting) = mpsc::channel::<Work>();
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..slots {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("marmot-slot-{i}"))
                .spawn(move || serve(&waiting))
                .context("cannot start the slot threads")?;
        }
        Ok(SlotPool { queue, slots })
    }

    /// How many slot threads there are.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Runs `work` on a slot thread and waits for it without blocking the runtime; `None` if
    /// it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let work = Box::new(move || {
            let _ = tx.send(work());
        });
        // The threads outlive every clone of the sender, so the send cannot fail.
        self.queue.send(work).ok()?;
        rx.await.ok()
    }
}

/// One slot thread, at the lowest priority ([`crate::priority`]): takes the next work, runs it, until the pool is dropped. A panicking
/// kernel loses its chunk (its caller sees `None`), not the slot.
fn serve(waiting: &Mutex<mpsc::Receiver<Work>>) {
    crate::priority::lowest_or_warn();
    loop {
        let next = waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
        let Ok(work) = next else { return };
        let _ = catch_unwind(AssertUnwindSafe(work));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_on_every_slot_and_survives_a_panic() {
        let pool = SlotPool::new(2).unwrap();
        assert_eq!(pool.slots(), 2);
        assert_eq!(pool.run(|| 6 * 7).await, Some(42));
        assert_eq!(pool.run(|| -> u32 { panic!("a kernel bug") }).await, None);
        // Both slots still run: two works that wait for each other finish together.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (a, b) = (barrier.clone(), barrier);
        let both = futures_util::future::join(
            pool.run(move || a.wait().is_leader()),
            pool.run(move || b.wait().is_leader()),
        );
        let (a, b) = both.await;
        assert!(a.unwrap() ^ b.unwrap());
        let names = pool.run(|| std::thread::current().name().map(str::to_owned)).await;
        assert!(names.flatten().unwrap().starts_with("marmot-slot-"));
        // SAFETY: a plain query of the calling thread.
        let policy = pool.run(|| unsafe { libc::sched_getscheduler(0) }).await;
        assert_eq!(policy, Some(libc::SCHED_IDLE), "a slot runs at the lowest priority");
    }
}
