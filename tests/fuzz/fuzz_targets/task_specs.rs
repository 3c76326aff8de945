//! Task specs as a client may send them (any JSON), through the coordinator's checks and
//! planning: refused with an error, or planned into chunks that cover the units exactly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marmotd::scheduler::{plan_chunks, ChunkTargets};
use proto::task::{CountSource, TaskSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<TaskSpec>(data) else { return };
    // A file source reads the coordinator's disk: not the fuzzer's business.
    if matches!(spec, TaskSpec::Count { source: CountSource::File { .. }, .. }) {
        return;
    }
    let Ok(spec) = marmotd::coordinator::cluster::prepare(spec) else { return };
    let units = marmotd::kernels::units(&spec);
    let rate = marmotd::kernels::nominal_rate(&spec);
    for slots in [1, 7, 4096] {
        let plan = plan_chunks(units, rate, slots, &ChunkTargets::default());
        assert!(plan.len() as u64 <= u64::from(u32::MAX), "chunk indices fit");
        if plan.is_empty() {
            assert_eq!(units, 0);
            continue;
        }
        let last = (plan.len() - 1) as u32;
        assert_eq!(plan.range(0).0, 0);
        assert_eq!(plan.range(last).1, units, "the last chunk ends at the last unit");
        assert!(plan.range(last).0 < units, "no empty chunk");
    }
});
