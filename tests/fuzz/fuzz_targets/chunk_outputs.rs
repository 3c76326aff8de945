//! A worker's answer for any chunk of any task: the coordinator's output check accepts or
//! refuses it without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::task::{ChunkOutput, TaskSpec};

fuzz_target!(|data: &[u8]| {
    let Ok((task, start, end, output)) =
        proto::frame::decode::<(TaskSpec, u64, u64, ChunkOutput)>(data)
    else {
        return;
    };
    let _ = marmotd::coordinator::jobs::check_output(&task, start, end, &output);
});
