//! Following a job to its end: a long poll every 200 ms and a progress bar on a terminal.
//! A coordinator that goes away meanwhile (a restart) is waited for: see [`crate::reconnect`].
//!
//! What an interruption means depends on who started the job. `run` started it, so Ctrl-C
//! (and SIGTERM, and SIGHUP from a closed terminal or ssh session) cancels it on the cluster:
//! nobody would be left to read its result. `wait` only watches a job that runs on its own,
//! so there the same signals stop the watching and leave the job running, as `docker logs -f`
//! does.

use anyhow::Result;
use client::reconnect::{Next, Reconnect};
use client::Client;
use indicatif::{ProgressBar, ProgressStyle};
use proto::api::JobView;
use std::io::IsTerminal;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How a followed job ended, as far as this command is concerned.
pub enum Followed {
    Ended(Box<JobView>),
    /// Interrupted, and the job was cancelled on the cluster (by `run`).
    Cancelled {
        id: u64,
        signal: Signalled,
    },
    /// Interrupted, and the job left running (by `wait`).
    Left {
        id: u64,
        signal: Signalled,
    },
}

/// The signal that interrupted a command: its name, and the exit status that reports it
/// (128 + its number, as a shell reports a process killed by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signalled {
    pub name: &'static str,
    pub status: u8,
}

/// What an interruption does to the followed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Cancel it: this command started it (`run`).
    Cancel,
    /// Leave it running: this command only watches it (`wait`).
    StopFollowing,
}

/// Ctrl-C, SIGTERM and SIGHUP, listened for from before the job is submitted: a signal that
/// lands between the submission and the first poll must still reach the job, not kill
/// `marmotctl` silently and leave an orphan.
pub struct Interrupt {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Interrupt {
    pub fn listen() -> Result<Self> {
        Ok(Interrupt {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next of the three.
    pub async fn recv(&mut self) -> Signalled {
        let (name, number) = tokio::select! {
            _ = self.int.recv() => ("Ctrl-C", 2),
            _ = self.term.recv() => ("SIGTERM", 15),
            _ = self.hup.recv() => ("SIGHUP", 1),
        };
        Signalled { name, status: 128 + number }
    }
}

/// Polls job `id` until it ends; shows progress unless `quiet` or stderr is not a terminal.
pub async fn follow(
    client: &Client,
    id: u64,
    quiet: bool,
    mut interrupt: Interrupt,
    on_interrupt: OnInterrupt,
) -> Result<Followed> {
    let hint = match on_interrupt {
        OnInterrupt::Cancel => "Ctrl-C cancels the job",
        OnInterrupt::StopFollowing => "Ctrl-C stops following; the job runs on",
    };
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| job_bar(hint));
    let mut reconnect = Reconnect::default();
    let poll = async {
        loop {
            let asked = client.job(id, 200).await;
            let was_down = reconnect.is_down();
            let view = match reconnect
                .after(asked, |e, wait| lost(bar.as_ref(), id, e, wait, was_down))
                .await?
            {
                Next::Answer(view) => view,
                Next::Again => continue,
            };
            if was_down && bar.is_none() {
                eprintln!("marmotctl: the coordinator is back; following job {id}");
            }
            if let Some(bar) = &bar {
                bar.set_length(view.chunks_total);
                bar.set_position(view.chunks_done);
                bar.set_message(progress_message(&view));
            }
            if view.state.is_finished() {
                return anyhow::Ok(view);
            }
        }
    };
    let result = tokio::select! {
        view = poll => view.map(|v| Followed::Ended(Box::new(v))),
        signal = interrupt.recv() => match on_interrupt {
            OnInterrupt::Cancel => {
                if let Err(e) = client.cancel(id).await {
                    anyhow::bail!(
                        "could not cancel job {id} ({e}); it runs on: `marmotctl cancel {id}` \
                         stops it once the coordinator answers"
                    );
                }
                Ok(Followed::Cancelled { id, signal })
            }
            OnInterrupt::StopFollowing => Ok(Followed::Left { id, signal }),
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

/// Waits for job `id` to end, through coordinator restarts, without a progress bar: for
/// commands whose output was taken first (freefall's points, a command's units).
pub async fn ended(client: &Client, id: u64) -> Result<JobView> {
    let lost = |e: &client::ClientError, wait, said| lost(None, id, e, wait, said);
    Ok(client::follow::ended(client, id, lost).await?)
}

/// Says the coordinator is out of reach: on the bar, or once on stderr.
pub fn lost(
    bar: Option<&ProgressBar>,
    id: u64,
    e: &client::ClientError,
    wait: std::time::Duration,
    already_said: bool,
) {
    match bar {
        Some(bar) => bar.set_message(format!(
            "coordinator unreachable, trying again in {:.1} s",
            wait.as_secs_f64()
        )),
        None if !already_said => eprintln!(
            "marmotctl: lost the coordinator ({e}); following job {id} again when it is back"
        ),
        None => {}
    }
}

/// The progress bar of a followed job: chunks, then [`progress_message`], then `hint`.
fn job_bar(hint: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template = format!("{{bar:30.cyan/blue}} {{pos}}/{{len}} chunks  {{msg}}  ({hint})");
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Rate, elapsed time and ETA of a job, from the job's own progress and times: a `wait` that
/// starts on a job half done shows the job's rate and what is left of it, not a rate counted
/// from the moment `wait` began.
pub fn progress_message(view: &JobView) -> String {
    let elapsed = view.elapsed_seconds.max(0.0);
    let rate = if elapsed > 0.0 { view.units_done as f64 / elapsed } else { 0.0 };
    let left = view.units_total.saturating_sub(view.units_done) as f64;
    let eta = if rate > 0.0 { clock(left / rate) } else { "?".to_string() };
    format!(
        "{}  {} elapsed, ETA {eta}",
        proto::human::rate(rate, view.spec.unit().rate_symbol()),
        clock(elapsed)
    )
}

/// Seconds as `7s`, `3m05s` or `2h03m`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// A progress bar over a job's chunks, with `middle` (an indicatif template piece) between
/// the count and the times.
pub fn chunk_bar(middle: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template = format!(
        "{{bar:30.cyan/blue}} {{pos}}/{{len}} chunks  {middle}  {{elapsed_precise}} (ETA {{eta}})"
    );
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::JobState;
    use proto::job::JobSpec;

    fn view(units_done: u64, units_total: u64, elapsed_seconds: f64) -> JobView {
        JobView {
            id: 1,
            task: "pi".into(),
            spec: JobSpec::Pi { samples: units_total, seed: 0 },
            state: JobState::Running,
            chunks_done: 0,
            chunks_total: 10,
            units_done,
            units_total,
            elapsed_seconds,
            chunks_rerun: 0,
            chunks_verified: 0,
            result: None,
            error: None,
            workers: vec![],
            ended_unix_ms: None,
            summary: None,
            caught_lying: vec![],
        }
    }

    #[test]
    fn eta_comes_from_the_jobs_own_progress() {
        // Half done after 100 s: 100 s to go, however long anyone has been watching.
        assert_eq!(
            progress_message(&view(5_000, 10_000, 100.0)),
            "50.0 samples/s  1m40s elapsed, ETA 1m40s"
        );
        assert_eq!(
            progress_message(&view(9_000_000_000, 10_000_000_000, 3.0)),
            "3.00 G samples/s  3s elapsed, ETA 0s"
        );
        assert_eq!(progress_message(&view(0, 10, 0.0)), "0.00 samples/s  0s elapsed, ETA ?");
    }

    #[test]
    fn clocks() {
        assert_eq!(clock(7.4), "7s");
        assert_eq!(clock(59.0), "59s");
        assert_eq!(clock(60.0), "1m00s");
        assert_eq!(clock(3599.0), "59m59s");
        assert_eq!(clock(3600.0), "1h00m");
        assert_eq!(clock(185.0), "3m05s");
        assert_eq!(clock(7380.0), "2h03m");
        assert_eq!(clock(-1.0), "0s");
    }
}
