//! One incoming connection: a join, or a member worker's session.
//!
//! Nothing from the peer is trusted until checked: the first stream must arrive and carry a
//! well-formed first message within a deadline; a join must carry the current token's secret;
//! a hello must come over a connection with a client certificate signed by the cluster CA (TLS
//! checked the signature; here we check one was presented) and speak our protocol version.
//! A refused peer is told why, logged, and never appears as a worker.

use super::admission::{Pool, Ticket};
use super::driver::Cluster;
use super::registry::Joining;
use super::renewal;
use crate::throttle::Throttle;
use crate::transport::{self, codes};
use certs::authority::IssueError;
use proto::wire::{Abilities, Control, Hello, JoinReply, JoinRequest, Welcome, WorkerOpen};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a peer has, from its first packet, to complete its handshake: generous for a
/// slow link (a handshake is a round trip or two, with retransmissions on a lossy one).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a member (a connection with a certificate) has, after its handshake, to send its
/// first message; also a held delivery's deadline.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stranger (no certificate: a joiner, or anyone) has, after its handshake, to send
/// its first message. A joiner sends it at once; a place held for nothing is soon freed.
const STRANGER_FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest first message (a join request with its CSR, or a hello) a peer may send: a
/// real one is a few hundred bytes.
pub const MAX_FIRST_MESSAGE: usize = 16 * 1024;

/// What a member's connection may hold in received, unread data once it is authenticated
/// (chunk results); before, [`transport::UNAUTHENTICATED_RECEIVE_WINDOW`] bounds it.
const MEMBER_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;
/// Deliveries of held chunk results a member may have open at once (besides its session
/// stream); each starts with one message, read within [`FIRST_MESSAGE_TIMEOUT`] (a command
/// chunk's units follow theirs within [`UNITS_DELIVERY_TIMEOUT`]).
const MAX_DELIVERIES: u32 = 4;

/// Serves one incoming connection until it ends, or until `session` is cancelled (the
/// coordinator stopping): then a member's connection is closed with a "shutting down" code.
pub async fn handle(
    cluster: Cluster,
    incoming: quinn::Incoming,
    mut ticket: Ticket,
    session: CancellationToken,
) {
    let addr = incoming.remote_address();
    // Until the peer is a member, a stop simply drops it: the endpoint closes its connection.
    let opening = open(&cluster, incoming, &mut ticket);
    let Some(opened) = session.run_until_cancelled(opening).await else { return };
    let Some((conn, writer, reader, msg)) = opened else { return };
    match msg {
        WorkerOpen::Join(request) => {
            let join = join(&cluster, &conn, writer, request, addr, ticket);
            session.run_until_cancelled(join).await;
        }
        WorkerOpen::Hello(hello) => {
            let stream = SessionStream { writer, _reader: reader };
            let hello = (hello, Abilities::default());
            serve_member(cluster, conn, stream, hello, addr, ticket, session).await
        }
        WorkerOpen::HelloWith(hello, abilities) => {
            let stream = SessionStream { writer, _reader: reader };
            serve_member(cluster, conn, stream, (hello, abilities), addr, ticket, session).await
        }
        WorkerOpen::Trial(hello) => {
            let trial = trial(&cluster, &conn, writer, hello, addr, ticket);
            session.run_until_cancelled(trial).await;
        }
        // Only a member's session carries deliveries, after its hello.
        WorkerOpen::Deliver { .. } => conn.close(codes::PROTOCOL, b"a delivery before a hello"),
        WorkerOpen::Logs(_) => conn.close(codes::PROTOCOL, b"log lines before a hello"),
        WorkerOpen::DeliverUnits { .. } | WorkerOpen::Holding(_) | WorkerOpen::Standing(_) => {
            conn.close(codes::PROTOCOL, b"a delivery before a hello")
        }
    }
}

/// The handshake and the first message, each within its deadline, the connection moved from
/// the handshaking places to the members' or the strangers' in between; `None` when the peer
/// did not make it or a newcomer took its place (refusals are logged, throttled).
async fn open(
    cluster: &Cluster,
    incoming: quinn::Incoming,
    ticket: &mut Ticket,
) -> Option<(quinn::Connection, MessageWriter<SendStream>, MessageReader<RecvStream>, WorkerOpen)> {
    let addr = incoming.remote_address();
    let handshake = tokio::select! {
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming) => done,
        // Dropping the half-made connection closes it.
        () = ticket.evicted() => return None,
    };
    let conn = match handshake {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            if let Some(held_back) = cluster.refusals_to_log() {
                tracing::warn!(
                    "refused a connection from {addr}: {e}{}",
                    held_back_note(held_back)
                );
            }
            return None;
        }
        Err(_) => return None, // quinn drops the half-made connection with the future
    };
    // TLS checked any certificate against the cluster CA; one presented makes a member's
    // connection (its hello is checked below), which strangers never compete with.
    let (pool, deadline) = match conn.peer_identity() {
        Some(_) => (Pool::Members, FIRST_MESSAGE_TIMEOUT),
        None => (Pool::Strangers, STRANGER_FIRST_MESSAGE_TIMEOUT),
    };
    if !ticket.move_to(pool) {
        conn.close(codes::BUSY, b"too many connections waiting from this address");
        return None;
    }
    let first = async {
        let (send, recv) = conn.accept_bi().await?;
        let mut reader = MessageReader::with_max_frame(recv, MAX_FIRST_MESSAGE);
        let msg = reader.recv::<WorkerOpen>().await?;
        reader.set_max_frame(proto::frame::MAX_FRAME);
        anyhow::Ok((MessageWriter::new(send), reader, msg))
    };
    let first = tokio::select! {
        first = tokio::time::timeout(deadline, first) => first,
        () = ticket.evicted() => {
            conn.close(codes::BUSY, b"made room for newer connections");
            return None;
        }
    };
    match first {
        Ok(Ok((writer, reader, Some(msg)))) => Some((conn, writer, reader, msg)),
        Ok(Ok((_, _, None))) => None,
        Ok(Err(e)) => {
            if let Some(held_back) = cluster.refusals_to_log() {
                let note = held_back_note(held_back);
                match conn.close_reason() {
                    Some(reason) => {
                        tracing::warn!("refused a connection from {addr}: {reason}{note}")
                    }
                    None => tracing::warn!("dropped a connection from {addr}: {e:#}{note}"),
                }
            }
            conn.close(codes::PROTOCOL, b"bad first message");
            None
        }
        Err(_) => {
            conn.close(codes::PROTOCOL, b"no first message in time");
            None
        }
    }
}

/// A new binary's trial start: the same checks and welcome as a member's hello, and nothing
/// else; the worker it belongs to stays connected on its own session meanwhile.
async fn trial(
    cluster: &Cluster,
    conn: &quinn::Connection,
    mut writer: MessageWriter<SendStream>,
    hello: Hello,
    addr: SocketAddr,
    ticket: Ticket,
) {
    let welcome = match admit_member(cluster, conn, &hello).err() {
        Some(reason) => {
            tracing::warn!(
                "refused the trial start of {} at {addr}: {reason}",
                proto::names::shown(&hello.name)
            );
            Welcome::Refused { reason }
        }
        None => {
            tracing::info!("trial start of a new binary of '{}' welcomed", hello.name);
            welcome()
        }
    };
    if writer.send(&welcome).await.is_ok() {
        let _ = writer.get_mut().finish();
    }
    drop(ticket);
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
}

/// How long a session of the same name has to answer a ping before a new one replaces it.
const TWIN_PING: Duration = Duration::from_secs(1);

/// The address of a session of worker `name` that still answers on another connection: a
/// second machine with the same certificate (a copied state dir), not a reconnect (a worker
/// that reconnects has left its old connection, which answers no more).
async fn live_twin(cluster: &Cluster, name: &str) -> Option<SocketAddr> {
    let name = name.to_string();
    let sessions = cluster.call(move |s, _| {
        let named = s.registry.iter().filter(|(_, w)| w.hello.name == name);
        named.map(|(_, w)| w.conn.clone()).collect::<Vec<_>>()
    });
    for conn in sessions.await.ok()? {
        if conn.close_reason().is_some() {
            continue;
        }
        let rtt = conn.rtt();
        if let Ok(Ok(_)) =
            tokio::time::timeout(TWIN_PING + rtt, super::fleet::ping_one(&conn)).await
        {
            return Some(conn.remote_address());
        }
    }
    None
}

fn welcome() -> Welcome {
    Welcome::Accepted { coordinator_version: crate::update::version::current().into() }
}

async fn join(
    cluster: &Cluster,
    conn: &quinn::Connection,
    mut writer: MessageWriter<SendStream>,
    request: JoinRequest,
    addr: SocketAddr,
    ticket: Ticket,
) {
    // Anyone on the LAN can send a join request: its name is shown escaped, never raw.
    let name = proto::names::shown(&request.name);
    let reply = match decide_join(cluster, &request) {
        Ok(cert_der) => {
            tracing::info!("worker {name} at {addr} joined the cluster");
            JoinReply::Accepted { cert_der, ca_der: cluster.facts().authority.ca_der().to_vec() }
        }
        Err(refusal) => {
            match &refusal {
                JoinReply::Unavailable { reason } => {
                    tracing::error!("cannot serve the join of {name} at {addr}: {reason}")
                }
                JoinReply::Refused { reason } => {
                    if let Some(held_back) = cluster.refusals_to_log() {
                        tracing::warn!(
                            "refused to let {name} at {addr} join: {reason}{}",
                            held_back_note(held_back)
                        )
                    }
                }
                JoinReply::Accepted { .. } => {}
            }
            refusal
        }
    };
    if writer.send(&reply).await.is_ok() {
        let _ = writer.get_mut().finish();
    }
    drop(ticket);
    // The worker closes once it has read the reply; don't cut it off before.
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
}

/// The worker's certificate, or the reply that says why not: [`JoinReply::Refused`] for the
/// worker's mistakes, [`JoinReply::Unavailable`] for the coordinator's own failures, which
/// must not make a worker give up.
fn decide_join(cluster: &Cluster, request: &JoinRequest) -> Result<Vec<u8>, JoinReply> {
    let refused = |reason: String| JoinReply::Refused { reason };
    if request.protocol != proto::PROTOCOL_VERSION {
        return Err(refused(version_mismatch(request.protocol)));
    }
    let token = cluster.facts().authority.join_token().map_err(|e| JoinReply::Unavailable {
        reason: format!("the coordinator cannot read its join secret: {e}"),
    })?;
    if !token.secret_matches(&request.secret) {
        return Err(refused(
            "wrong join token (it may have been rotated): \
             get the current one with `marmotctl join-token` on the coordinator"
                .into(),
        ));
    }
    proto::names::check_worker_name(&request.name).map_err(refused)?;
    cluster.facts().authority.sign_worker(&request.csr_der, &request.name).map_err(|e| match e {
        IssueError::Failed(_) => JoinReply::Unavailable { reason: e.to_string() },
        IssueError::Refused(_) | IssueError::BadRequest(_) => refused(e.to_string()),
    })
}

fn version_mismatch(theirs: u32) -> String {
    format!(
        "incompatible protocol: the worker speaks version {theirs}, the coordinator version {}; \
         update one of them (`marmotctl update`)",
        proto::PROTOCOL_VERSION
    )
}

/// The member's certificate facts if its hello may be welcomed, or why not.
fn admit_member(
    cluster: &Cluster,
    conn: &quinn::Connection,
    hello: &Hello,
) -> Result<certs::CertInfo, String> {
    let chain = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok());
    let Some(cert) = chain.as_deref().and_then(|chain| chain.first()) else {
        return Err("no client certificate: join the cluster with a token first".into());
    };
    if hello.protocol != proto::PROTOCOL_VERSION {
        return Err(version_mismatch(hello.protocol));
    }
    hello.check().map_err(|e| format!("bad hello: {e}"))?;
    cluster.facts().authority.check_member(cert, &hello.name)
}

/// The end of a refusal line that follows refusals held back by the throttle.
pub fn held_back_note(held_back: u64) -> String {
    match held_back {
        0 => String::new(),
        n => format!(
            " ({} not logged before this one)",
            proto::human::count(n, "refusal", "refusals")
        ),
    }
}

/// A member's session stream: control messages go out on it.
struct SessionStream {
    writer: MessageWriter<SendStream>,
    /// Held, not read: dropping it would stop the worker's side of the session stream.
    _reader: MessageReader<RecvStream>,
}

async fn serve_member(
    cluster: Cluster,
    conn: quinn::Connection,
    stream: SessionStream,
    (hello, abilities): (Hello, Abilities),
    addr: SocketAddr,
    ticket: Ticket,
    session: CancellationToken,
) {
    let SessionStream { mut writer, _reader } = stream;
    let name = hello.name.clone();
    let admitted = match admit_member(&cluster, &conn, &hello) {
        Ok(member) => match live_twin(&cluster, &name).await {
            // Said in the log as every refusal is, below.
            Some(twin) => Err(format!(
                "a worker with this certificate is already connected from {twin}: two \
                     machines share one worker state dir. Give this machine its own: remove \
                     worker.key and worker.crt from its state dir and join with a token (and \
                     another --name)"
            )),
            None => Ok(member),
        },
        Err(reason) => Err(reason),
    };
    let member = match admitted {
        Ok(member) => member,
        Err(reason) => {
            if let Some(held_back) = cluster.refusals_to_log() {
                tracing::warn!(
                    "refused worker {} at {addr}: {reason}{}",
                    proto::names::shown(&name),
                    held_back_note(held_back)
                );
            }
            let _ = writer.send(&Welcome::Refused { reason }).await;
            let _ = writer.get_mut().finish();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
            conn.close(codes::REFUSED, b"refused");
            return;
        }
    };
    if writer.send(&welcome()).await.is_err() {
        return;
    }
    // A member now: its place among the unauthenticated is free, and its results may need room.
    drop(ticket);
    conn.set_receive_window(MEMBER_RECEIVE_WINDOW.into());
    conn.set_max_concurrent_bi_streams((1 + MAX_DELIVERIES).into());
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Control>();
    let slots = hello.slots;
    let joining = Joining {
        hello,
        abilities,
        conn: conn.clone(),
        session: session.clone(),
        control: control_tx,
    };
    let Ok(id) = cluster.call(move |s, now| s.register(now, joining)).await else {
        conn.close(codes::DONE, b"coordinator shutting down");
        return;
    };
    tracing::info!("worker '{name}' connected from {addr} with {slots} slots");
    let mut seen = tokio::time::interval(Duration::from_secs(1));
    // The round trip the scheduler last heard of (at registration): it hears again only of a
    // change of more than an eighth, since each report runs its dispatch.
    let mut reported_rtt = conn.rtt();
    // Owned by this session: a renewal still running when it ends is dropped with it.
    let mut renewal = tokio::task::JoinSet::new();
    let mut renewal_tried = false;
    // Results the worker held through a lost connection, delivered now: owned by this session.
    let mut deliveries = tokio::task::JoinSet::new();
    // Log batches this member may send: an honest worker sends one a second at most.
    let log_batches = Arc::new(Mutex::new(Throttle::new(LOG_BATCHES, LOG_WINDOW)));
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let batches = log_batches.clone();
                    let stream = (send, recv);
                    deliveries.spawn(take_stream(cluster.clone(), id, name.clone(), batches, stream));
                }
                // Closed: the branch above ends the session.
                Err(_) => {
                    conn.closed().await;
                }
            },
            Some(_) = deliveries.join_next() => {}
            reason = conn.closed() => {
                tracing::info!("worker '{name}' left: {}", transport::closed_in_words(&reason));
                break;
            }
            Some(msg) = control_rx.recv() => {
                let _ = writer.send(&msg).await;
            }
            _ = seen.tick() => {
                let (datagrams, rtt) = (conn.stats().udp_rx.datagrams, conn.rtt());
                let moved = rtt.abs_diff(reported_rtt) > reported_rtt / 8;
                if moved {
                    reported_rtt = rtt;
                }
                let rtt = moved.then_some(rtt);
                let _ = cluster.call(move |s, now| s.link_measured(now, id, datagrams, rtt)).await;
                let now = renewal::unix_now();
                if !renewal_tried && renewal::due(&member, cluster.facts().authority.worker_cert_life(), now) {
                    renewal_tried = true;
                    let (cluster, conn, member) = (cluster.clone(), conn.clone(), member.clone());
                    renewal.spawn(async move { renewal::renew(&cluster, &conn, &member).await });
                }
            }
            Some(done) = renewal.join_next() => match done {
                Ok(Ok(())) => tracing::info!("renewed the certificate of worker '{name}'"),
                Ok(Err(e)) => tracing::warn!("could not renew the certificate of worker '{name}': {e:#}"),
                Err(_) => {}
            },
            _ = session.cancelled() => {
                conn.close(codes::DONE, b"coordinator shutting down");
                break;
            }
        }
    }
    let _ = cluster.call(move |s, now| s.unregister(now, id)).await;
}

/// Reads one stream a member opened: a delivered chunk result, or a batch of its log lines.
/// Anything else loses the stream.
async fn take_stream(
    cluster: Cluster,
    worker: crate::scheduler::WorkerId,
    name: String,
    log_batches: Arc<Mutex<Throttle>>,
    (send, recv): (SendStream, RecvStream),
) {
    let mut reader = MessageReader::new(recv);
    let message = tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, reader.recv::<WorkerOpen>()).await;
    match message {
        Ok(Ok(Some(WorkerOpen::Deliver { request, output }))) => {
            take_delivery(cluster, worker, &name, request, output).await
        }
        Ok(Ok(Some(WorkerOpen::DeliverUnits { request }))) => {
            let stream = (MessageWriter::new(send), reader);
            take_units(cluster, worker, &name, request, stream).await
        }
        Ok(Ok(Some(WorkerOpen::Holding(held)))) if held.len() <= proto::wire::MAX_HOLDING => {
            let _ = cluster.call(move |s, now| s.jobs.member_holds(now, worker, &held)).await;
        }
        Ok(Ok(Some(WorkerOpen::Logs(lines)))) => {
            take_logs(&cluster, &name, &log_batches, lines).await
        }
        Ok(Ok(Some(WorkerOpen::Standing(mut standing)))) => loop {
            // The session's standings, in order on this one stream, at most ten a second.
            take_standing(&cluster, worker, &name, standing).await;
            tokio::time::sleep(STANDING_EVERY).await;
            match reader.recv::<WorkerOpen>().await {
                Ok(Some(WorkerOpen::Standing(next))) => standing = next,
                Ok(None) => break,
                _ => {
                    let _ = reader.get_mut().stop(codes::PROTOCOL);
                    break;
                }
            }
        },
        _ => {
            let _ = reader.get_mut().stop(codes::PROTOCOL);
        }
    }
}

/// The most often a member's standing is taken: a flood of them waits in its stream.
const STANDING_EVERY: Duration = Duration::from_millis(100);

/// Takes what a member says it gives now, checked against the slots its hello said: the job
/// table gives it chunks for those slots, the registry shows why not all of them. A standing
/// that cannot be true (more slots than it has, a charge of 300%) is logged and ignored.
async fn take_standing(
    cluster: &Cluster,
    worker: crate::scheduler::WorkerId,
    name: &str,
    standing: proto::policy::Standing,
) {
    let name = name.to_string();
    let _ = cluster
        .call(move |s, now| {
            let Some(full) = s.registry.get(worker).map(|w| w.hello.slots) else { return };
            if let Err(e) = standing.check(full) {
                tracing::warn!(
                    "worker '{name}' sent a standing that cannot be true ({e}): ignored"
                );
                return;
            }
            match &standing.why {
                Some(why) => tracing::info!(
                    "worker '{name}' gives {} of {full} slots: {why}",
                    standing.slots
                ),
                None => tracing::info!("worker '{name}' gives all its {full} slots again"),
            }
            s.jobs.set_slots_now(now, worker, standing.slots);
            s.registry.set_standing(worker, standing);
        })
        .await;
}

/// How long a member may take to send a command chunk's units it delivers, once it named
/// the chunk.
const UNITS_DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);

/// This run's deliveries of command units, numbered for their spool files.
static UNITS_DELIVERIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Takes a command chunk's units that a member ran through a lost connection, if the chunk
/// still waits for them from it: spooled and checked as on the chunk's own stream, then
/// counted as a delivered result. A chunk not needed (done since, never given) is refused
/// before its bytes come; the member lets them go either way.
async fn take_units(
    cluster: Cluster,
    worker: crate::scheduler::WorkerId,
    name: &str,
    request: proto::wire::ChunkRequest,
    (mut writer, mut reader): (MessageWriter<SendStream>, MessageReader<RecvStream>),
) {
    let (job, chunk, asked) = (request.job, request.chunk, request.clone());
    let wanted = cluster.call(move |s, _| s.jobs.units_wanted(worker, &asked)).await;
    let shown = proto::names::shown(name);
    let Ok(Some(crate::tasks::Chunk { talk: crate::tasks::Talk::Own(mut own), .. })) = wanted
    else {
        tracing::debug!(
            "worker {shown} delivered units of chunk {chunk} of job {job}: not needed, refused"
        );
        let _ = reader.get_mut().stop(codes::REFUSED);
        let _ = writer.get_mut().reset(codes::REFUSED);
        return;
    };
    let n = UNITS_DELIVERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stores = cluster.stores();
    let stream = crate::tasks::Stream {
        writer: &mut writer,
        reader: &mut reader,
        request: &request,
        via: crate::tasks::Via::Delivery(n),
        worker: name,
        stores,
    };
    let reply = tokio::time::timeout(UNITS_DELIVERY_TIMEOUT, own.converse(stream)).await;
    let (start, end) = (request.start, request.end);
    let output = match reply {
        Ok(Ok(proto::wire::ChunkReply::Done(output)))
            if crate::tasks::check_output(&request.task, start, end, &output).is_ok() =>
        {
            output
        }
        other => {
            let why = match other {
                Ok(Ok(_)) => "not a whole chunk's units".to_string(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(_) => format!("not sent within {UNITS_DELIVERY_TIMEOUT:?}"),
            };
            tracing::warn!(
                "dropped units of chunk {chunk} of job {job} delivered by worker {shown}: {why}"
            );
            own.abandoned().await;
            let _ = reader.get_mut().stop(codes::PROTOCOL);
            let _ = writer.get_mut().reset(codes::PROTOCOL);
            return;
        }
    };
    let counted = cluster
        .call(move |s, now| {
            let counted = s.jobs.chunk_delivered(now, worker, &request, output);
            counted.then(|| (s.journal.clone(), s.journal_records()))
        })
        .await
        .ok()
        .flatten();
    match counted {
        Some((journal, batch)) => {
            tracing::info!("worker {shown} delivered the units of chunk {chunk} of job {job}, run through a lost connection: counted");
            // The member lets the units go when the stream ends: once their count is kept,
            // or after a while of a journal that cannot write (a full disk; the count is in
            // memory, and kept when it can be).
            let _ = tokio::time::timeout(UNITS_DELIVERY_TIMEOUT, journal.synced(batch)).await;
            let _ = writer.get_mut().finish();
        }
        None => own.abandoned().await,
    }
}

/// Log batches a member may send per [`LOG_WINDOW`] (a worker sends one a second at most);
/// more are dropped and counted as refused lines.
const LOG_BATCHES: u32 = 30;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Keeps a worker's log lines, if they are lines a worker sends, as often as a worker sends
/// them; a bad batch, or one past the member's `batches`, is dropped whole and counted.
async fn take_logs(
    cluster: &Cluster,
    name: &str,
    batches: &Mutex<Throttle>,
    mut lines: Vec<proto::logs::LogLine>,
) {
    proto::logs::date_received(&mut lines, crate::logbook::unix_ms());
    let allowed = batches.lock().unwrap_or_else(|p| p.into_inner()).allow(Instant::now());
    // Faster than any worker sends: not worth a line in the log either.
    let mut refused = allowed.is_none();
    if !refused {
        if let Err(why) = proto::logs::check_batch(&lines) {
            refused = true;
            if let Some(held_back) = cluster.refusals_to_log() {
                tracing::warn!(
                    "dropped log lines from worker {}: {why}{}",
                    proto::names::shown(name),
                    held_back_note(held_back)
                );
            }
        }
    }
    let name = name.to_string();
    let _ = cluster.call(move |s, _| s.take_logs(&name, lines, refused)).await;
}

/// Hands a delivered chunk result to the job table, which counts it if its chunk still waits
/// for one.
async fn take_delivery(
    cluster: Cluster,
    worker: crate::scheduler::WorkerId,
    name: &str,
    request: proto::wire::ChunkRequest,
    output: proto::wire::ChunkOutput,
) {
    let (job, chunk) = (request.job, request.chunk);
    let counted = cluster
        .call(move |s, now| s.jobs.chunk_delivered(now, worker, &request, output))
        .await
        .unwrap_or(false);
    let name = proto::names::shown(name);
    if counted {
        tracing::info!("worker {name} delivered chunk {chunk} of job {job}, held through a lost connection: counted");
    } else {
        tracing::debug!("worker {name} delivered chunk {chunk} of job {job}: not needed, dropped");
    }
}

#[cfg(test)]
mod tests {
    //! Peers the real worker never is: no certificate, garbage bytes. Driven in-process against
    //! a real coordinator on 127.0.0.1.

    use crate::coordinator::{self, CoordinatorConfig};
    use crate::transport;
    use proto::wire::{Hello, JoinReply, JoinRequest, Welcome, WorkerOpen};
    use proto::{MessageReader, MessageWriter};
    use tokio_util::sync::CancellationToken;

    async fn connect_without_certificate(running: &coordinator::Running) -> quinn::Connection {
        let ca_sha256 = certs::cert_sha256_hex(running.cluster.facts().authority.ca_der());
        let tls = certs::tls::joining_client(&ca_sha256, proto::ALPN).unwrap();
        let client = transport::client_config(tls, transport::DEFAULT_DEAD_AFTER, 4).unwrap();
        let endpoint = transport::client_endpoint(running.local_addr).unwrap();
        let connecting =
            endpoint.connect_with(client, running.local_addr, proto::COORDINATOR_SERVER_NAME);
        connecting.unwrap().await.unwrap()
    }

    /// A real coordinator on 127.0.0.1 with its state in a temp dir.
    async fn start_coordinator() -> (tempfile::TempDir, CancellationToken, coordinator::Running) {
        let dir = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let config = CoordinatorConfig {
            temporary: false,
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.path().join("state"),
            socket: dir.path().join("sock"),
            socket_group: None,
            sans: vec![],
            dead_after: transport::DEFAULT_DEAD_AFTER,
            straggler_factor: 3.0,
            worker_cert_life: certs::authority::DEFAULT_WORKER_CERT_LIFE,
            max_running_jobs: coordinator::DEFAULT_MAX_RUNNING_JOBS as usize,
            verify: coordinator::DEFAULT_VERIFY,
            retention: Default::default(),
            journal_reset: false,
            file_store: crate::exec::cache::DEFAULT_LIMIT,
            files_max: crate::exec::cache::DEFAULT_FILES,
            spool: crate::coordinator::jobs::SpoolBounds::default(),
            http: None,
        };
        let running = coordinator::start(config, shutdown.clone()).await.unwrap();
        (dir, shutdown, running)
    }

    /// Sends one join request on a connection of its own and returns the reply.
    async fn join_reply(running: &coordinator::Running, join: JoinRequest) -> JoinReply {
        let conn = connect_without_certificate(running).await;
        let (send, recv) = conn.open_bi().await.unwrap();
        MessageWriter::new(send).send(&WorkerOpen::Join(join)).await.unwrap();
        let reply = MessageReader::new(recv).recv::<JoinReply>().await.unwrap().unwrap();
        conn.close(0u32.into(), b"read");
        reply
    }

    #[tokio::test]
    async fn joins_are_refused_for_the_workers_mistakes() {
        let (_dir, shutdown, running) = start_coordinator().await;
        let secret = running.cluster.facts().authority.join_token().unwrap().secret;
        let request = |name: String, secret: String| JoinRequest {
            protocol: proto::PROTOCOL_VERSION,
            name,
            secret,
            csr_der: b"not a CSR".to_vec(),
        };
        let refusal = |reply: JoinReply| match reply {
            JoinReply::Refused { reason } => reason,
            other => panic!("{other:?}"),
        };
        let wrong = refusal(join_reply(&running, request("w".into(), "00".repeat(16))).await);
        assert!(wrong.contains("wrong join token"), "{wrong}");
        for name in [String::new(), "n".repeat(254), "w\nINFO forged".into(), "tab\t".into()] {
            let reason = refusal(join_reply(&running, request(name, secret.clone())).await);
            assert!(reason.contains("is not a worker name: use 1 to 253"), "{reason}");
            assert!(!reason.contains('\n') && !reason.contains('\t'), "{reason:?}");
        }
        // The right secret and a name of the longest length get as far as the CSR.
        let reason = refusal(join_reply(&running, request("n".repeat(253), secret.clone())).await);
        assert!(reason.contains("bad certificate request"), "{reason}");
        let reason = refusal(join_reply(&running, request("w".into(), secret)).await);
        assert!(reason.contains("bad certificate request"), "{reason}");
        shutdown.cancel();
        running.stopped().await;
    }

    #[tokio::test]
    async fn hostile_peers_lose_their_connection_not_the_coordinator() {
        let (dir, shutdown, running) = start_coordinator().await;

        // A hello over a connection without a client certificate is refused.
        let conn = connect_without_certificate(&running).await;
        let (send, recv) = conn.open_bi().await.unwrap();
        let hello = Hello {
            protocol: proto::PROTOCOL_VERSION,
            name: "sneaky".into(),
            slots: 1,
            version: "0".into(),
            binary_sha256: String::new(),
            arch: "x86_64".into(),
            os: "linux".into(),
        };
        MessageWriter::new(send).send(&WorkerOpen::Hello(hello)).await.unwrap();
        let reply = MessageReader::new(recv).recv::<Welcome>().await.unwrap();
        let Some(Welcome::Refused { reason }) = reply else { panic!("{reply:?}") };
        assert!(reason.contains("no client certificate"), "{reason}");
        assert!(running.cluster.workers().await.unwrap().is_empty());

        // A peer speaking another protocol version is told both versions.
        let conn = connect_without_certificate(&running).await;
        let (send, recv) = conn.open_bi().await.unwrap();
        let join = JoinRequest {
            protocol: proto::PROTOCOL_VERSION + 1,
            name: "future".into(),
            secret: running.cluster.facts().authority.join_token().unwrap().secret,
            csr_der: vec![],
        };
        MessageWriter::new(send).send(&WorkerOpen::Join(join)).await.unwrap();
        let reply = MessageReader::new(recv).recv::<JoinReply>().await.unwrap();
        let Some(JoinReply::Refused { reason }) = reply else { panic!("{reply:?}") };
        let (ours, theirs) = (proto::PROTOCOL_VERSION, proto::PROTOCOL_VERSION + 1);
        assert!(reason.contains(&format!("worker speaks version {theirs}")), "{reason}");
        assert!(reason.contains(&format!("coordinator version {ours}")), "{reason}");

        // The coordinator's own failure is "not now", never a refusal that stops a worker.
        let secret_path = dir.path().join("state/join-secret");
        let secret = std::fs::read(&secret_path).unwrap();
        std::fs::remove_file(&secret_path).unwrap();
        std::fs::create_dir(&secret_path).unwrap();
        let conn = connect_without_certificate(&running).await;
        let (send, recv) = conn.open_bi().await.unwrap();
        let join = JoinRequest {
            protocol: proto::PROTOCOL_VERSION,
            name: "early".into(),
            secret: String::from_utf8(secret.clone()).unwrap().trim().to_string(),
            csr_der: vec![],
        };
        MessageWriter::new(send).send(&WorkerOpen::Join(join)).await.unwrap();
        let reply = MessageReader::new(recv).recv::<JoinReply>().await.unwrap();
        let Some(JoinReply::Unavailable { reason }) = reply else { panic!("{reply:?}") };
        assert!(reason.contains("cannot read its join secret"), "{reason}");
        std::fs::remove_dir(&secret_path).unwrap();
        std::fs::write(&secret_path, secret).unwrap();

        // A frame claiming 4 GiB, then garbage: the connection is closed.
        let conn = connect_without_certificate(&running).await;
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        send.write_all(&[0xAB; 64]).await.unwrap();
        let reason = conn.closed().await;
        assert!(reason.to_string().contains("bad first message"), "{reason}");

        // A well-formed frame that is not a message.
        let conn = connect_without_certificate(&running).await;
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        send.write_all(&8u32.to_be_bytes()).await.unwrap();
        send.write_all(&[0xFF; 8]).await.unwrap();
        conn.closed().await;

        // The coordinator still serves.
        assert_eq!(running.cluster.status().await.unwrap().workers, 0);
        let conn = connect_without_certificate(&running).await;
        assert!(conn.open_bi().await.is_ok());

        shutdown.cancel();
        running.stopped().await;
    }
}
