//! A test fixture: a joined member that misbehaves. It joins with the token (or uses the
//! membership already in STATE_DIR), says hello with SLOTS slots, answers pings and benches
//! like a worker, and then, by MODE:
//! - `hoard`: takes every chunk it is given and never answers (holds the streams open);
//! - `lie`: answers every chunk at once with a well-formed wrong result (no point inside the
//!   circle, no factor, no letter, zeros);
//! - `shout`: sends log lines no worker sends (a forged line with a newline and an escape
//!   sequence, then a batch one line too long), then one honest line dated in the year
//!   584 million, then 60 more batches
//!   at once (a worker sends one a second), then hoards;
//! - `fail`: answers every chunk at once with an error;
//! - `brag`: hoards, and claims 9.9e10 samples/s for every slot when benchmarked;
//! - `dodge`: lies as `lie` does, but only on chunks that marmot's first spot checks (a fixed
//!   hash of job and chunk, which members could compute) left unchecked at `--verify` 0.5 or
//!   less, and answers the others right;
//! - `forge`: hoards the chunks it is given and, on the first, delivers "held" results (the
//!   lost-connection path) for the job's first 20 other chunks, which it was never given; given
//!   a command chunk, it delivers "held" units printing `forged` for it (which it still holds)
//!   and for 20 others, then fails it.
//!
//! Usage: hostile-member ADDR TOKEN NAME SLOTS MODE STATE_DIR
//! Says `welcomed` on stderr once the coordinator has accepted its hello; runs until killed.

use anyhow::{bail, Context};
use marmotd::worker::{join, WorkerConfig};
use proto::job::Landing;
use proto::wire::{BenchReply, ChunkReply, CoordinatorOpen, Hello, Pong, Welcome, WorkerOpen};
use proto::wire::{ChunkOutput, ChunkRequest, ChunkTask};
use proto::{MessageReader, MessageWriter};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, token, name, slots, mode, state_dir] = args.as_slice() else {
        bail!("usage: hostile-member ADDR TOKEN NAME SLOTS MODE STATE_DIR");
    };
    let mode = match mode.as_str() {
        "hoard" => Mode::Hoard,
        "lie" => Mode::Lie,
        "shout" => Mode::Shout,
        "fail" => Mode::Fail,
        "forge" => Mode::Forge,
        "dodge" => Mode::Dodge,
        "brag" => Mode::Brag,
        other => bail!("unknown mode {other}: hoard, lie, shout, fail, forge, dodge or brag"),
    };
    let addr: std::net::SocketAddr = addr.parse()?;
    let config = WorkerConfig {
        coordinator: addr.to_string(),
        token: Some(token.clone()),
        name: name.clone(),
        slots: slots.parse()?,
        state_dir: state_dir.into(),
        dead_after: Duration::from_secs(5),
        lease: marmotd::worker::DEFAULT_LEASE,
        updatable: false,
        exec: true,
        file_cache: marmotd::exec::cache::DEFAULT_LIMIT,
        send_logs: false,
        policy: None,
    };
    let endpoint = marmotd::transport::client_endpoint(addr)?;
    let membership = match certs::Membership::load(&config.state_dir)? {
        Some(membership) => membership,
        None => join::join(&endpoint, addr, token, &config).await??,
    };
    let tls = certs::tls::member_client(&membership, proto::ALPN)?;
    let client = marmotd::transport::client_config(tls, config.dead_after, 8192)?;
    let conn = endpoint.connect_with(client, addr, proto::COORDINATOR_SERVER_NAME)?.await?;
    let (send, recv) = conn.open_bi().await?;
    let mut writer = MessageWriter::new(send);
    let hello = Hello {
        protocol: proto::PROTOCOL_VERSION,
        name: name.clone(),
        slots: config.slots,
        version: "0.1.0".into(),
        binary_sha256: "0".repeat(64),
        arch: std::env::consts::ARCH.into(),
        os: std::env::consts::OS.into(),
    };
    writer.send(&WorkerOpen::Hello(hello)).await?;
    let mut control = MessageReader::new(recv);
    match control.recv::<Welcome>().await?.context("no welcome")? {
        Welcome::Accepted { .. } => eprintln!("welcomed"),
        Welcome::Refused { reason } => bail!("refused: {reason}"),
    }
    if mode == Mode::Shout {
        let line = |message: &str| proto::logs::LogLine {
            unix_ms: 1,
            level: proto::logs::Level::Info,
            target: "hostile".into(),
            message: message.into(),
        };
        let forged = vec![line("fine\nERROR coordinator: forged \u{1b}[2J")];
        let too_many = vec![line("many"); proto::logs::MAX_BATCH + 1];
        // Then far more batches than a worker sends (one a second): the coordinator keeps
        // only as many as it lets a member send in its window.
        let flood = (0..60).map(|i| vec![line(&format!("flood {i}"))]);
        // Honest but for its date: the last millisecond a u64 holds.
        let honest = vec![proto::logs::LogLine {
            unix_ms: u64::MAX,
            ..line("an honest line from a shouting member")
        }];
        for batch in [forged, too_many, honest].into_iter().chain(flood) {
            let (send, _recv) = conn.open_bi().await?;
            let mut writer = MessageWriter::new(send);
            writer.send(&WorkerOpen::Logs(batch)).await?;
            writer.get_mut().finish()?;
        }
        eprintln!("shouted");
    }
    let (mut hoard, mut forged) = (vec![], false);
    loop {
        let (send, recv) = conn.accept_bi().await?;
        let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
        let Ok(Some(open)) = reader.recv::<CoordinatorOpen>().await else { continue };
        match open {
            CoordinatorOpen::Ping { nonce } => {
                let _ = writer.send(&Pong { nonce }).await;
                let _ = writer.get_mut().finish();
            }
            CoordinatorOpen::Bench { .. } => {
                let rate = if mode == Mode::Brag { 9.9e10 } else { 1e8 };
                let slot_rates = vec![rate; config.slots as usize];
                let _ = writer.send(&BenchReply { slot_rates }).await;
                let _ = writer.get_mut().finish();
            }
            CoordinatorOpen::Chunk(request) if mode == Mode::Lie => {
                let output = wrong_output(&request.task, request.end - request.start);
                let _ = writer.send(&ChunkReply::Done(output)).await;
                let _ = writer.get_mut().finish();
            }
            CoordinatorOpen::Chunk(request) if mode == Mode::Dodge => {
                let units = request.end - request.start;
                let output = match checked_by_the_fixed_hash(request.job, request.chunk, 0.5) {
                    true => right_output(&request),
                    false => wrong_output(&request.task, units),
                };
                let _ = writer.send(&ChunkReply::Done(output)).await;
                let _ = writer.get_mut().finish();
            }
            CoordinatorOpen::Chunk(_) if mode == Mode::Fail => {
                let error = "this member fails every chunk".to_string();
                let _ = writer.send(&ChunkReply::Failed { error }).await;
                let _ = writer.get_mut().finish();
            }
            CoordinatorOpen::Chunk(request)
                if mode == Mode::Forge && request.task.cmd().is_some() =>
            {
                for chunk in (0..21).chain([request.chunk]) {
                    let size = request.end - request.start;
                    let (start, end) = (u64::from(chunk) * size, u64::from(chunk + 1) * size);
                    let forged = ChunkRequest { chunk, start, end, ..request.clone() };
                    let _ = forge_units(&conn, forged).await;
                }
                eprintln!("forged");
                let error = "this member forges".to_string();
                let _ = writer.send(&proto::wire::CmdMessage::Failed { error }).await;
                let _ = writer.get_mut().finish();
            }
            CoordinatorOpen::Chunk(request) if mode == Mode::Forge && !forged => {
                forged = true;
                let given = request.chunk;
                let size = request.end - request.start;
                for chunk in (0..21).filter(|&c| c != given) {
                    let (start, end) = (u64::from(chunk) * size, u64::from(chunk + 1) * size);
                    let request = ChunkRequest { chunk, start, end, ..request.clone() };
                    let output = wrong_output(&request.task, size);
                    let (send, _recv) = conn.open_bi().await?;
                    let mut writer = MessageWriter::new(send);
                    writer.send(&WorkerOpen::Deliver { request, output }).await?;
                    writer.get_mut().finish()?;
                }
                eprintln!("forged");
                hoard.push((writer, reader));
            }
            CoordinatorOpen::Chunk(_) => hoard.push((writer, reader)),
            CoordinatorOpen::Update(_)
            | CoordinatorOpen::UpdateResume(_)
            | CoordinatorOpen::Renew { .. }
            | CoordinatorOpen::SendAhead(_) => {}
        }
    }
}

/// Delivers "held" units for `request`'s chunk, each printing `forged`, and waits for the
/// coordinator to take or refuse them.
async fn forge_units(conn: &quinn::Connection, request: ChunkRequest) -> anyhow::Result<()> {
    use proto::command::{UnitEnding, UnitReport};
    use proto::wire::{ChunkData, CmdMessage};
    let (send, recv) = conn.open_bi().await?;
    let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
    writer.send(&WorkerOpen::DeliverUnits { request: request.clone() }).await?;
    for unit in request.start..request.end {
        let report = UnitReport {
            unit,
            ending: UnitEnding::Exited(0),
            started_ms: 1,
            duration_ms: 1,
            stdout: 7,
            stderr: 0,
            results: 0,
            worker: String::new(),
        };
        writer.send(&CmdMessage::Unit(report)).await?;
        writer.send(&CmdMessage::Data(ChunkData { bytes: b"forged\n".to_vec() })).await?;
    }
    writer.send(&CmdMessage::Done).await?;
    writer.get_mut().finish()?;
    let _ = tokio::time::timeout(Duration::from_secs(10), reader.recv::<ChunkData>()).await;
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Hoard,
    Lie,
    Shout,
    Fail,
    Forge,
    Dodge,
    Brag,
}

/// Whether marmot's first spot checks verified chunk `chunk` of `job` at `fraction`: the
/// formula members could compute (SplitMix64's finalizer of job and chunk).
fn checked_by_the_fixed_hash(job: u64, chunk: u32, fraction: f64) -> bool {
    let mut x = job.rotate_left(32) ^ u64::from(chunk);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64 <= fraction && fraction > 0.0
}

/// The right result of a `pi` chunk (the dodger answers only `pi` right).
fn right_output(request: &ChunkRequest) -> ChunkOutput {
    let ChunkTask::Pi { seed, .. } = request.task else {
        return wrong_output(&request.task, request.end - request.start);
    };
    let level = marmotd::kernels::simd::Level::detect();
    let cancel = marmotd::kernels::Cancel::default();
    let inside =
        marmotd::kernels::pi::count_inside(level, seed, request.start, request.end, &cancel);
    ChunkOutput::Pi { inside: inside.unwrap_or(0) }
}

/// A result of the right shape and size, and wrong.
fn wrong_output(task: &ChunkTask, units: u64) -> ChunkOutput {
    match task {
        ChunkTask::Pi { .. } => ChunkOutput::Pi { inside: 0 },
        ChunkTask::Prime { .. } => ChunkOutput::Prime { factor: None },
        ChunkTask::Count { .. } => ChunkOutput::Count { count: 0 },
        ChunkTask::Sweep { .. } => ChunkOutput::Series { values: vec![0.0; units as usize * 3] },
        ChunkTask::Survey { .. } => ChunkOutput::Survey {
            points: 1,
            landing: Landing { ground_time: 0.0, impact_speed: 0.0, max_height: 0.0 },
            checkpoints: vec![(0.0, 0.0)],
        },
        ChunkTask::Heights { .. } | ChunkTask::HeightsFrom { .. } => {
            ChunkOutput::Series { values: vec![0.0; units as usize] }
        }
        // A command's reply is a stream of its own; a plain one is a protocol error.
        ChunkTask::Cmd(_) | ChunkTask::CmdPlaced(..) | ChunkTask::CmdTermSeq(..) => {
            ChunkOutput::Cmd { units: vec![], spool: None }
        }
    }
}
