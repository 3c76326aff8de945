//! Cutting a job's units into chunks.
//!
//! Chunks must be many enough to keep every slot busy and to rebalance between fast and slow
//! machines (at least a few per slot), big enough that dispatch overhead (a round trip per chunk)
//! does not show, and small enough that a lost chunk costs little. All chunks but the last have
//! the same size, so their run times are comparable when looking for stragglers.

/// Targets for [`plan_chunks`].
#[derive(Clone, Debug)]
pub struct ChunkTargets {
    pub chunks_per_slot: u32,
    /// No chunk is planned shorter than this on one slot (unless the whole job is).
    pub min_seconds: f64,
    /// No chunk is planned longer than this on one slot.
    pub max_seconds: f64,
    /// How many chunks a job may have (wins over `max_units` and `max_seconds`): as many as
    /// a [`ChunkIndex`](super::ChunkIndex) can count. Only the chunks in flight are held, so
    /// this bounds no memory; it makes chunks longer than `max_seconds` only for jobs of
    /// decades of slot time.
    pub max_chunks: u64,
    /// No chunk holds more units than this.
    pub max_units: u64,
}

impl Default for ChunkTargets {
    fn default() -> Self {
        ChunkTargets {
            chunks_per_slot: 4,
            min_seconds: 0.01,
            max_seconds: 0.5,
            max_chunks: u64::from(u32::MAX),
            max_units: u64::MAX,
        }
    }
}

/// A job's units `0..units`, cut into chunks of `chunk_units` (the last may be shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    pub units: u64,
    pub chunk_units: u64,
}

impl ChunkPlan {
    pub fn len(&self) -> usize {
        self.units.div_ceil(self.chunk_units) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.units == 0
    }

    /// The units of chunk `index`, as `(start, end)`.
    pub fn range(&self, index: u32) -> (u64, u64) {
        let start = u64::from(index) * self.chunk_units;
        (start, start.saturating_add(self.chunk_units).min(self.units))
    }
}

/// Plans `units` of work expected to run at `units_per_second` on one slot, over `slots` slots.
pub fn plan_chunks(units: u64, units_per_second: f64, slots: u32, t: &ChunkTargets) -> ChunkPlan {
    let rate =
        if units_per_second.is_finite() && units_per_second > 0.0 { units_per_second } else { 1.0 };
    let total_seconds = units as f64 / rate;
    let wanted = f64::from(t.chunks_per_slot.max(1)) * f64::from(slots.max(1));
    let seconds = (total_seconds / wanted).clamp(t.min_seconds, t.max_seconds);
    let mut chunk_units = ((seconds * rate).ceil() as u64).clamp(1, t.max_units.max(1));
    if units.div_ceil(chunk_units) > t.max_chunks {
        chunk_units = units.div_ceil(t.max_chunks);
    }
    ChunkPlan { units, chunk_units }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_units_exactly() {
        let plan = plan_chunks(1_000_003, 1e5, 3, &ChunkTargets::default());
        let mut next = 0;
        for i in 0..plan.len() as u32 {
            let (start, end) = plan.range(i);
            assert_eq!(start, next);
            assert!(end > start);
            next = end;
        }
        assert_eq!(next, 1_000_003);
    }

    #[test]
    fn sizes_follow_the_targets() {
        let t = ChunkTargets::default();
        // 10^10 samples at 1.5e9/s on 2 slots: 6.7 s of work, chunks of at most 0.5 s.
        let big = plan_chunks(10_000_000_000, 1.5e9, 2, &t);
        assert!(big.len() >= 8);
        assert!(big.chunk_units as f64 / 1.5e9 <= 0.5 + 1e-9);
        // A tiny job is not cut below ~10 ms of work.
        let tiny = plan_chunks(1000, 1e6, 8, &t);
        assert_eq!(tiny.len(), 1);
        // A mid-size job gets several chunks per slot.
        let mid = plan_chunks(1_000_000_000, 1.5e9, 2, &t);
        assert!(mid.len() >= 8, "{}", mid.len());
        assert_eq!(plan_chunks(0, 1.0, 1, &t).len(), 0);
    }
}
