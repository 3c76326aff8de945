//! `marmotd`'s command line, parsed by clap and turned into the plain configs the coordinator,
//! worker and local cluster take (the logic never sees raw flags).

use crate::coordinator::CoordinatorConfig;
use crate::worker::{identity, WorkerConfig};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "marmotd", version = crate::update::version::current(), about = "A compute cluster for the machines you own", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the coordinator: accept workers, schedule jobs, serve the control socket.
    Coordinator(CoordinatorArgs),
    /// Run a worker: join the coordinator once with a token, then stay connected.
    Worker(WorkerArgs),
    /// Run a coordinator and N workers in this process on 127.0.0.1, until Ctrl-C.
    Local(LocalArgs),
    /// Start a local cluster, run ping and every task once, print the results and exit.
    Demo(LocalArgs),
}

#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// UDP address workers connect to.
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], proto::DEFAULT_PORT)))]
    pub listen: SocketAddr,
    /// Another DNS name or IP for the coordinator's certificate (repeatable), e.g. its LAN IP.
    #[arg(long = "san", value_name = "NAME|IP")]
    pub sans: Vec<String>,
    /// Where the cluster CA, keys and join secret live.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The control socket `marmotctl` talks to.
    #[arg(long, env = proto::paths::SOCKET_ENV)]
    pub socket: Option<PathBuf>,
    /// Make the control socket 0660 and owned by this group (default: 0600, owner only).
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// A worker silent this long is considered dead and its chunks run elsewhere.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub dead_after: Duration,
    /// A chunk running this many times its job's median chunk time gets a backup copy.
    #[arg(long, default_value_t = 3.0, value_parser = parse_factor)]
    pub straggler_factor: f64,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The coordinator, as HOST or HOST:PORT (default port 7070).
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: String,
    /// The join token from `marmotctl join-token` (needed once; may stay in the unit file).
    #[arg(long, env = "MARMOT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The name this worker is listed under (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// How many chunks run at once (default: the available cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub slots: Option<u32>,
    /// Where the worker's key and certificate live.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The coordinator silent this long is considered gone, and the worker reconnects.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub dead_after: Duration,
    /// Internal: the trial start of a newly received binary (connect, shake hands, exit).
    #[arg(long = "update-trial", hide = true)]
    pub update_trial: bool,
}

#[derive(Args, Debug)]
pub struct LocalArgs {
    /// How many workers to start.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Slots per worker (default: the machine's cores shared between the workers).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub slots: Option<u32>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write durations like 5s, 500ms or 1m"))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err("must be between 100ms and 1h".into());
    }
    Ok(d)
}

fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 1.0 => Ok(f),
        _ => Err("must be a number greater than 1, like 3".into()),
    }
}

impl CoordinatorArgs {
    pub fn into_config(self) -> CoordinatorConfig {
        CoordinatorConfig {
            listen: self.listen,
            state_dir: self.state_dir.unwrap_or_else(proto::paths::default_state_dir),
            socket: self.socket.unwrap_or_else(proto::paths::default_socket),
            socket_group: self.socket_group,
            sans: self.sans,
            dead_after: self.dead_after,
            straggler_factor: self.straggler_factor,
        }
    }
}

impl WorkerArgs {
    pub fn into_config(self) -> WorkerConfig {
        let coordinator =
            if self.coordinator.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                && !self.coordinator.ends_with(']')
            {
                self.coordinator
            } else {
                format!("{}:{}", self.coordinator, proto::DEFAULT_PORT)
            };
        WorkerConfig {
            coordinator,
            token: self.token,
            name: self.name.unwrap_or_else(identity::hostname),
            slots: self.slots.unwrap_or_else(identity::default_slots),
            state_dir: self.state_dir.unwrap_or_else(proto::paths::default_state_dir),
            dead_after: self.dead_after,
            updatable: true,
        }
    }
}
