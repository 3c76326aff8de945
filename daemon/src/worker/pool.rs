//! The slot threads: kernels run here, one chunk per thread, never on the async runtime.

use anyhow::{Context, Result};
use std::sync::Arc;

/// A fixed pool of `slots` threads.
#[derive(Clone)]
pub struct SlotPool {
    pool: Arc<rayon::ThreadPool>,
}

impl SlotPool {
    pub fn new(slots: u32) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(slots.max(1) as usize)
            .thread_name(|i| format!("marmot-slot-{i}"))
            .build()
            .context("cannot start the slot threads")?;
        Ok(SlotPool { pool: Arc::new(pool) })
    }

    /// How many slot threads there are.
    pub fn slots(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `work` on a slot thread and waits for it without blocking the runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let _ = tx.send(work());
        });
        rx.await.ok()
    }
}
