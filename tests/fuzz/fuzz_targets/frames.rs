//! Every message a peer can send, decoded from any bytes: an error or a message, never a
//! panic or an unbounded allocation; what decodes passes or fails its checks cleanly, and
//! its encoding decodes and encodes to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::frame::{decode, encode};
use proto::wire::*;
use serde::{de::DeserializeOwned, Serialize};

fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let msg = decode::<T>(data).ok()?;
    let bytes = encode(&msg).expect("a decoded message encodes");
    let again: T = decode(&bytes).expect("its encoding decodes");
    assert_eq!(encode(&again).expect("encodes"), bytes, "the same bytes again");
    Some(msg)
}

fuzz_target!(|data: &[u8]| {
    match round_trip::<WorkerOpen>(data) {
        Some(
            WorkerOpen::Hello(hello) | WorkerOpen::Trial(hello) | WorkerOpen::HelloWith(hello, _),
        ) => {
            let _ = hello.check();
        }
        Some(WorkerOpen::Join(join)) => {
            let _ = proto::names::check_worker_name(&join.name);
            let _ = proto::names::shown(&join.name);
        }
        // What the coordinator checks of a delivered result before it reaches a job.
        Some(WorkerOpen::Deliver { request, output }) => {
            let ChunkRequest { task, start, end, .. } = &request;
            let _ = marmotd::tasks::check_output(task, *start, *end, &output);
        }
        // A member's log lines, as the coordinator checks them before keeping them.
        Some(WorkerOpen::Logs(lines)) => {
            let _ = proto::logs::check_batch(&lines);
        }
        // Units delivered after a lost connection: the request is matched against the job
        // as the coordinator cuts it, its units checked as they come (the e2e tests).
        Some(WorkerOpen::DeliverUnits { request }) => {
            let _ = matches!(request.task, proto::wire::ChunkTask::Cmd(_));
        }
        // What a member still runs: bounded in count.
        Some(WorkerOpen::Holding(held)) => {
            let _ = held.len() <= proto::wire::MAX_HOLDING;
        }
        // The slots a member gives now, as the coordinator checks them against its hello's,
        // and its reason as `marmotctl workers` prints it.
        Some(WorkerOpen::Standing(standing)) => {
            if standing.check(4096).is_ok() {
                let _ = standing.why.map(|why| why.to_string());
            }
        }
        None => {}
    }
    round_trip::<JoinReply>(data);
    round_trip::<Welcome>(data);
    round_trip::<Control>(data);
    round_trip::<CoordinatorOpen>(data);
    round_trip::<RenewReply>(data);
    round_trip::<UpdateAnswer>(data);
    round_trip::<BenchReply>(data);
    round_trip::<Pong>(data);
    round_trip::<ChunkData>(data);
    round_trip::<ChunkReply>(data);
    // A command chunk's messages, and a unit's report as the coordinator checks it.
    if let Some(CmdMessage::Unit(report)) = round_trip::<CmdMessage>(data) {
        let _ = report.check();
    }
});
