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

/// The scores saved by an earlier run, or none (with a warning if the file is bad).
pub fn load(state_dir: &Path) -> SlotRates {
    read(state_dir).unwrap_or_else(|why| {
        tracing::warn!("bench scores not loaded: {why}");
        SlotRates::new()
    })
}

/// The saved scores: none if there is no file yet, an error if it cannot be used.
fn read(state_dir: &Path) -> Result<SlotRates, String> {
    let path = file(state_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SlotRates::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let scores: SlotRates = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not valid: {e}", path.display()))?;
    Ok(scores.into_iter().filter(|(_, rates)| plausible(rates)).collect())
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
        assert!(read(dir.path()).unwrap_err().contains("is not valid"));
    }

    #[test]
    fn no_file_is_no_scores_and_an_unreadable_one_is_said() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Ok(SlotRates::new()));
        std::fs::create_dir(file(dir.path())).unwrap();
        assert!(read(dir.path()).unwrap_err().contains("cannot read"));
    }

    #[test]
    fn only_plausible_rates_count() {
        assert!(plausible(&[1.0, 2.5e9]));
        assert!(!plausible(&[]));
        assert!(!plausible(&[1.0, 0.0]), "a slot that did nothing");
        assert!(!plausible(&[1.0, -1.0]));
        assert!(!plausible(&[f64::INFINITY]));
        assert!(!plausible(&[f64::NAN, 1.0]));
        assert!(plausible(&vec![1.0; MAX_SLOTS]));
        assert!(!plausible(&vec![1.0; MAX_SLOTS + 1]));
    }
}
