//! Bench scores kept in the state dir (`bench-scores.json`), so a restarted or updated
//! coordinator still sizes chunks by them and `marmotctl workers` still shows them.
//!
//! Scores are pi samples per second of each slot, by worker name. The file is the
//! coordinator's own, but is read as carefully as anything else: a missing, unreadable or
//! malformed file (or implausible values in it) means no scores, with a warning, never a
//! failed start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Scores by worker name: each slot's rate.
pub type SlotRates = HashMap<String, Vec<f64>>;

/// The most slots a worker can have, and so the most rates a score may hold.
const MAX_SLOTS: usize = 4096;

fn file(state_dir: &Path) -> PathBuf {
    state_dir.join("bench-scores.json")
}

/// The scores saved by an earlier run, or none.
pub fn load(state_dir: &Path) -> SlotRates {
    let path = file(state_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SlotRates::new(),
        Err(e) => {
            tracing::warn!("bench scores not loaded: cannot read {}: {e}", path.display());
            return SlotRates::new();
        }
    };
    match serde_json::from_slice::<SlotRates>(&bytes) {
        Ok(scores) => scores.into_iter().filter(|(_, rates)| plausible(rates)).collect(),
        Err(e) => {
            tracing::warn!("bench scores not loaded: {} is not valid: {e}", path.display());
            SlotRates::new()
        }
    }
}

/// Saves the plausible scores (atomically); a failure is logged, the scores stay in memory.
pub fn save(state_dir: &Path, scores: &SlotRates) {
    let path = file(state_dir);
    // JSON has no NaN: a bad value would make the whole file unreadable.
    let kept: SlotRates = scores
        .iter()
        .filter(|(_, rates)| plausible(rates))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let written = serde_json::to_vec(&kept)
        .map_err(|e| e.to_string())
        .and_then(|bytes| certs::files::write_private(&path, &bytes).map_err(|e| e.to_string()));
    if let Err(e) = written {
        tracing::warn!("bench scores not saved to {}: {e}", path.display());
    }
}

fn plausible(rates: &[f64]) -> bool {
    !rates.is_empty() && rates.len() <= MAX_SLOTS && rates.iter().all(|r| r.is_finite() && *r > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_scores_come_back_and_bad_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty(), "no file, no scores");
        let mut scores = SlotRates::new();
        scores.insert("laptop-1".into(), vec![2.5e9, 2.4e9]);
        scores.insert("broken".into(), vec![f64::NAN]);
        scores.insert("empty".into(), vec![]);
        save(dir.path(), &scores);
        let back = load(dir.path());
        assert_eq!(back.len(), 1);
        assert_eq!(back["laptop-1"], vec![2.5e9, 2.4e9]);
        std::fs::write(file(dir.path()), "{not json").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
