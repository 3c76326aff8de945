//! A worker's side of `marmotctl update`: decide on the offer, receive the bytes, check them,
//! give the new binary a trial start, and swap.
//!
//! The trial start runs the new binary with this worker's own arguments plus `--update-trial`:
//! it loads the worker's state, connects to the coordinator and completes a handshake
//! (`WorkerOpen::Trial`), then exits 0. A binary that crashes, panics, exits non-zero or cannot
//! shake hands within [`proto::wire::TRIAL_TIMEOUT`] is never installed: the worker reports it rolled back
//! and stays on its old binary, connected all along. Only a binary that passed its trial
//! replaces this one; the worker then re-executes itself (same PID) and stays on probation
//! (see `update::pending`) until its first welcome.
//!
//! A transfer that a lost connection cut is kept (one at a time, in memory: its open staging
//! file and its hash so far). Offered the same binary again as a resumed update
//! ([`CoordinatorOpen::UpdateResume`](proto::wire::CoordinatorOpen)), the worker asks only
//! for the bytes after the pieces it kept.

use super::identity::WorkerInfo;
use super::WorkerConfig;
use crate::update::decide::{decide, Running};
use crate::update::install::{self, NotInstalled, Plan, Staging, TRIAL_FLAG};
use crate::update::Invocation;
use anyhow::Result;
use proto::pieces::{Incoming, ReceiveError};
use proto::wire::{ChunkData, UpdateAnswer, UpdateOffer, UpdateOutcome};
use proto::{MessageReader, MessageWriter};
use quinn::{RecvStream, SendStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the update streams of one worker share.
pub struct Updater {
    info: WorkerInfo,
    config: WorkerConfig,
    /// One update at a time.
    busy: AtomicBool,
    /// The transfer a lost connection cut last, to resume.
    cut: Mutex<Option<Cut>>,
    /// Cancelled once a new binary is installed: the session ends and the process re-executes.
    pub restart: CancellationToken,
}

impl Updater {
    pub fn new(info: WorkerInfo, config: WorkerConfig, restart: CancellationToken) -> Self {
        let (busy, cut) = (AtomicBool::new(false), Mutex::new(None));
        Updater { info, config, busy, cut, restart }
    }

    /// Serves one update stream from the offer on; `resume` if the coordinator offers it
    /// again after a cut transfer (and so takes [`UpdateAnswer::AcceptFrom`]).
    pub async fn serve(
        &self,
        offer: UpdateOffer,
        resume: bool,
        mut reader: MessageReader<RecvStream>,
        mut writer: MessageWriter<SendStream>,
    ) {
        let (answer, staging) = match self.accept(&offer, resume).await {
            Ok((answer, staging)) => (answer, Some(staging)),
            Err(answer) => (answer, None),
        };
        let short: String = offer.sha256.chars().take(12).collect();
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
        let staging = match receive(staging, &mut reader).await {
            Received::Whole(staging) => staging,
            Received::Cut(staging) => {
                // The coordinator went away mid-transfer: nothing was replaced, and what came
                // is kept for a resumed offer.
                let kept = staging.written();
                tracing::info!("the update's transfer was cut after {kept} bytes; kept them");
                let cut = Cut { sha256: offer.sha256.clone(), staging };
                *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = Some(cut);
                return self.done();
            }
        };
        let outcome = self.install(&offer, staging).await;
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

    /// Accepts the offer (with a staging file ready for its bytes, holding those a cut
    /// transfer of the same binary kept when `resume`), or says why not.
    async fn accept(
        &self,
        offer: &UpdateOffer,
        resume: bool,
    ) -> Result<(UpdateAnswer, Staging), UpdateAnswer> {
        let refused = |reason: String| UpdateAnswer::Refused { reason };
        let ours = &self.info.hello;
        let running = Running {
            sha256: &ours.binary_sha256,
            arch: &ours.arch,
            version: crate::update::version::current(),
        };
        decide(offer, &running)?;
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
        // Whatever was kept is used now or never.
        let cut = self.cut.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Cut { staging, .. }) = cut.filter(|c| resume && c.resumes(offer)) {
            let offset = staging.written();
            tracing::info!("resuming the update's transfer after the {offset} bytes kept");
            return Ok((UpdateAnswer::AcceptFrom { offset }, staging));
        }
        let staging = Staging::create_async(invocation.exe.clone(), offer.size).await;
        let staging = staging.map_err(|e| {
            self.done();
            refused(format!("{e:#}"))
        })?;
        Ok((UpdateAnswer::Accept, staging))
    }

    /// Checks, tries and installs the received binary (see [`install::install`]).
    async fn install(&self, offer: &UpdateOffer, staging: Result<Staging>) -> UpdateOutcome {
        let staged = match staging {
            Ok(staging) => staging.finish_async(offer.sha256.clone()).await,
            Err(e) => Err(e),
        };
        let (staged, Some(invocation)) = (staged, Invocation::get()) else {
            return UpdateOutcome::Failed { reason: "no invocation to replace".into() };
        };
        let staged = match staged {
            Ok(staged) => staged,
            Err(e) => return UpdateOutcome::Failed { reason: format!("{e:#}") },
        };
        let mut trial = invocation.args.clone();
        trial.push(TRIAL_FLAG.into());
        let plan = Plan {
            exe: &invocation.exe,
            state_dir: &self.config.state_dir,
            from_sha256: &self.info.hello.binary_sha256,
            to_sha256: &offer.sha256,
            version: &offer.version,
            trial: Some(trial),
        };
        match install::install(staged, plan).await {
            Ok(()) => UpdateOutcome::Restarting,
            Err(NotInstalled::Failed(reason)) => UpdateOutcome::Failed { reason },
            Err(NotInstalled::RolledBack(reason)) => UpdateOutcome::RolledBack { reason },
        }
    }
}

/// A transfer a lost connection cut: the binary it was for, and the pieces that came whole.
struct Cut {
    sha256: String,
    staging: Staging,
}

impl Cut {
    /// Whether it holds the start of `offer`'s bytes.
    fn resumes(&self, offer: &UpdateOffer) -> bool {
        self.sha256 == offer.sha256 && self.staging.size() == offer.size
    }
}

/// How receiving a binary ended.
enum Received {
    /// The coordinator finished the stream (`Err` if the bytes could not be kept).
    Whole(Result<Staging>),
    /// The stream broke: nobody waits for an outcome. The pieces written so far came whole.
    Cut(Staging),
}

/// Writes the binary's pieces as they come (off the async runtime), until the coordinator
/// finishes the stream or it breaks.
async fn receive(mut staging: Staging, reader: &mut MessageReader<RecvStream>) -> Received {
    let mut incoming = Incoming::<_, ChunkData>::new(reader, staging.written(), staging.size());
    loop {
        match incoming.next().await {
            Ok(Some(piece)) => match staging.write_async(piece).await {
                Ok(written) => staging = written,
                Err(e) => return Received::Whole(Err(e)),
            },
            Ok(None) => break,
            Err(ReceiveError::Cut { .. }) => return Received::Cut(staging),
            // Ended early (the checks on the staged file say so) or more than offered.
            Err(e) => return Received::Whole(Err(e.into())),
        }
    }
    match incoming.end().await {
        Ok(()) => Received::Whole(Ok(staging)),
        Err(ReceiveError::Cut { .. }) => Received::Cut(staging),
        Err(e) => Received::Whole(Err(e.into())),
    }
}
