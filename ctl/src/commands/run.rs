//! `marmotctl run pi|prime|count` (and `wait`): submit a job, follow it with a progress bar,
//! print its result. `run freefall` streams its points: see [`super::freefall`].

use super::print;
use crate::cli::{CountArgs, Detach, Method, PiArgs, PrimeArgs};
use crate::follow::{follow, Followed, Interrupt, OnInterrupt};
use anyhow::{bail, Context, Result};
use client::{Client, Submit};
use proto::api::JobState;
use proto::job::{CountSource, JobSpec, PrimeMethod};
use std::process::ExitCode;

/// `run pi`.
pub async fn pi(client: &Client, args: PiArgs, how: Submit, json: bool) -> Result<ExitCode> {
    let spec = JobSpec::Pi { samples: args.samples, seed: args.seed };
    run_job(client, spec, args.detach, how, json).await
}

/// `run prime`.
pub async fn prime(client: &Client, args: PrimeArgs, how: Submit, json: bool) -> Result<ExitCode> {
    let method = match args.method {
        Method::Trial => PrimeMethod::Trial,
        Method::Auto => PrimeMethod::Auto,
    };
    run_job(client, JobSpec::Prime { n: args.n, method }, args.detach, how, json).await
}

/// `run count`.
pub async fn count(
    client: &Client,
    mut args: CountArgs,
    how: Submit,
    json: bool,
) -> Result<ExitCode> {
    let options = std::mem::take(&mut args.detach);
    run_job(client, count_spec(args)?, options, how, json).await
}

async fn run_job(
    client: &Client,
    spec: JobSpec,
    options: Detach,
    how: Submit,
    json: bool,
) -> Result<ExitCode> {
    let interrupt = Interrupt::listen()?;
    let job =
        super::submit::submit(client, &spec, Submit { verify: options.verify, ..how }).await?;
    if options.detach {
        print(json, &job, || println!("{}", job.id));
        return Ok(ExitCode::SUCCESS);
    }
    finish(client, job.id, json, interrupt, OnInterrupt::Cancel).await
}

/// `rerun`: a pi, prime or count job submitted again with its spec.
pub async fn rerun(
    client: &Client,
    id: u64,
    options: Detach,
    how: Submit,
    json: bool,
) -> Result<ExitCode> {
    let view = client.job(id, 0).await?;
    match super::jobs::to_run_again(&view.spec) {
        Some(spec) => run_job(client, spec, options, how, json).await,
        None => bail!(
            "rerun takes pi, prime, and count over --random or --file; run job {id} again as \
             `marmotctl run {}`",
            super::jobs::describe_spec(&view.spec)
        ),
    }
}

pub async fn wait(client: &Client, id: u64, json: bool) -> Result<ExitCode> {
    finish(client, id, json, Interrupt::listen()?, OnInterrupt::StopFollowing).await
}

/// `result`: an ended job's result, printed as `run` printed it.
pub async fn result(client: &Client, id: u64, json: bool) -> Result<ExitCode> {
    let view = client.job(id, 0).await?;
    if !view.state.is_finished() {
        bail!("job {id} is still running: `marmotctl wait {id}` follows it to its result");
    }
    report(id, view, json)
}

/// Follows a job and prints how it ended.
async fn finish(
    client: &Client,
    id: u64,
    json: bool,
    interrupt: Interrupt,
    on_interrupt: OnInterrupt,
) -> Result<ExitCode> {
    let view = match follow(client, id, json, interrupt, on_interrupt).await? {
        Followed::Cancelled { id, signal } => {
            eprintln!("marmotctl: cancelled job {id} ({})", signal.name);
            return Ok(ExitCode::from(signal.status));
        }
        Followed::Left { id, signal } => {
            eprintln!(
                "marmotctl: stopped following job {id} ({}); it keeps running: \
                 `marmotctl wait {id}` follows it again, `marmotctl cancel {id}` stops it",
                signal.name
            );
            return Ok(ExitCode::from(signal.status));
        }
        Followed::Ended(view) => *view,
    };
    report(id, view, json)
}

/// Prints an ended job's result; an error for a job that did not finish. A result that
/// holds a liar's work is printed with a warning, and the status says it may be wrong.
fn report(id: u64, view: proto::api::JobView, json: bool) -> Result<ExitCode> {
    match (view.state, &view.result) {
        (JobState::Done, Some(result)) => {
            print(json, result, || print!("{result}"));
            if let Some(warning) = super::jobs::caught_lying(&view) {
                eprintln!("marmotctl: warning: {warning}");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        (JobState::Cancelled, _) => bail!("job {id} was cancelled"),
        _ => bail!("job {id} failed: {}", view.error.as_deref().unwrap_or("no reason given")),
    }
}

/// A `count` job; a file's path is made absolute, since the coordinator reads it.
fn count_spec(args: CountArgs) -> Result<JobSpec> {
    if args.seed.is_some() && args.random.is_none() {
        bail!("--seed goes with --random: --text and --file are counted as they are, with no seed");
    }
    let source = match (args.random, args.file, args.text) {
        (Some(letters), _, _) => CountSource::Random { letters, seed: args.seed.unwrap_or(0) },
        (_, Some(path), _) => {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            CountSource::File { path: path.to_string_lossy().into_owned(), bytes: 0 }
        }
        (_, _, Some(text)) => CountSource::Text { text },
        _ => bail!("count needs --random N, --file PATH or --text TEXT"),
    };
    Ok(JobSpec::Count { letter: args.letter, ignore_case: args.ignore_case, source })
}
