//! Job specs as a client may send them (any JSON), through the task modules' checks and the
//! scheduler's planning: refused with an error, or planned into chunks that cover the units
//! exactly, each of which the job can describe to a worker.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marmotd::scheduler::{plan_chunks, ChunkTargets};
use proto::job::{CountSource, JobSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<JobSpec>(data) else { return };
    // A file source reads the coordinator's disk: not the fuzzer's business.
    if matches!(spec, JobSpec::Count { source: CountSource::File { .. }, .. }) {
        return;
    }
    let Ok(job) = marmotd::tasks::job(spec) else { return };
    let shape = job.shape();
    let units = shape.units;
    for slots in [1, 7, 4096] {
        let plan = plan_chunks(units, shape.units_per_second, slots, &ChunkTargets::default());
        assert!(plan.len() as u64 <= u64::from(u32::MAX), "chunk indices fit");
        if plan.is_empty() {
            assert_eq!(units, 0);
            continue;
        }
        let last = (plan.len() - 1) as u32;
        assert_eq!(plan.range(0).0, 0);
        assert_eq!(plan.range(last).1, units, "the last chunk ends at the last unit");
        assert!(plan.range(last).0 < units, "no empty chunk");
        for k in [0, last] {
            let (start, end) = plan.range(k);
            let _ = job.chunk(start, end, 0);
        }
    }
});
