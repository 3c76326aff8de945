//! A chunk of any task as it arrives on either side: the coordinator's output check accepts
//! or refuses a worker's answer, and a worker accepts or refuses a request, without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::wire::{ChunkOutput, ChunkRequest, ChunkTask};

fuzz_target!(|data: &[u8]| {
    let Ok((task, start, end, output)) =
        proto::frame::decode::<(ChunkTask, u64, u64, ChunkOutput)>(data)
    else {
        return;
    };
    let _ = marmotd::tasks::check_output(&task, start, end, &output);
    // Only what the worker decides before running: the kernels have fuzz targets of their own.
    let _ = marmotd::tasks::work(&ChunkRequest { job: 1, chunk: 0, task, start, end });
});
