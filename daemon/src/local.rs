//! A whole cluster in one process: a coordinator and N workers on 127.0.0.1, with real QUIC,
//! fresh state in a temp dir, and the join flow included. `marmotd local` keeps it running for
//! `marmotctl`; `marmotd demo` runs ping and every task once and exits, through the control
//! API's client over the cluster's socket: what `marmotctl` does.

use crate::cli::LocalArgs;
use crate::coordinator::{self, Cluster, CoordinatorConfig};
use crate::transport::DEFAULT_DEAD_AFTER;
use crate::worker::{self, identity, WorkerConfig};
use anyhow::{bail, Result};
use client::follow;
use client::{Client, Submit};
use proto::api::{JobState, PingRequest};
use proto::command::spool::Event;
use proto::command::{CmdSpec, Template, UnitReport};
use proto::job::{CountSource, Fall, JobSpec, PrimeMethod};
use proto::result::JobResult;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running local cluster; dropping it does not stop it, cancelling its token does.
pub struct LocalCluster {
    pub cluster: Cluster,
    pub socket: std::path::PathBuf,
    coordinator: coordinator::Running,
    /// The in-process workers' tasks.
    workers: TaskTracker,
    _dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts the coordinator, joins `args.workers` workers, and waits until all are listed.
    pub async fn start(args: &LocalArgs, shutdown: &CancellationToken) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("marmot-local-").tempdir()?;
        let config = CoordinatorConfig {
            temporary: true,
            listen: "127.0.0.1:0".parse()?,
            state_dir: dir.path().join("coordinator"),
            socket: dir.path().join("marmotd.sock"),
            socket_group: None,
            sans: vec![],
            dead_after: DEFAULT_DEAD_AFTER,
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
        let coordinator = coordinator::start(config, shutdown.clone()).await?;
        let token = coordinator.cluster.facts().authority.join_token()?.to_string();
        let slots = args.slots.unwrap_or_else(|| (identity::default_slots() / args.workers).max(1));
        let workers = TaskTracker::new();
        for i in 1..=args.workers {
            let config = WorkerConfig {
                coordinator: coordinator.local_addr.to_string(),
                token: Some(token.clone()),
                name: format!("local-{i}"),
                slots,
                state_dir: dir.path().join(format!("worker-{i}")),
                dead_after: DEFAULT_DEAD_AFTER,
                lease: crate::worker::DEFAULT_LEASE,
                updatable: false,
                exec: true,
                file_cache: crate::exec::cache::DEFAULT_LIMIT,
                send_logs: false,
                policy: None,
            };
            let shutdown = shutdown.clone();
            workers.spawn(async move {
                if let Err(e) = worker::run(config, shutdown).await {
                    tracing::error!("local worker stopped: {e:#}");
                }
            });
        }
        let local = LocalCluster {
            cluster: coordinator.cluster.clone(),
            socket: coordinator.socket.clone(),
            coordinator,
            workers,
            _dir: dir,
        };
        local.wait_for_workers(args.workers as usize).await?;
        Ok(local)
    }

    async fn wait_for_workers(&self, n: usize) -> Result<()> {
        let mut changes = self.cluster.call(|s, _| s.jobs.subscribe_changes()).await?;
        let connected = async {
            while self.cluster.call(|s, _| s.registry.len()).await? < n {
                changes.changed().await?;
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(30), connected).await {
            Ok(done) => done,
            Err(_) => bail!("the local workers did not connect within 30 s"),
        }
    }

    /// Waits for everything to stop (after the shutdown token was cancelled).
    pub async fn stopped(self) {
        self.workers.close();
        self.workers.wait().await;
        self.coordinator.stopped().await;
    }
}

/// `marmotd local`: runs until Ctrl-C.
pub async fn run_local(args: LocalArgs, shutdown: CancellationToken) -> Result<()> {
    let local = LocalCluster::start(&args, &shutdown).await?;
    let status = local.cluster.status().await?;
    println!(
        "marmot local cluster: coordinator on {}, {} workers, {} slots",
        status.listen, status.workers, status.slots
    );
    println!("control socket: {}", local.socket.display());
    println!("  export MARMOT_SOCKET={}", local.socket.display());
    println!("  marmotctl workers; marmotctl run pi 1e10");
    println!("Ctrl-C stops the cluster.");
    shutdown.cancelled().await;
    local.stopped().await;
    Ok(())
}

/// `marmotd demo`: ping, then each task once, then exit.
pub async fn run_demo(args: LocalArgs, shutdown: CancellationToken) -> Result<()> {
    let started = Instant::now();
    let local = LocalCluster::start(&args, &shutdown).await?;
    let client = Client::new(local.socket.clone());
    let status = client.status().await?;
    println!(
        "started a local cluster in {:.2} s: coordinator on {}, {} workers, {} slots\n",
        started.elapsed().as_secs_f64(),
        status.listen,
        status.workers,
        status.slots
    );

    println!("$ marmotctl ping");
    for result in client.ping(&PingRequest { timeout_ms: 2000, workers: vec![] }).await? {
        match result.rtt_ms {
            Some(ms) => println!("  {:<12} {ms:.3} ms", result.worker),
            None => println!("  {:<12} {}", result.worker, result.error.unwrap_or_default()),
        }
    }

    println!("\n$ marmotctl bench");
    for result in client.bench(500).await? {
        let score = result.score.map_or("failed".into(), |s| format!("{s:.2} G samples/s"));
        println!("  {:<12} {score}", result.worker);
    }

    println!("\n$ marmotctl run pi 1e9");
    print!("{}", run_job(&client, JobSpec::Pi { samples: 1_000_000_000, seed: 0 }).await?);

    // The lab notebook's favourite: prime, so trial division scans all ~10^9 candidates.
    let notebook = 943_349_775_459_380_173;
    for method in [PrimeMethod::Trial, PrimeMethod::Auto] {
        println!("\n$ marmotctl run prime {notebook} --method {}", method.name());
        print!("{}", run_job(&client, JobSpec::Prime { n: notebook, method }).await?);
    }
    println!("\n$ marmotctl run count e --random 1e9");
    let source = CountSource::Random { letters: 1_000_000_000, seed: 0 };
    let spec = JobSpec::Count { letter: "e".into(), ignore_case: false, source };
    print!("{}", run_job(&client, spec).await?);

    println!("\n$ marmotctl run count e --text 1eMyWordToCountE --ignore-case");
    let source = CountSource::Text { text: "1eMyWordToCountE".into() };
    let spec = JobSpec::Count { letter: "e".into(), ignore_case: true, source };
    print!("{}", run_job(&client, spec).await?);

    let semiprime = 999_999_937 * 999_999_929;
    println!("\n$ marmotctl run prime {semiprime} --method auto");
    let spec = JobSpec::Prime { n: semiprime, method: PrimeMethod::Auto };
    print!("{}", run_job(&client, spec).await?);

    println!("\n$ marmotctl run freefall   # --out FILE --plot FILE.png write and draw the points");
    let spec = JobSpec::Freefall { fall: Fall::default(), points: 0 };
    let job = client.submit(&spec, &Submit::default()).await?;
    let points = drain_series(&client, job.id).await?;
    let result = job_result(&client, job.id).await?;
    let JobResult::Freefall(fall) = &result else { bail!("freefall gave another task's result") };
    if points != fall.points {
        bail!("freefall streamed {points} of its {} points", fall.points);
    }
    print!("{result}");

    println!(
        "\n$ marmotctl run cmd -k -- sh -c 'printf %s \"$MARMOT_INPUT\" | sha256sum' ::: alpha beta \
         gamma delta"
    );
    let script = "printf %s \"$MARMOT_INPUT\" | sha256sum";
    let command = Template::new(["sh", "-c", script].map(String::from).to_vec())?;
    let inputs = ["alpha", "beta", "gamma", "delta"].map(String::from).to_vec();
    let spec = CmdSpec { keep_order: true, ..CmdSpec::new(command, inputs) };
    let job = client.submit(&JobSpec::Cmd(Box::new(spec)), &Submit::default()).await?;
    for (report, stdout) in drain_output(&client, job.id).await? {
        print!("  unit {} on {}: {}", report.unit + 1, report.worker, stdout);
    }
    print!("{}", job_result(&client, job.id).await?);

    shutdown.cancel();
    local.stopped().await;
    Ok(())
}

/// Takes every delivery of a command job's output, as `marmotctl` does: each unit's report and
/// stdout (a demo's units print a line each).
async fn drain_output(client: &Client, id: u64) -> Result<Vec<(UnitReport, String)>> {
    let mut units: Vec<(UnitReport, String)> = vec![];
    let mut event = |event: Event<'_>| {
        match event {
            Event::Unit(report) => units.push((report, String::new())),
            Event::Stdout(text) => {
                if let Some((_, out)) = units.last_mut() {
                    out.push_str(&String::from_utf8_lossy(text));
                }
            }
            _ => {}
        }
        Ok(())
    };
    follow::take_output(client, id, &mut event, follow::quietly).await?;
    Ok(units)
}

/// Takes every chunk of a series job in order, as `marmotctl` does, and counts the values.
async fn drain_series(client: &Client, id: u64) -> Result<u64> {
    let mut series = follow::SeriesChunks::new(client, id, follow::quietly);
    let mut values = 0;
    while let Some((_, taken)) = series.next().await? {
        values += taken.values.len() as u64;
    }
    Ok(values)
}

/// Submits a job and waits for its result.
async fn run_job(client: &Client, spec: JobSpec) -> Result<JobResult> {
    let job = client.submit(&spec, &Submit::default()).await?;
    job_result(client, job.id).await
}

/// Waits for a submitted job's result.
async fn job_result(client: &Client, id: u64) -> Result<JobResult> {
    let view = follow::ended(client, id, follow::quietly).await?;
    match (view.state, view.result) {
        (JobState::Done, Some(result)) => Ok(result),
        (state, _) => bail!("job {id} ended {state}: {}", view.error.unwrap_or_default()),
    }
}
