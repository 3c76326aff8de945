//! Files arriving ahead of their units on a worker ([`super::ahead`]), by SHA-256: a chunk
//! that needs one waits until it is in (or given up on) instead of asking for it again.

use proto::command::FileRef;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a chunk waits for a file arriving ahead before it asks for the file itself.
const WAIT_FOR_AHEAD: Duration = Duration::from_secs(60);

/// The files arriving ahead on a worker.
#[derive(Debug, Default)]
pub struct Arrivals {
    arriving: Mutex<HashMap<String, watch::Receiver<()>>>,
}

/// A file arriving ahead: a chunk that needs it waits until this is dropped.
pub struct Arrival {
    sha256: String,
    ahead: Arc<Arrivals>,
    _done: watch::Sender<()>,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.ahead.lock().remove(&self.sha256);
    }
}

impl Arrivals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<()>>> {
        self.arriving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `sha256` arriving, unless it is already.
    pub fn start(self: &Arc<Self>, sha256: &str) -> Option<Arrival> {
        let mut arriving = self.lock();
        if arriving.contains_key(sha256) {
            return None;
        }
        let (done, waiting) = watch::channel(());
        arriving.insert(sha256.to_string(), waiting);
        Some(Arrival { sha256: sha256.to_string(), ahead: self.clone(), _done: done })
    }

    /// Waits until none of `files` is arriving ahead any more (arrived, or given up on), for
    /// [`WAIT_FOR_AHEAD`] at most.
    pub async fn wait_for(&self, files: &[FileRef]) {
        let waiting: Vec<watch::Receiver<()>> = {
            let arriving = self.lock();
            files.iter().filter_map(|f| arriving.get(&f.sha256).cloned()).collect()
        };
        let all = futures_util::future::join_all(waiting.into_iter().map(|mut rx| async move {
            // Changes never come: it ends when the arrival is dropped.
            while rx.changed().await.is_ok() {}
        }));
        let _ = tokio::time::timeout(WAIT_FOR_AHEAD, all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(sha: char) -> FileRef {
        FileRef { name: format!("{sha}.txt"), sha256: sha.to_string().repeat(64), size: 1 }
    }

    #[tokio::test]
    async fn a_chunk_waits_for_a_file_arriving_ahead_and_only_for_it() {
        let ahead = Arc::new(Arrivals::default());
        let arrival = ahead.start(&file('a').sha256).unwrap();
        assert!(ahead.start(&file('a').sha256).is_none(), "arriving once at a time");
        // Nothing arriving: no wait.
        tokio::time::timeout(Duration::from_secs(5), ahead.wait_for(&[file('b')])).await.unwrap();
        let both = [file('b'), file('a')];
        let waiting = ahead.wait_for(&both);
        tokio::pin!(waiting);
        let early = tokio::time::timeout(Duration::from_millis(50), &mut waiting).await;
        assert!(early.is_err(), "a is still arriving");
        drop(arrival);
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap();
        assert!(ahead.start(&file('a').sha256).is_some(), "arrived: it may come again");
    }
}
