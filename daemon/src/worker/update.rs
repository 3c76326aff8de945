//! A worker's side of `marmotctl update`: decide on the offer, receive the bytes, check them,
//! give the new binary a trial start, and swap.
//!
//! The trial start runs the new binary with this worker's own arguments plus `--update-trial`:
//! it loads the worker's state, connects to the coordinator and completes a handshake
//! (`WorkerOpen::Trial`), then exits 0. A binary that crashes, panics, exits non-zero or cannot
//! shake hands within [`TRIAL_TIMEOUT`] is never installed: the worker reports it rolled back
//! and stays on its old binary, connected all along. Only a binary that passed its trial
//! replaces this one; the worker then re-executes itself (same PID) and stays on probation
//! (see `update::pending`) until its first welcome.

use super::identity::WorkerInfo;
use super::WorkerConfig;
use crate::update::install::Staging;
use crate::update::{install, pending, version, Invocation};
use anyhow::{anyhow, bail, Context, Result};
use proto::wire::{ChunkData, UpdateAnswer, UpdateOffer, UpdateOutcome};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a new binary's trial start may take.
pub const TRIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// The flag that makes `marmotd worker` a trial start.
pub const TRIAL_FLAG: &str = "--update-trial";

/// What the update streams of one worker share.
pub struct Updater {
    info: WorkerInfo,
    config: WorkerConfig,
    /// One update at a time.
    busy: AtomicBool,
    /// Cancelled once a new binary is installed: the session ends and the process re-executes.
    pub restart: CancellationToken,
}

impl Updater {
    pub fn new(info: WorkerInfo, config: WorkerConfig, restart: CancellationToken) -> Self {
        Updater { info, config, busy: AtomicBool::new(false), restart }
    }

    /// Serves one update stream from the offer on.
    pub async fn serve(
        &self,
        offer: UpdateOffer,
        mut reader: MessageReader<RecvStream>,
        mut writer: MessageWriter<SendStream>,
    ) {
        let (answer, staging) = match self.decide(&offer) {
            Ok(staging) => (UpdateAnswer::Accept, Some(staging)),
            Err(answer) => (answer, None),
        };
        let short = offer.sha256.get(..12).unwrap_or(&offer.sha256);
        tracing::info!("offered marmotd {} ({short}): {answer}", offer.version);
        let sent = writer.send(&answer).await.is_ok();
        // Only an accepted offer holds the one-update-at-a-time flag.
        let Some(staging) = staging else {
            if sent {
                let _ = writer.get_mut().finish();
            }
            return;
        };
        if !sent {
            return self.done();
        }
        let Some(staging) = receive(staging, &mut reader).await else {
            // The coordinator went away mid-transfer: nothing was replaced.
            return self.done();
        };
        let outcome = match self.install(&offer, staging).await {
            Ok(outcome) => outcome,
            Err(e) => UpdateOutcome::Failed { reason: format!("{e:#}") },
        };
        tracing::info!("update to {}: {outcome}", offer.version);
        let restarting = outcome == UpdateOutcome::Restarting;
        if writer.send(&outcome).await.is_ok() {
            let _ = writer.get_mut().finish();
            // Let the coordinator read the outcome before the connection goes.
            let _ = tokio::time::timeout(Duration::from_secs(2), writer.get_mut().stopped()).await;
        }
        if restarting {
            self.restart.cancel();
        } else {
            self.done();
        }
    }

    fn done(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Accepts the offer (with a staging file ready for its bytes), or says why not.
    fn decide(&self, offer: &UpdateOffer) -> Result<Staging, UpdateAnswer> {
        let refused = |reason: String| UpdateAnswer::Refused { reason };
        let ours = &self.info.hello;
        if offer.sha256 == ours.binary_sha256 {
            return Err(UpdateAnswer::Current);
        }
        if offer.arch != ours.arch {
            return Err(UpdateAnswer::WrongArch { ours: ours.arch.clone() });
        }
        match version::compare(&offer.version, version::current()) {
            None => return Err(refused(format!("'{}' is not a version", offer.version))),
            Some(std::cmp::Ordering::Less) if !offer.allow_downgrade => {
                return Err(UpdateAnswer::Downgrade { ours: version::current().into() })
            }
            _ => {}
        }
        let invocation = match Invocation::get() {
            Some(invocation) if self.config.updatable => invocation,
            _ => return Err(refused(
                "this worker runs inside another program (`marmotd local`) and cannot replace it"
                    .into(),
            )),
        };
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(refused("an update of this worker is already in progress".into()));
        }
        Staging::create(&invocation.exe, offer.size).map_err(|e| {
            self.done();
            refused(format!("{e:#}"))
        })
    }

    /// Checks, tries and installs the received binary.
    async fn install(
        &self,
        offer: &UpdateOffer,
        staging: Result<Staging>,
    ) -> Result<UpdateOutcome> {
        let staged = match staging.and_then(|staging| staging.finish(&offer.sha256)) {
            Ok(staged) => staged,
            Err(e) => return Ok(UpdateOutcome::Failed { reason: format!("{e:#}") }),
        };
        if let Err(e) = staged.check_runs(&offer.version).await {
            return Ok(UpdateOutcome::Failed { reason: format!("{e:#}") });
        }
        if let Err(e) = trial_start(&staged).await {
            return Ok(UpdateOutcome::RolledBack { reason: format!("{e:#}") });
        }
        let invocation = Invocation::get().context("no invocation")?;
        pending::record(&self.config.state_dir, &self.info.hello.binary_sha256, &offer.sha256)?;
        if let Err(e) = install::swap(&invocation.exe, staged) {
            pending::commit(&self.config.state_dir);
            return Ok(UpdateOutcome::Failed { reason: format!("{e:#}") });
        }
        Ok(UpdateOutcome::Restarting)
    }
}

/// Writes the binary's pieces as they come, until the coordinator finishes the stream.
/// `None` if the stream broke (nobody is waiting for an outcome); `Some(Err)` if the bytes
/// could not be kept.
async fn receive(
    mut staging: Staging,
    reader: &mut MessageReader<RecvStream>,
) -> Option<Result<Staging>> {
    loop {
        match reader.recv::<ChunkData>().await {
            Ok(Some(piece)) => {
                if let Err(e) = staging.write(&piece.bytes) {
                    return Some(Err(e));
                }
            }
            Ok(None) => return Some(Ok(staging)),
            Err(_) => return None,
        }
    }
}

/// Runs the staged binary as this worker with [`TRIAL_FLAG`]: it must connect, be welcomed
/// and exit 0 in time.
async fn trial_start(staged: &install::Staged) -> Result<()> {
    let invocation = Invocation::get().context("no invocation")?;
    let mut args = invocation.args.clone();
    args.push(TRIAL_FLAG.into());
    let Some(output) = staged.run(&args, TRIAL_TIMEOUT).await? else {
        bail!("the new binary did not complete a handshake within {TRIAL_TIMEOUT:?}");
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
    Err(anyhow!("the new binary {} at its trial start: {}", describe(output.status), last.trim()))
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => status.to_string(),
    }
}
