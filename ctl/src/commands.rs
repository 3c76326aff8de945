//! One function per `marmotctl` command: call the control API, print human output or JSON.

use crate::cli::{Cli, Command, CountArgs, Detach, Method, RunTask};
use crate::client::Client;
use crate::follow::{follow, Followed, Interrupt, OnInterrupt};
use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use proto::api::{
    BenchRequest, BenchResult, ClearRequest, CountResult, ExitReply, ExitRequest, JobState,
    JobView, JoinToken, PiResult, PingRequest, PingResult, PrimeResult, RevokeReply, RevokeRequest,
    Status, UpdateRequest, WorkerView,
};
use proto::human;
use proto::task::{CountSource, PrimeMethod, TaskSpec};
use serde::Serialize;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub async fn run(client: &Client, command: Command, json: bool) -> Result<ExitCode> {
    match command {
        Command::Status => status(client, json).await,
        Command::Workers => workers(client, json).await,
        Command::Ping { timeout, workers } => ping(client, timeout, workers, json).await,
        Command::Run { task } => {
            let (spec, options) = match task {
                RunTask::Pi(args) => {
                    (TaskSpec::Pi { samples: args.samples, seed: args.seed }, args.detach)
                }
                RunTask::Count(mut args) => {
                    let options = std::mem::take(&mut args.detach);
                    (count_spec(args)?, options)
                }
                RunTask::Prime(args) => {
                    let method = match args.method {
                        Method::Trial => PrimeMethod::Trial,
                        Method::Auto => PrimeMethod::Auto,
                    };
                    (TaskSpec::Prime { n: args.n, method }, args.detach)
                }
                RunTask::Freefall(args) => return crate::freefall::run(client, args, json).await,
            };
            run_job(client, spec, options, json).await
        }
        Command::Clear { worker } => {
            let _: ClearRequest = client.post("/v1/clear", &ClearRequest { worker }).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs => jobs(client, json).await,
        Command::Bench { length } => bench(client, length, json).await,
        Command::Wait { job } => wait(client, job, json).await,
        Command::Cancel { job } => {
            let view: JobView = client.delete(&format!("/v1/jobs/{job}")).await?;
            print(json, &view, || println!("job {} is {}", view.id, view.state));
            Ok(ExitCode::SUCCESS)
        }
        Command::Exit { workers, all } => exit(client, workers, all, json).await,
        Command::Revoke { worker } => {
            let reply: RevokeReply = client.post("/v1/revoke", &RevokeRequest { worker }).await?;
            print(json, &reply, || {
                let was = if reply.disconnected { "disconnected and " } else { "" };
                println!(
                    "revoked {}: {was}refused from now on; its name is free for another machine",
                    reply.worker
                );
            });
            Ok(ExitCode::SUCCESS)
        }
        Command::Update { binaries, parallel, keep_going, allow_downgrade, coordinator } => {
            let request = UpdateRequest {
                binaries: vec![],
                parallel: Some(parallel),
                allow_downgrade,
                coordinator,
                keep_going,
            };
            crate::update::run(client, &binaries, request, json).await
        }
        Command::JoinToken { rotate } => {
            let token: JoinToken = if rotate {
                client.post("/v1/join-token/rotate", &()).await?
            } else {
                client.get("/v1/join-token").await?
            };
            print(json, &token, || println!("{}", token.token));
            Ok(ExitCode::SUCCESS)
        }
        // Documentation: no coordinator needed.
        Command::Docs(docs) => {
            docs.run(Cli::command()).map_err(anyhow::Error::msg)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints `value` as JSON, or runs `human`.
pub fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce()) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("marmotctl: error: cannot print JSON: {e}"),
        }
    } else {
        human();
    }
}

async fn status(client: &Client, json: bool) -> Result<ExitCode> {
    let s: Status = client.get("/v1/status").await?;
    print(json, &s, || {
        println!(
            "coordinator  marmotd {} on {}, up {:.0} s",
            s.version, s.listen, s.uptime_seconds
        );
        println!("workers      {}", s.workers);
        println!("slots        {} busy of {}", s.slots_busy, s.slots);
        println!("queued       {}", human::count(s.chunks_queued, "chunk", "chunks"));
        println!("jobs         {} running", s.jobs_running);
    });
    Ok(ExitCode::SUCCESS)
}

async fn workers(client: &Client, json: bool) -> Result<ExitCode> {
    let list: Vec<WorkerView> = client.get("/v1/workers").await?;
    print(json, &list, || {
        if list.is_empty() {
            println!("no workers connected (add one with `marmotd worker --coordinator HOST --token TOKEN`)");
            return;
        }
        println!(
            "{:<16} {:<22} {:>5} {:>4} {:>7} {:<21} {:<12} {:>8} {:>9} {:>10}",
            "NAME",
            "ADDRESS",
            "SLOTS",
            "BUSY",
            "SCORE",
            "VERSION",
            "SHA256",
            "RTT",
            "SEEN",
            "CONNECTED"
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for w in &list {
            let score = w.score.map_or("-".to_string(), |s| format!("{s:.2}"));
            println!(
                "{:<16} {:<22} {:>5} {:>4} {:>7} {:<21} {:<12} {:>6.2}ms {:>7}ms {:>9}s",
                w.name,
                w.address,
                w.slots,
                w.slots_busy,
                score,
                w.version,
                w.binary_sha256.get(..12).unwrap_or(&w.binary_sha256),
                w.rtt_ms,
                w.last_seen_ms,
                now.saturating_sub(w.connected_since),
            );
        }
    });
    Ok(ExitCode::SUCCESS)
}

async fn ping(
    client: &Client,
    timeout: Duration,
    workers: Vec<String>,
    json: bool,
) -> Result<ExitCode> {
    let request = PingRequest { timeout_ms: timeout.as_millis().max(1) as u64, workers };
    let results: Vec<PingResult> = client.post("/v1/ping", &request).await?;
    print(json, &results, || {
        if results.is_empty() {
            println!("no workers connected");
        }
        for r in &results {
            match (r.rtt_ms, &r.error) {
                (Some(ms), _) => println!("{:<16} {ms:.3} ms", r.worker),
                (None, Some(e)) => println!("{:<16} {e}", r.worker),
                (None, None) => println!("{:<16} no answer", r.worker),
            }
        }
    });
    let all_answered = results.iter().all(|r| r.rtt_ms.is_some());
    Ok(if all_answered { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn run_job(client: &Client, spec: TaskSpec, options: Detach, json: bool) -> Result<ExitCode> {
    let interrupt = Interrupt::listen()?;
    let path = match options.verify {
        Some(share) => format!("/v1/jobs?verify={share}"),
        None => "/v1/jobs".to_string(),
    };
    let job: JobView = client.post(&path, &spec).await?;
    if options.detach {
        print(json, &job, || println!("{}", job.id));
        return Ok(ExitCode::SUCCESS);
    }
    finish(client, job.id, json, interrupt, OnInterrupt::Cancel).await
}

async fn wait(client: &Client, id: u64, json: bool) -> Result<ExitCode> {
    finish(client, id, json, Interrupt::listen()?, OnInterrupt::StopFollowing).await
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
    match (view.state, &view.result) {
        (JobState::Done, Some(result)) => {
            print(json, result, || print_result(&view.task, result));
            Ok(ExitCode::SUCCESS)
        }
        (JobState::Cancelled, _) => bail!("job {id} was cancelled"),
        _ => bail!("job {id} failed: {}", view.error.as_deref().unwrap_or("no reason given")),
    }
}

fn print_result(task: &str, result: &serde_json::Value) {
    let parsed = match task {
        "pi" => serde_json::from_value::<PiResult>(result.clone()).map(|r| r.to_string()),
        "prime" => serde_json::from_value::<PrimeResult>(result.clone()).map(|r| r.to_string()),
        "count" => serde_json::from_value::<CountResult>(result.clone()).map(|r| r.to_string()),
        _ => Ok(serde_json::to_string_pretty(result).unwrap_or_default()),
    };
    match parsed {
        Ok(text) => print!("{text}"),
        Err(_) => println!("{result}"),
    }
}

async fn jobs(client: &Client, json: bool) -> Result<ExitCode> {
    let list: Vec<JobView> = client.get("/v1/jobs").await?;
    print(json, &list, || {
        if list.is_empty() {
            println!("no jobs yet");
            return;
        }
        println!("{:>5}  {:<10} {:>17} {:>10}  JOB", "ID", "STATE", "PROGRESS", "ELAPSED");
        for j in &list {
            println!(
                "{:>5}  {:<10} {:>8}/{:<8} {:>9.2}s  {}",
                j.id,
                j.state,
                j.chunks_done,
                j.chunks_total,
                j.elapsed_seconds,
                describe_spec(&j.spec)
            );
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// What a job was asked to do, in the words of the `marmotctl run` that submits it.
pub fn describe_spec(spec: &TaskSpec) -> String {
    let method = |m: &PrimeMethod| match m {
        PrimeMethod::Trial => "trial",
        PrimeMethod::Auto => "auto",
    };
    let fall =
        |f: &proto::task::Fall| format!("--y0 {} --v0 {} --g {} --dt {}", f.y0, f.v0, f.g, f.dt);
    match spec {
        TaskSpec::Pi { samples, seed } => format!("pi {samples} --seed {seed}"),
        TaskSpec::Prime { n, method: m } => format!("prime {n} --method {}", method(m)),
        TaskSpec::Count { letter, ignore_case, source } => {
            let case = if *ignore_case { " --ignore-case" } else { "" };
            let source = match source {
                CountSource::Random { letters, seed } => {
                    format!("--random {letters} --seed {seed}")
                }
                CountSource::Text { text } => {
                    let characters = text.chars().count() as u64;
                    format!("--text ({})", human::count(characters, "character", "characters"))
                }
                CountSource::Inline { characters, .. } => {
                    format!("--text ({})", human::count(*characters, "character", "characters"))
                }
                CountSource::File { path, bytes } => {
                    format!(
                        "--file {} ({})",
                        path.escape_debug(),
                        human::amount(*bytes as f64, "B")
                    )
                }
                CountSource::Streamed => "(streamed)".into(),
            };
            format!("count '{}' {source}{case}", letter.escape_debug())
        }
        TaskSpec::Freefall { fall: f, .. } if f.drag > 0.0 => {
            format!("freefall {} --drag {}", fall(f), f.drag)
        }
        TaskSpec::Freefall { fall: f, .. } => format!("freefall {}", fall(f)),
        TaskSpec::Sweep { fall: f, from, to, steps } => {
            format!("freefall {} --sweep-drag {from}:{to}:{steps}", fall(f))
        }
        TaskSpec::FreefallFrom { .. } | TaskSpec::Survey { .. } => "freefall (inner step)".into(),
    }
}

/// How long `exit` waits for the told workers to disconnect.
const EXIT_WAIT: Duration = Duration::from_secs(10);

async fn exit(client: &Client, workers: Vec<String>, all: bool, json: bool) -> Result<ExitCode> {
    let reply: ExitReply = client.post("/v1/exit", &ExitRequest { workers, all }).await?;
    let deadline = tokio::time::Instant::now() + EXIT_WAIT;
    let still = loop {
        let connected: Vec<WorkerView> = client.get("/v1/workers").await?;
        let still: Vec<String> = reply
            .told
            .iter()
            .filter(|n| connected.iter().any(|w| &w.name == *n))
            .cloned()
            .collect();
        if still.is_empty() || tokio::time::Instant::now() >= deadline {
            break still;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let left: Vec<&String> = reply.told.iter().filter(|n| !still.contains(n)).collect();
    let doc = serde_json::json!({ "left": left, "still_connected": still });
    print(json, &doc, || {
        for name in &left {
            println!("{name} left");
        }
        for name in &still {
            println!("{name} was told to exit but is still connected");
        }
    });
    Ok(if still.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A `count` job; a file's path is made absolute, since the coordinator reads it.
fn count_spec(args: CountArgs) -> Result<TaskSpec> {
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
    Ok(TaskSpec::Count { letter: args.letter, ignore_case: args.ignore_case, source })
}

async fn bench(client: &Client, length: Duration, json: bool) -> Result<ExitCode> {
    let millis = u32::try_from(length.as_millis()).unwrap_or(u32::MAX);
    let results: Vec<BenchResult> = client.post("/v1/bench", &BenchRequest { millis }).await?;
    print(json, &results, || {
        if results.is_empty() {
            println!("no workers connected");
        }
        for r in &results {
            match (r.score, &r.error) {
                (Some(score), _) => {
                    let slots: Vec<String> =
                        r.slot_scores.iter().map(|s| format!("{s:.2}")).collect();
                    println!(
                        "{:<16} {score:.2} G samples/s ({}: {})",
                        r.worker,
                        human::count(slots.len() as u64, "slot", "slots"),
                        slots.join(" ")
                    );
                }
                (None, e) => println!("{:<16} failed: {}", r.worker, e.as_deref().unwrap_or("?")),
            }
        }
    });
    let all_scored = results.iter().all(|r| r.score.is_some());
    Ok(if all_scored { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::describe_spec;
    use proto::task::{CountSource, Fall, PrimeMethod, TaskSpec};

    #[test]
    fn jobs_are_described_as_run_would_ask_for_them() {
        let fall = Fall { y0: 100.0, v0: 10.0, g: 9.81, dt: 0.5, drag: 0.0 };
        let count = |source| TaskSpec::Count { letter: "e".into(), ignore_case: true, source };
        for (spec, words) in [
            (TaskSpec::Pi { samples: 1000, seed: 7 }, "pi 1000 --seed 7"),
            (TaskSpec::Prime { n: 97, method: PrimeMethod::Auto }, "prime 97 --method auto"),
            (TaskSpec::Prime { n: 9, method: PrimeMethod::Trial }, "prime 9 --method trial"),
            (
                count(CountSource::Random { letters: 50, seed: 2 }),
                "count 'e' --random 50 --seed 2 --ignore-case",
            ),
            (
                count(CountSource::Text { text: "a\nb".into() }),
                "count 'e' --text (3 characters) --ignore-case",
            ),
            (
                count(CountSource::File { path: "/srv/x\ty".into(), bytes: 2_500_000 }),
                "count 'e' --file /srv/x\\ty (2.50 MB) --ignore-case",
            ),
            (TaskSpec::Freefall { fall, points: 0 }, "freefall --y0 100 --v0 10 --g 9.81 --dt 0.5"),
            (
                TaskSpec::Freefall { fall: Fall { drag: 0.01, ..fall }, points: 0 },
                "freefall --y0 100 --v0 10 --g 9.81 --dt 0.5 --drag 0.01",
            ),
            (
                TaskSpec::Sweep { fall, from: 0.0, to: 0.5, steps: 3 },
                "freefall --y0 100 --v0 10 --g 9.81 --dt 0.5 --sweep-drag 0:0.5:3",
            ),
            (TaskSpec::Survey { fall, spacing: 4 }, "freefall (inner step)"),
        ] {
            assert_eq!(describe_spec(&spec), words);
        }
        let control = TaskSpec::Count {
            letter: "\u{7}".into(),
            ignore_case: false,
            source: CountSource::Text { text: "x".into() },
        };
        assert_eq!(describe_spec(&control), "count '\\u{7}' --text (1 character)");
    }
}
