//! One live session with the coordinator: mutual TLS, `Hello`/`Welcome`, then serving the
//! streams the coordinator opens (pings and chunks) until the connection ends.
//!
//! A chunk's kernel runs on a slot thread; the stream task waits for it while watching for the
//! coordinator stopping the stream (cancellation, a backup copy that won), and then raises the
//! kernel's cancellation flag. A lost connection is different: the coordinator is restarting
//! or out of reach, not done with the chunk, so the kernel runs on for the lease and its
//! result, like a reply the coordinator never acknowledged, is held for the next session
//! ([`super::held`]).

use super::held::Held;
use super::identity::WorkerInfo;
use super::pool::SlotPool;
use super::update::Updater;
use super::{Attempt, Exit, Session, WorkerConfig};
use crate::fatal::ConfigError;
use crate::kernels::{bench, Cancel};
use crate::tasks::{self, Feed, Work};
use crate::transport::{self, codes};
use anyhow::{anyhow, bail, Result};
use certs::Membership;
use proto::policy::Standing;
use proto::wire::{
    BenchReply, ChunkData, ChunkKey, ChunkReply, ChunkRequest, Control, CoordinatorOpen, Pong,
    RenewReply, Welcome, WorkerOpen,
};
use proto::{MessageReader, MessageWriter};
use quinn::{ConnectionError, Endpoint, RecvStream, SendStream};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often gathered log lines are sent to the coordinator.
const LOG_BATCH_EVERY: Duration = Duration::from_secs(1);

/// Sends a batch of log lines on a stream of its own; a batch that cannot be sent within a
/// few seconds is dropped (the worker's own log keeps every line).
async fn send_logs(conn: quinn::Connection, lines: Vec<proto::logs::LogLine>) {
    let sent = async {
        let (send, _recv) = conn.open_bi().await?;
        let mut writer = MessageWriter::new(send);
        writer.send(&WorkerOpen::Logs(lines)).await?;
        writer.get_mut().finish()?;
        anyhow::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), sent).await;
}

/// Tells the coordinator the slots this worker gives, in order on one stream of the session:
/// at once if not all of them, then at each change, until the session ends.
async fn tell_standing(
    conn: quinn::Connection,
    mut standing: tokio::sync::watch::Receiver<Standing>,
) {
    let mut stream = None;
    loop {
        let now = standing.borrow_and_update().clone();
        if stream.is_some() || now.why.is_some() {
            let writer = match &mut stream {
                Some(writer) => writer,
                None => match conn.open_bi().await {
                    Ok((send, _)) => stream.insert(MessageWriter::new(send)),
                    Err(_) => return,
                },
            };
            if writer.send(&WorkerOpen::Standing(now)).await.is_err() {
                return;
            }
        }
        if standing.changed().await.is_err() {
            return;
        }
    }
}

pub(crate) async fn run(
    endpoint: &Endpoint,
    addr: SocketAddr,
    membership: &Membership,
    session: &Session<'_>,
    shutdown: &CancellationToken,
) -> Result<Attempt> {
    let (config, updater) = (session.config, session.updater);
    let hello = session.info.hello.clone();
    let open = match config.exec {
        true => WorkerOpen::Hello(hello),
        false => WorkerOpen::HelloWith(hello, proto::wire::Abilities { exec: false }),
    };
    let (conn, _writer, mut control, welcome) =
        match handshake(endpoint, addr, membership, config, open).await {
            Ok(parts) => parts,
            Err(e) => return Ok(Attempt::Failed(e)),
        };
    match welcome {
        Some(Welcome::Accepted { coordinator_version }) => {
            tracing::info!(
                "connected to the coordinator at {addr} (marmotd {coordinator_version})"
            );
            if let Some(probation) = session.probation {
                // Welcomed: a new binary on probation has proved itself.
                probation.pass().await;
            }
        }
        Some(Welcome::Refused { reason }) => {
            return Err(ConfigError::error(format!(
                "the coordinator refused this worker: {reason}"
            )))
        }
        None => return Ok(Attempt::Failed(anyhow!("the coordinator closed the session stream"))),
    }

    // What this worker still runs or holds from lost connections is told first, then the
    // results held go; later ones as they come.
    let mut delivering = tokio::task::JoinSet::new();
    let (held, lease) = (session.held.clone(), config.lease);
    let _session = held.session();
    delivering.spawn(super::held::tell_holding(held.holding(), conn.clone()));
    delivering.spawn(tell_standing(conn.clone(), session.standing.clone()));
    let deliver = |delivering: &mut tokio::task::JoinSet<()>| {
        let (held, conn) = (held.clone(), conn.clone());
        delivering.spawn(async move { super::held::deliver(&held, &conn, lease).await });
    };
    deliver(&mut delivering);
    let mut control_open = true;
    let mut sleeping = session.sleep.sleeping.clone();
    // The log lines this process gathered go to the coordinator about once a second.
    let mut log_tick = tokio::time::interval(LOG_BATCH_EVERY);
    loop {
        tokio::select! {
            _ = held.added() => deliver(&mut delivering),
            _ = log_tick.tick() => {
                let batch = crate::logbook::outbox()
                    .filter(|_| config.send_logs)
                    .map(|outbox| outbox.take(proto::logs::MAX_BATCH))
                    .unwrap_or_default();
                if !batch.is_empty() {
                    delivering.spawn(send_logs(conn.clone(), batch));
                }
            }
            Some(_) = delivering.join_next() => {}
            _ = shutdown.cancelled() => {
                conn.close(codes::DONE, b"worker shutting down");
                return Ok(Attempt::Exit(Exit::Shutdown));
            }
            _ = updater.restart.cancelled() => {
                conn.close(codes::UPDATING, b"restarting on a new binary");
                return Ok(Attempt::Exit(Exit::Restart));
            }
            // (The guard `wait_for` returns is dropped at once: it must not be held across
            // the awaits below. A worker whose machine never sleeps has no sender: an error.)
            Ok(()) = async { sleeping.wait_for(|sleeping| *sleeping).await.map(drop) } => {
                // The coordinator runs this worker's chunks elsewhere at once; what they
                // finish with is held for the session after the wake-up.
                conn.close(codes::SLEEPING, b"going to sleep");
                let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
                session.sleep.left.notify_one();
                return Ok(Attempt::Asleep);
            }
            msg = control.recv::<Control>(), if control_open => match msg {
                Ok(Some(Control::Exit)) => {
                    tracing::info!("the coordinator told this worker to exit");
                    conn.close(codes::EXITING, b"exiting");
                    return Ok(Attempt::Exit(Exit::Told));
                }
                Ok(None) | Err(_) => control_open = false,
            },
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let chunks = Chunks {
                        pool: session.pool.clone(),
                        held: held.clone(),
                        lease,
                        shutdown: shutdown.clone(),
                        units: session.units.clone(),
                    };
                    let dir = config.state_dir.clone();
                    session.tasks.spawn(serve_stream(send, recv, chunks, updater.clone(), dir));
                }
                Err(e) => {
                    tracing::warn!("lost the coordinator: {}", explain(e, config));
                    return Ok(Attempt::SessionEnded);
                }
            },
        }
    }
}

/// Connects with mutual TLS and opens the session stream with `open` (a hello, or a trial):
/// the connection, the stream's two halves, and the coordinator's welcome.
async fn handshake(
    endpoint: &Endpoint,
    addr: SocketAddr,
    membership: &Membership,
    config: &WorkerConfig,
    open: WorkerOpen,
) -> Result<(
    quinn::Connection,
    MessageWriter<SendStream>,
    MessageReader<RecvStream>,
    Option<Welcome>,
)> {
    let tls = certs::tls::member_client(membership, proto::ALPN)?;
    let client = transport::client_config(tls, config.dead_after, config.slots * 2 + 16)?;
    let conn = endpoint.connect_with(client, addr, proto::COORDINATOR_SERVER_NAME)?;
    let conn = conn.await.map_err(|e| explain(e, config))?;
    let hello = async {
        let (send, recv) = conn.open_bi().await?;
        let mut writer = MessageWriter::new(send);
        writer.send(&open).await?;
        let mut reader = MessageReader::new(recv);
        let welcome = reader.recv::<Welcome>().await?;
        anyhow::Ok((writer, reader, welcome))
    };
    match tokio::time::timeout(HELLO_TIMEOUT, hello).await {
        Ok(Ok((writer, reader, welcome))) => Ok((conn, writer, reader, welcome)),
        Ok(Err(e)) => Err(match conn.close_reason() {
            Some(reason) => explain(reason, config),
            None => e,
        }),
        Err(_) => Err(anyhow!("no welcome within {HELLO_TIMEOUT:?}")),
    }
}

/// A new binary's trial start: shake hands as this worker without becoming it.
pub(crate) async fn trial(
    endpoint: &Endpoint,
    addr: SocketAddr,
    membership: &Membership,
    info: &WorkerInfo,
    config: &WorkerConfig,
) -> Result<()> {
    let open = WorkerOpen::Trial(info.hello.clone());
    let (conn, _writer, _reader, welcome) =
        handshake(endpoint, addr, membership, config, open).await?;
    conn.close(codes::DONE, b"trial done");
    match welcome {
        Some(Welcome::Accepted { .. }) => Ok(()),
        Some(Welcome::Refused { reason }) => bail!("the coordinator refused: {reason}"),
        None => bail!("the coordinator closed the session stream"),
    }
}

/// A readable account of why a connection failed, with what to do where there is something.
fn explain(e: ConnectionError, config: &WorkerConfig) -> anyhow::Error {
    match &e {
        // QUIC carries TLS alerts as transport codes 0x100..0x200.
        ConnectionError::ConnectionClosed(close)
            if (0x100..0x200).contains(&u64::from(close.error_code)) =>
        {
            anyhow!(
                "the coordinator refused this worker's certificate ({e}): it belongs to another \
                 cluster; delete {} and join again with a new --token",
                config.state_dir.join("worker.crt").display()
            )
        }
        ConnectionError::TransportError(_) => anyhow!(
            "the coordinator's certificate is not from this worker's cluster ({e}); \
             if the coordinator was re-created, delete {} and join again with a new --token",
            config.state_dir.join("worker.crt").display()
        ),
        _ => anyhow!(crate::transport::closed_in_words(&e)),
    }
}

/// What running chunks needs: the slots, and where results that outlive their connection go.
struct Chunks {
    pool: SlotPool,
    held: Arc<Held>,
    lease: Duration,
    /// The worker stopping ends leases early.
    shutdown: CancellationToken,
    units: crate::exec::units::Units,
}

/// Serves one stream the coordinator opened.
async fn serve_stream(
    send: SendStream,
    recv: RecvStream,
    chunks: Chunks,
    updater: Arc<Updater>,
    state_dir: PathBuf,
) {
    let pool = chunks.pool.clone();
    let mut reader = MessageReader::new(recv);
    let mut writer = MessageWriter::new(send);
    let first = match tokio::time::timeout(HELLO_TIMEOUT, reader.recv::<CoordinatorOpen>()).await {
        Ok(Ok(Some(msg))) => msg,
        Ok(Ok(None)) | Err(_) => return,
        // Reset before its first message was read: a chunk cancelled at once (another chunk
        // answered the job first). Nothing to do.
        Ok(Err(proto::FrameError::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            return
        }
        Ok(Err(e)) => {
            tracing::warn!("bad stream from the coordinator: {e}");
            let _ = writer.get_mut().reset(codes::PROTOCOL);
            return;
        }
    };
    match first {
        CoordinatorOpen::Update(offer) => updater.serve(offer, false, reader, writer).await,
        CoordinatorOpen::UpdateResume(offer) => updater.serve(offer, true, reader, writer).await,
        CoordinatorOpen::Renew { cert_der } => {
            let no_membership =
                || certs::CertError::Invalid("this worker has no certificate".into());
            let stored = Membership::load(&state_dir)
                .and_then(|m| m.ok_or_else(no_membership))
                .and_then(|m| m.store_renewal(&state_dir, &cert_der))
                .and_then(|renewed| certs::cert_info(&renewed.cert_der));
            let reply = match stored {
                Ok(renewed) => {
                    let until = std::time::UNIX_EPOCH
                        + Duration::from_secs(renewed.not_after.max(0).unsigned_abs());
                    tracing::info!(
                        "stored a renewed certificate, valid until {}",
                        humantime::format_rfc3339_seconds(until)
                    );
                    RenewReply::Stored
                }
                Err(e) => {
                    tracing::warn!("could not store a renewed certificate: {e}");
                    RenewReply::Failed { reason: e.to_string() }
                }
            };
            if writer.send(&reply).await.is_ok() {
                let _ = writer.get_mut().finish();
            }
        }
        CoordinatorOpen::SendAhead(files) => {
            crate::exec::ahead::receive(files, &mut reader, &mut writer, &chunks.units).await
        }
        CoordinatorOpen::Ping { nonce } => {
            if writer.send(&Pong { nonce }).await.is_ok() {
                let _ = writer.get_mut().finish();
            }
        }
        CoordinatorOpen::Bench { millis } => {
            let length = Duration::from_millis(u64::from(millis.min(10_000)));
            let runs =
                (0..pool.slots()).map(|_| pool.run(move || bench::samples_per_second(length)));
            let slot_rates =
                futures_util::future::join_all(runs).await.into_iter().flatten().collect();
            if writer.send(&BenchReply { slot_rates }).await.is_ok() {
                let _ = writer.get_mut().finish();
            }
        }
        CoordinatorOpen::Chunk(request) => {
            let key = ChunkKey { job: request.job, chunk: request.chunk };
            let _running = chunks.held.running(key);
            let work = match tasks::work(&request) {
                // A chunk that says more than a request and a reply serves its own stream.
                Ok(Work::Serve(chunk)) => {
                    let kept = chunk.serve(&mut reader, &mut writer, &chunks.units).await;
                    if let Some(kept) = kept {
                        chunks.held.keep(request, kept, Instant::now() + chunks.lease);
                    }
                    return;
                }
                work => work,
            };
            let reply = match serve_chunk(&request, work, &mut reader, &mut writer, &chunks).await {
                Ok(reply) => reply,
                // The coordinator stopped or reset the stream: nobody is waiting for a reply.
                Err(Gone) => return,
            };
            if let ChunkReply::Done(_) = &reply {
                let ChunkRequest { job, chunk, start, end, .. } = request;
                tracing::debug!("ran chunk {chunk} of job {job}: units {start}..{end}");
            }
            // The reply counts once the coordinator has acknowledged it: a connection lost
            // before then (a coordinator restarting, a network gone) leaves it for the next
            // session to deliver.
            let sent = writer.send(&reply).await.is_ok() && writer.get_mut().finish().is_ok();
            let acked = match sent {
                true => tokio::time::timeout(chunks.lease, writer.get_mut().stopped()).await,
                false => Ok(writer.get_mut().stopped().await),
            };
            let lost = matches!(&acked, Ok(stopped) if outage(stopped));
            if let (ChunkReply::Done(output), true) = (reply, lost) {
                chunks.held.hold(request, output, Instant::now() + chunks.lease);
            }
        }
    }
}

/// The coordinator stopped or reset a chunk's stream.
struct Gone;

/// Runs a chunk: its task's kernel on a slot thread, fed the bytes that follow the request
/// for tasks that stream them.
async fn serve_chunk(
    request: &ChunkRequest,
    work: Result<Work, crate::kernels::KernelError>,
    reader: &mut MessageReader<RecvStream>,
    writer: &mut MessageWriter<SendStream>,
    chunks: &Chunks,
) -> Result<ChunkReply, Gone> {
    let pool = &chunks.pool;
    let failed = |error: String| Ok(ChunkReply::Failed { error });
    match work {
        Err(e) => failed(e.to_string()),
        Ok(Work::Serve(_)) => failed("this chunk serves its own stream".into()),
        Ok(Work::Stream(feed)) => match feed_stream(feed, reader, pool).await? {
            Ok(output) => Ok(ChunkReply::Done(output)),
            Err(error) => failed(error),
        },
        Ok(Work::Compute(kernel)) => {
            let cancel = Arc::new(Cancel::default());
            let mut work = Box::pin({
                let cancel = cancel.clone();
                pool.run(move || kernel(&cancel))
            });
            let result = tokio::select! {
                result = &mut work => result,
                stopped = writer.get_mut().stopped() => {
                    let lost = outage(&stopped);
                    if lost {
                        // The coordinator went out of reach, not the chunk: run on through the
                        // lease, and hold the result for the next session.
                        let until = Instant::now() + chunks.lease;
                        let leased = tokio::select! {
                            result = tokio::time::timeout_at(until.into(), &mut work) => result.ok().flatten(),
                            _ = chunks.shutdown.cancelled() => None,
                        };
                        match leased {
                            Some(Ok(output)) => chunks.held.hold(request.clone(), output, until),
                            _ => cancel.cancel(),
                        }
                    } else {
                        cancel.cancel();
                    }
                    return Err(Gone);
                }
            };
            match result {
                Some(Ok(output)) => Ok(ChunkReply::Done(output)),
                Some(Err(e)) => failed(e.to_string()),
                None => failed("the kernel panicked".into()),
            }
        }
    }
}

/// Whether a chunk outlives its stream stopping this way: yes when the coordinator went
/// (it closed, restarted, or stopped answering), not when this worker closed it (stopping,
/// exiting, updating: its chunks are handed back).
fn outage(stopped: &Result<Option<quinn::VarInt>, quinn::StoppedError>) -> bool {
    matches!(stopped, Err(quinn::StoppedError::ConnectionLost(e))
        if !matches!(e, ConnectionError::LocallyClosed))
}

/// Feeds a chunk the bytes that follow its request, piece by piece on a slot thread. The
/// coordinator may send the chunk's own bytes plus what its task allows past its end, no more.
async fn feed_stream(
    mut feed: Box<dyn Feed>,
    reader: &mut MessageReader<RecvStream>,
    pool: &SlotPool,
) -> Result<Result<proto::wire::ChunkOutput, String>, Gone> {
    let (own, allowed) = (feed.own(), feed.allowed());
    let mut received = 0u64;
    loop {
        let piece = match reader.recv::<ChunkData>().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(_) => return Err(Gone),
        };
        received += piece.bytes.len() as u64;
        if received > allowed {
            return Ok(Err(format!("the chunk sent {received} bytes, over {allowed}")));
        }
        let fed = pool
            .run(move || {
                feed.feed(&piece.bytes);
                feed
            })
            .await;
        match fed {
            Some(fed) => feed = fed,
            None => return Ok(Err("the chunk's thread panicked".into())),
        }
    }
    if received < own {
        return Ok(Err(format!("the chunk sent {received} of its {own} bytes")));
    }
    Ok(Ok(feed.finish()))
}
