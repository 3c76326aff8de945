//! `marmotctl update`: new `marmotd` binaries rolled over the workers, then the coordinator.
//!
//! Binaries are first uploaded to the coordinator's state dir (`binaries/<sha256>`, read back
//! for their architecture and version). A rollout then takes the workers a few at a time
//! (`parallel`, at most a quarter of them): each is drained (no new chunks; its running chunks
//! finish, or go back to the queue when it restarts), offered the binary for its architecture
//! on a stream of its own, sent the bytes piece by piece, and waited for: back on the new
//! SHA-256 (updated), back on the old one (rolled back), or not back in time (failed). A worker
//! that declines or fails without restarting takes chunks again at once.
//!
//! A transfer that the worker's connection losing cuts is resumed when the worker is back (on
//! its old binary, within [`COME_BACK_TIMEOUT`]), up to [`RESUMES`] times: offered again, it
//! asks only for the bytes after the pieces it kept.
//!
//! A worker that rolls back stops the rollout: the workers not yet started are reported as
//! not tried (unless `keep_going`).
//!
//! The coordinator updates itself last, and only if no worker failed on the new binary: it
//! checks the binary as a worker would, swaps it in, answers, then shuts down and re-executes.

use super::driver::{Cluster, State};
use super::error::ClusterError;
use crate::scheduler::WorkerId;
use crate::update::decide::{decide, Running};
use crate::update::install::{self, NotInstalled, Plan, Staging, MAX_BINARY_SIZE};
use crate::update::{binary, version, Invocation};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use proto::api::{BinaryInfo, MachineUpdate, UpdateReport, UpdateRequest, UpdateStatus};
use proto::names::shown;
use proto::pieces;
use proto::wire::{
    ChunkData, CoordinatorOpen, Hello, UpdateAnswer, UpdateOffer, UpdateOutcome, TRIAL_TIMEOUT,
};
use proto::{MessageReader, MessageWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a drained worker's running chunks may take to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker may take to answer an offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a restarting worker may take to come back.
const COME_BACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times one worker's cut transfer is resumed before its update fails.
const RESUMES: u32 = 3;
/// Uploaded binaries kept (the newest).
const KEEP_BINARIES: usize = 8;

fn store(cluster: &Cluster) -> PathBuf {
    cluster.facts().state_dir.join("binaries")
}

/// Stores an uploaded binary, fed piece by piece, and reads back what it is.
pub struct Upload {
    dir: PathBuf,
    staging: Staging,
}

impl Upload {
    pub async fn start(cluster: &Cluster) -> Result<Self, ClusterError> {
        let dir = store(cluster);
        let made = dir.clone();
        tokio::task::spawn_blocking(move || certs::files::create_private_dir(&made))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        // Staged as if to replace a file in the store: the same temp-file-and-verify path as
        // an update, with the size bound applied as the bytes come.
        let staging =
            Staging::create_async(dir.join("upload"), MAX_BINARY_SIZE).await.map_err(internal)?;
        Ok(Upload { dir, staging })
    }

    /// Writes the next bytes, off the async runtime.
    pub async fn write(self, bytes: Vec<u8>) -> Result<Self, ClusterError> {
        let Upload { dir, staging } = self;
        let staging = staging
            .write_async(bytes)
            .await
            .map_err(|e| ClusterError::Invalid(format!("{e:#}")))?;
        Ok(Upload { dir, staging })
    }

    /// Checks the upload is a marmotd binary and files it under its SHA-256.
    pub fn finish(self) -> Result<BinaryInfo, ClusterError> {
        let path = self.staging.keep().map_err(internal)?;
        let info = match binary::inspect(&path) {
            Ok(info) => info,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(ClusterError::Invalid(format!("{e:#}")));
            }
        };
        std::fs::rename(&path, self.dir.join(&info.sha256)).map_err(internal)?;
        let record = serde_json::to_vec(&info).map_err(internal)?;
        std::fs::write(self.dir.join(format!("{}.json", info.sha256)), record).map_err(internal)?;
        prune(&self.dir);
        Ok(info)
    }
}

/// Keeps the newest [`KEEP_BINARIES`] uploads (each a binary and its `.json` record).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut records: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    records.sort();
    let excess = records.len().saturating_sub(KEEP_BINARIES);
    for (_, record) in records.into_iter().take(excess) {
        let _ = std::fs::remove_file(record.with_extension(""));
        let _ = std::fs::remove_file(record);
    }
}

/// Binary bytes sent to workers, and the time spent sending them (summed over workers).
#[derive(Default)]
struct Sent {
    bytes: AtomicU64,
    nanos: AtomicU64,
}

/// A stored binary.
struct Stored {
    info: BinaryInfo,
    path: PathBuf,
}

impl Stored {
    /// The binary as an update offer.
    fn offer(&self, allow_downgrade: bool) -> UpdateOffer {
        let BinaryInfo { version, size, sha256, arch } = self.info.clone();
        UpdateOffer { version, size, sha256, arch, allow_downgrade }
    }
}

/// Runs a whole rollout and reports on every machine.
pub async fn rollout(
    cluster: &Cluster,
    request: UpdateRequest,
) -> Result<UpdateReport, ClusterError> {
    let started = Instant::now();
    let binaries = load(cluster, &request.binaries)?;
    let workers: Vec<(WorkerId, Hello)> = cluster
        .call(|s, _| s.registry.iter().map(|(id, w)| (id, w.hello.clone())).collect())
        .await?;
    let mut reports = Vec::new();
    let mut to_update = Vec::new();
    for (id, hello) in workers.iter().cloned() {
        match binaries.iter().find(|b| b.info.arch == hello.arch) {
            None => reports.push(report(
                &hello,
                UpdateStatus::Skipped,
                Some(format!("no binary for its architecture ({})", hello.arch)),
                None,
            )),
            Some(b) if b.info.sha256 == hello.binary_sha256 => {
                reports.push(report(&hello, UpdateStatus::Current, None, None))
            }
            Some(b) => to_update.push((id, hello, b.clone())),
        }
    }
    let most = (workers.len() / 4).max(1);
    let parallel = request.parallel.unwrap_or(1).clamp(1, most as u32) as usize;
    let sent = Sent::default();
    let (sent_ref, allow_downgrade) = (&sent, request.allow_downgrade);
    let cluster_ref = cluster;
    // The first worker that rolls back, after which (unless `keep_going`) no other is tried:
    // a binary that fails its trial start on one machine likely fails on the next.
    let stopped_at = std::sync::Mutex::new(None::<String>);
    let (stopped_ref, keep_going) = (&stopped_at, request.keep_going);
    let updated: Vec<MachineUpdate> = futures_util::stream::iter(to_update)
        .map(|(id, hello, b)| async move {
            let stopped = stopped_ref.lock().map(|s| s.clone()).unwrap_or(None);
            if let (Some(who), false) = (stopped, keep_going) {
                let why = format!(
                    "not tried: the rollout stopped after {who} rolled back (--keep-going goes on)"
                );
                return report(&hello, UpdateStatus::Skipped, Some(why), None);
            }
            let (status, detail, now_sha) =
                update_worker(cluster_ref, id, &hello, &b, allow_downgrade, sent_ref).await;
            if status == UpdateStatus::RolledBack {
                if let Ok(mut stopped) = stopped_ref.lock() {
                    stopped.get_or_insert_with(|| hello.name.clone());
                }
            }
            let now = (now_sha == b.info.sha256).then_some(&b.info);
            let line = report(&hello, status, detail, now);
            log_outcome(&line);
            line
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    reports.extend(updated);
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let coordinator = if request.coordinator {
        Some(update_coordinator(cluster, &binaries, &reports, request.allow_downgrade).await)
    } else {
        None
    };
    if let Some(own) = &coordinator {
        log_outcome(own);
    }
    let statuses: Vec<UpdateStatus> =
        reports.iter().chain(&coordinator).map(|machine| machine.status).collect();
    let _ = cluster
        .call(move |s, _| statuses.into_iter().for_each(|status| s.counts.update_ended(status)))
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let bytes_sent = sent.bytes.load(Ordering::Relaxed);
    let sending = Duration::from_nanos(sent.nanos.load(Ordering::Relaxed)).as_secs_f64();
    Ok(UpdateReport {
        workers: reports,
        parallel: parallel as u32,
        coordinator,
        seconds,
        bytes_sent,
        bytes_per_second: bytes_sent as f64 / sending.max(1e-9),
    })
}

fn load(cluster: &Cluster, shas: &[String]) -> Result<Vec<Arc<Stored>>, ClusterError> {
    if shas.is_empty() {
        return Err(ClusterError::Invalid("name at least one binary to roll out".into()));
    }
    let mut out: Vec<Arc<Stored>> = Vec::new();
    for sha in shas {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClusterError::Invalid(format!("'{sha}' is not a SHA-256")));
        }
        // The record made at upload; the bytes are not hashed again here: workers check them
        // against the SHA-256 on arrival, which also catches a stored copy gone bad.
        let path = store(cluster).join(sha.to_ascii_lowercase());
        let info: BinaryInfo = std::fs::read(path.with_extension("json"))
            .ok()
            .and_then(|record| serde_json::from_slice(&record).ok())
            .ok_or_else(|| {
                ClusterError::NotFound(format!(
                    "no binary {sha} on the coordinator: upload it first"
                ))
            })?;
        if let Some(other) = out.iter().find(|b| b.info.arch == info.arch) {
            return Err(ClusterError::Invalid(format!(
                "two binaries for {}: {} and {}",
                info.arch, other.info.sha256, info.sha256
            )));
        }
        out.push(Arc::new(Stored { info, path }));
    }
    Ok(out)
}

/// Says in the coordinator's log (and so on the dashboard) how a machine's update went; a
/// machine already current, or skipped, is no news.
fn log_outcome(m: &MachineUpdate) {
    let detail = m.detail.as_deref().unwrap_or("");
    match m.status {
        UpdateStatus::Updated => {
            tracing::info!("worker '{}' updated to marmotd {}", m.name, m.version)
        }
        UpdateStatus::Restarting => {
            tracing::info!("the coordinator restarts on marmotd {}", m.version)
        }
        UpdateStatus::RolledBack => {
            tracing::warn!("worker '{}' rolled back to marmotd {}: {detail}", m.name, m.version)
        }
        UpdateStatus::Failed => tracing::warn!("updating worker '{}' failed: {detail}", m.name),
        UpdateStatus::Current | UpdateStatus::Skipped => {}
    }
}

/// A worker's line of the report: it ran what its hello says, and runs `now` at the end (the
/// binary rolled out, or the one it had).
fn report(
    hello: &Hello,
    status: UpdateStatus,
    detail: Option<String>,
    now: Option<&BinaryInfo>,
) -> MachineUpdate {
    MachineUpdate {
        name: hello.name.clone(),
        status,
        detail,
        from_sha256: hello.binary_sha256.clone(),
        to_sha256: now.map_or(&hello.binary_sha256, |b| &b.sha256).clone(),
        version: now.map_or(&hello.version, |b| &b.version).clone(),
    }
}

/// Updates one worker: drain, offer, send, and wait for it to come back. Returns the status,
/// why (unless updated), and the SHA-256 it runs at the end.
async fn update_worker(
    cluster: &Cluster,
    id: WorkerId,
    hello: &Hello,
    binary: &Stored,
    allow_downgrade: bool,
    sent: &Sent,
) -> (UpdateStatus, Option<String>, String) {
    let old = hello.binary_sha256.clone();
    let mut id = id;
    let mut resumes = 0;
    let outcome = loop {
        drain(cluster, id).await;
        let resume = resumes > 0;
        let outcome = offer(cluster, id, binary, allow_downgrade, sent, resume).await;
        let Ok(Offered::Cut(why)) = outcome else { break outcome };
        if resumes == RESUMES {
            break Err(anyhow!("{why}; cut {} times", resumes + 1));
        }
        resumes += 1;
        tracing::info!(
            "the transfer to worker '{}' was cut ({why}); resuming when it is back",
            hello.name
        );
        let (name, old) = (hello.name.clone(), old.clone());
        let back = wait_for(cluster, COME_BACK_TIMEOUT, move |s| {
            let mut again = s.registry.iter().filter(|(other, _)| *other != id);
            again
                .find(|(_, w)| w.hello.name == name && w.hello.binary_sha256 == old)
                .map(|(i, _)| i)
        })
        .await;
        match back {
            Some(again) => id = again,
            None => {
                break Err(anyhow!("{why}, and it did not come back within {COME_BACK_TIMEOUT:?}"))
            }
        }
    };
    let (status, detail) = match outcome {
        Ok(Offered::Restarting) => {
            let name = hello.name.clone();
            let back = wait_for(cluster, COME_BACK_TIMEOUT, move |s| {
                s.registry
                    .iter()
                    .find(|(other, w)| *other != id && w.hello.name == name)
                    .map(|(_, w)| w.hello.binary_sha256.clone())
            })
            .await;
            return match back {
                Some(sha) if sha == binary.info.sha256 => (UpdateStatus::Updated, None, sha),
                Some(sha) if sha == old => {
                    let why = "it came back on its previous binary".to_string();
                    (UpdateStatus::RolledBack, Some(why), sha)
                }
                Some(sha) => (UpdateStatus::Failed, Some(format!("it came back on {sha}")), sha),
                None => {
                    let why = format!("it did not come back within {COME_BACK_TIMEOUT:?}");
                    (UpdateStatus::Failed, Some(why), old)
                }
            };
        }
        Ok(Offered::Answered(UpdateAnswer::Current)) => (UpdateStatus::Current, None),
        Ok(Offered::Answered(UpdateAnswer::WrongArch { ours })) => {
            (UpdateStatus::Skipped, Some(format!("the worker is {}", shown(&ours))))
        }
        Ok(Offered::Answered(UpdateAnswer::Downgrade { ours })) => (
            UpdateStatus::Failed,
            Some(format!(
                "{} is older than its {}: pass --allow-downgrade to go back",
                binary.info.version,
                shown(&ours)
            )),
        ),
        Ok(Offered::Answered(UpdateAnswer::Refused { reason })) => {
            (UpdateStatus::Failed, Some(worker_says(&reason)))
        }
        Ok(Offered::Answered(UpdateAnswer::Accept | UpdateAnswer::AcceptFrom { .. })) => {
            (UpdateStatus::Failed, Some("the worker accepted twice".into()))
        }
        Ok(Offered::Cut(why)) => (UpdateStatus::Failed, Some(why)),
        Ok(Offered::Failed(reason)) => (UpdateStatus::Failed, Some(reason)),
        Ok(Offered::RolledBack(reason)) => (UpdateStatus::RolledBack, Some(reason)),
        Err(e) => (UpdateStatus::Failed, Some(format!("{e:#}"))),
    };
    let now = if status == UpdateStatus::Current { binary.info.sha256.clone() } else { old };
    set_draining(cluster, id, false).await;
    (status, detail, now)
}

/// Stops giving worker `id` new chunks, and waits for its running ones to end.
async fn drain(cluster: &Cluster, id: WorkerId) {
    set_draining(cluster, id, true).await;
    wait_for(cluster, DRAIN_TIMEOUT, move |s| {
        s.busy_slots(id).is_none_or(|b| b == 0).then_some(())
    })
    .await;
}

/// How an offer ended on the worker's side.
enum Offered {
    /// The worker's connection was lost while the bytes were on their way.
    Cut(String),
    /// Declined before any byte was sent.
    Answered(UpdateAnswer),
    /// Sent, and refused: nothing was installed.
    Failed(String),
    /// Sent, and failed its trial start: the worker stays on its old binary.
    RolledBack(String),
    /// Installed; the worker is re-executing.
    Restarting,
}

/// Offers `binary` to worker `id` on a stream of its own and, if accepted, sends it (from
/// where a cut transfer stopped, when `resume`).
async fn offer(
    cluster: &Cluster,
    id: WorkerId,
    binary: &Stored,
    allow_downgrade: bool,
    sent: &Sent,
    resume: bool,
) -> Result<Offered> {
    let conn = cluster
        .call(move |s, _| s.registry.get(id).map(|w| w.conn.clone()))
        .await?
        .context("the worker left before its update")?;
    let offered = binary.offer(allow_downgrade);
    let resumed = match resume {
        true => Some(ask(&conn, CoordinatorOpen::UpdateResume(offered.clone())).await),
        false => None,
    };
    let (answer, mut writer, mut reader) = match resumed {
        Some(Ok(asked)) => asked,
        // A worker of an earlier release knows no resumed offer and resets its stream: it
        // gets a plain offer.
        Some(Err(e)) if conn.close_reason().is_some() => return Err(e),
        Some(Err(_)) | None => ask(&conn, CoordinatorOpen::Update(offered)).await?,
    };
    let from = match answer {
        UpdateAnswer::Accept => 0,
        UpdateAnswer::AcceptFrom { offset } if resume && offset <= binary.info.size => offset,
        UpdateAnswer::AcceptFrom { offset } => {
            bail!("the worker asked for the bytes after {offset}, of {}", binary.info.size)
        }
        answer => return Ok(Offered::Answered(answer)),
    };
    let sending = Instant::now();
    let transfer = async {
        let len = binary.info.size - from;
        pieces::send_file::<ChunkData, _>(&mut writer, &binary.path, from, len).await?;
        writer.get_mut().finish()?;
        // Sent once the worker has every byte, not once QUIC has them all to send.
        let stopped = tokio::time::timeout(ANSWER_TIMEOUT, writer.get_mut().stopped()).await;
        anyhow::Ok(stopped.ok())
    };
    let transfer = transfer.await;
    let delivered = matches!(transfer, Ok(Some(Ok(None))));
    if let (Some(reason), false) = (conn.close_reason(), delivered) {
        let why = format!("lost the worker while sending it the binary: {reason}");
        return Ok(Offered::Cut(why));
    }
    transfer?;
    sent.bytes.fetch_add(binary.info.size - from, Ordering::Relaxed);
    sent.nanos.fetch_add(sending.elapsed().as_nanos() as u64, Ordering::Relaxed);
    // The worker checks the bytes and gives the binary a trial start before answering.
    let limit = TRIAL_TIMEOUT + ANSWER_TIMEOUT;
    let outcome = tokio::time::timeout(limit, reader.recv::<UpdateOutcome>())
        .await
        .map_err(|_| anyhow!("the worker did not report within {limit:?}"))??
        .context("the worker closed the update stream without an outcome")?;
    Ok(match outcome {
        UpdateOutcome::Restarting => Offered::Restarting,
        UpdateOutcome::Failed { reason } => Offered::Failed(worker_says(&reason)),
        UpdateOutcome::RolledBack { reason } => Offered::RolledBack(worker_says(&reason)),
    })
}

/// Opens a stream to the worker, sends `open` (an offer), and reads the worker's answer.
async fn ask(
    conn: &quinn::Connection,
    open: CoordinatorOpen,
) -> Result<(UpdateAnswer, MessageWriter<quinn::SendStream>, MessageReader<quinn::RecvStream>)> {
    let (send, recv) = tokio::time::timeout(ANSWER_TIMEOUT, conn.open_bi())
        .await
        .map_err(|_| anyhow!("the worker accepts no more streams"))??;
    let (mut writer, mut reader) = (MessageWriter::new(send), MessageReader::new(recv));
    writer.send(&open).await?;
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, reader.recv::<UpdateAnswer>())
        .await
        .map_err(|_| anyhow!("the worker did not answer the offer within {ANSWER_TIMEOUT:?}"))??
        .context("the worker closed the update stream")?;
    Ok((answer, writer, reader))
}

/// A worker's own words, as the coordinator passes them on to logs and `marmotctl`: bounded
/// and escaped.
fn worker_says(reason: &str) -> String {
    proto::names::shown_at_most(reason, 300)
}

/// Stops giving worker `id` new chunks (`draining`), or starts again.
async fn set_draining(cluster: &Cluster, id: WorkerId, draining: bool) {
    let _ = cluster.call(move |s, now| s.jobs.set_draining(now, id, draining)).await;
}

/// Asks `check` of the state after every change of the cluster until it gives an answer or
/// `limit` passes.
async fn wait_for<T: Send + 'static>(
    cluster: &Cluster,
    limit: Duration,
    check: impl Fn(&State) -> Option<T> + Clone + Send + 'static,
) -> Option<T> {
    let mut changes = cluster.call(|s, _| s.jobs.subscribe_changes()).await.ok()?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ask = check.clone();
        if let Some(answer) = cluster.call(move |s, _| ask(s)).await.ok()? {
            return Some(answer);
        }
        if !matches!(tokio::time::timeout_at(deadline, changes.changed()).await, Ok(Ok(()))) {
            let ask = check.clone();
            return cluster.call(move |s, _| ask(s)).await.ok()?;
        }
    }
}

/// Replaces the coordinator's own binary, if the workers took it well; the caller restarts.
async fn update_coordinator(
    cluster: &Cluster,
    binaries: &[Arc<Stored>],
    workers: &[MachineUpdate],
    allow_downgrade: bool,
) -> MachineUpdate {
    let own = cluster.facts().binary_sha256.clone();
    // It runs `now` at the end: the binary rolled out, or its own.
    let line = |status, detail: Option<String>, now: Option<&BinaryInfo>| MachineUpdate {
        name: "coordinator".into(),
        status,
        detail,
        from_sha256: own.clone(),
        to_sha256: now.map_or(&own, |b| &b.sha256).clone(),
        version: now.map_or(version::current(), |b| &b.version).to_string(),
    };
    let arch = std::env::consts::ARCH;
    let Some(binary) = binaries.iter().find(|b| b.info.arch == arch) else {
        return line(UpdateStatus::Skipped, Some(format!("no binary for {arch}")), None);
    };
    // The same decision a worker makes on an offer.
    match decide(&binary.offer(allow_downgrade), &Running::this(&own)) {
        Ok(()) => {}
        Err(UpdateAnswer::Current) => return line(UpdateStatus::Current, None, None),
        Err(UpdateAnswer::Downgrade { ours }) => {
            let why = format!(
                "{} is older than the running {ours}: pass --allow-downgrade to go back",
                binary.info.version
            );
            return line(UpdateStatus::Failed, Some(why), None);
        }
        Err(other) => return line(UpdateStatus::Failed, Some(other.to_string()), None),
    }
    let failed = workers.iter().filter(|w| !w.status.is_success()).count();
    if failed > 0 && workers.iter().any(|w| w.to_sha256 != binary.info.sha256) {
        let why = format!("left alone: {failed} worker(s) did not take the new binary");
        return line(UpdateStatus::Skipped, Some(why), None);
    }
    match install_own(cluster, binary).await {
        Ok(()) => {
            cluster.request_restart();
            line(UpdateStatus::Restarting, None, Some(&binary.info))
        }
        Err(reason) => line(UpdateStatus::Failed, Some(reason), None),
    }
}

/// Stages a stored binary beside the coordinator's executable and installs it as a worker
/// installs one, without the trial start (the coordinator itself is what a trial would talk
/// to): probation starts with its restart.
async fn install_own(cluster: &Cluster, binary: &Stored) -> Result<(), String> {
    let invocation = Invocation::get()
        .filter(|i| i.args.first().is_some_and(|a| a == "coordinator"))
        .ok_or("only a coordinator started as `marmotd coordinator` can replace itself")?;
    let (exe, info, path) = (invocation.exe.clone(), binary.info.clone(), binary.path.clone());
    // A local copy, off the async runtime: the same staging and checks as a worker's.
    let staged = tokio::task::spawn_blocking(move || {
        let mut staging = Staging::create(&exe, info.size)?;
        let mut file = std::fs::File::open(&path)?;
        let mut piece = vec![0u8; pieces::PIECE];
        loop {
            let n = std::io::Read::read(&mut file, &mut piece)?;
            if n == 0 {
                break;
            }
            staging.write(&piece[..n])?;
        }
        staging.finish(&info.sha256)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{e:#}"))?;
    let plan = Plan {
        exe: &invocation.exe,
        state_dir: &cluster.facts().state_dir,
        from_sha256: &cluster.facts().binary_sha256,
        to_sha256: &binary.info.sha256,
        version: &binary.info.version,
        trial: None,
    };
    install::install(staged, plan).await.map_err(|e| match e {
        NotInstalled::Failed(why) | NotInstalled::RolledBack(why) => why,
    })
}

fn internal(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Internal(e.to_string())
}
