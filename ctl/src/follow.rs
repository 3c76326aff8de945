//! Following a job to its end: a long poll every 200 ms, a progress bar on a terminal, and
//! Ctrl-C cancelling the job on the cluster rather than abandoning it.

use crate::client::Client;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use proto::api::JobView;
use std::io::IsTerminal;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How a followed job ended, as far as this command is concerned.
pub enum Followed {
    Ended(Box<JobView>),
    /// The user pressed Ctrl-C and the job was cancelled.
    Interrupted(u64),
}

/// Ctrl-C, listened for from before the job is submitted: a Ctrl-C that lands between the
/// submission and the first poll must still cancel the job, not kill `marmotctl` silently.
pub fn interrupt() -> Result<Signal> {
    Ok(signal(SignalKind::interrupt())?)
}

/// Polls job `id` until it ends; shows progress unless `quiet` or stderr is not a terminal.
pub async fn follow(
    client: &Client,
    id: u64,
    quiet: bool,
    mut interrupt: Signal,
) -> Result<Followed> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| chunk_bar("{msg}"));
    let poll = async {
        loop {
            let view: JobView = client.get(&format!("/v1/jobs/{id}?wait_ms=200")).await?;
            if let Some(bar) = &bar {
                bar.set_length(view.chunks_total);
                bar.set_position(view.chunks_done);
                let rate = view.units_done as f64 / view.elapsed_seconds.max(1e-9);
                bar.set_message(format!("{} {}/s", human_count(rate), unit_name(&view.task)));
            }
            if view.state.is_finished() {
                return anyhow::Ok(view);
            }
        }
    };
    let result = tokio::select! {
        view = poll => view.map(|v| Followed::Ended(Box::new(v))),
        _ = interrupt.recv() => {
            let _: Result<JobView> = client.delete(&format!("/v1/jobs/{id}")).await;
            Ok(Followed::Interrupted(id))
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
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

fn unit_name(task: &str) -> &'static str {
    match task {
        "pi" => "samples",
        "prime" => "divisors",
        "count" => "B",
        _ => "units",
    }
}

/// 1234567 → "1.23 M".
pub fn human_count(x: f64) -> String {
    let (value, suffix) = match x {
        x if x >= 1e12 => (x / 1e12, " T"),
        x if x >= 1e9 => (x / 1e9, " G"),
        x if x >= 1e6 => (x / 1e6, " M"),
        x if x >= 1e3 => (x / 1e3, " k"),
        x => (x, ""),
    };
    format!("{value:.2}{suffix}")
}
