//! `marmotd`'s command line, parsed by clap and turned into the plain configs the coordinator,
//! worker and local cluster take (the logic never sees raw flags).

use crate::coordinator::CoordinatorConfig;
use crate::state_dir::{self, Role};
use crate::worker::{identity, WorkerConfig};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "marmotd",
    version = crate::update::version::current(),
    about = "A compute cluster for the machines you own",
    long_about = None,
    arg_required_else_help = true
)]
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
    /// Install marmot as a systemd service on this machine (as root), or change its settings.
    ///
    /// Creates the user marmot, copies this binary into the role's state dir, writes the unit
    /// and /etc/marmot/ROLE.env, enables and starts the service and waits for it to be ready.
    /// Running it again applies new settings and keeps the state.
    #[command(arg_required_else_help = true)]
    Install(InstallArgs),
    /// Stop and remove an installed role (both, if none is named); its state is kept unless
    /// --purge.
    Uninstall(UninstallArgs),
    #[command(flatten)]
    Docs(client::docs::DocsCommand),
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Print every step instead of doing it.
    #[arg(long, global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub role: InstallRole,
}

#[derive(Subcommand, Debug)]
pub enum InstallRole {
    /// This machine coordinates: prints the command that adds a worker.
    Coordinator {
        /// Another DNS name or IP for the coordinator's certificate (repeatable); workers need
        /// none.
        #[arg(long = "san", value_name = "NAME|IP")]
        sans: Vec<String>,
    },
    /// This machine works for the coordinator at HOST[:PORT].
    Worker {
        /// The coordinator, as HOST or HOST:PORT (default port 7070).
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_coordinator)]
        coordinator: String,
        /// The join token from `marmotctl join-token` (kept from the last install if not
        /// given; not needed once the worker has joined). `-` reads it from stdin, out of
        /// sight of `ps`, where arguments are shown to every user of the machine.
        #[arg(long, env = "MARMOT_TOKEN", hide_env_values = true, value_parser = parse_token)]
        token: Option<String>,
        /// The name this worker is listed under: letters, digits, '-', '_', '.' [default:
        /// the host name]
        #[arg(long, value_parser = parse_name)]
        name: Option<String>,
        /// How many chunks run at once [default: the available cores]
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
        slots: Option<u32>,
    },
    /// For the Debian package's postinst: put this binary in place for each role unless that
    /// role runs a newer one, restarting running services onto it.
    #[command(hide = true)]
    Refresh,
}

#[derive(Args, Debug)]
pub struct UninstallArgs {
    /// The role to remove [default: every role installed]
    #[arg(value_parser = ["coordinator", "worker"])]
    pub role: Option<String>,
    /// Remove the state too: the cluster CA and keys (a coordinator), the membership (a
    /// worker), and the user marmot when nothing is left.
    #[arg(long)]
    pub purge: bool,
    /// Print every step instead of doing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// A worker name, as the coordinator will check it.
fn parse_name(s: &str) -> Result<String, String> {
    proto::names::check_worker_name(s).map(|()| s.to_string())
}

/// A join token, checked for its form (the coordinator checks the rest); `-` is the first
/// line of stdin.
fn parse_token(s: &str) -> Result<String, String> {
    let token = token_or_stdin(s)?;
    token.parse::<certs::JoinToken>().map(|t| t.to_string()).map_err(|e| e.to_string())
}

/// The token as given, or for `-` the first line of stdin (a worker checks its form itself,
/// and exits 78 on a malformed one: not for systemd to retry).
fn token_or_stdin(s: &str) -> Result<String, String> {
    if s != "-" {
        return Ok(s.to_string());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
    Ok(line.trim().to_string())
}

#[derive(Args, Debug)]
pub struct CoordinatorArgs {
    /// UDP address workers connect to.
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], proto::DEFAULT_PORT)))]
    pub listen: SocketAddr,
    /// Optional: another DNS name or IP to put in the coordinator's certificate (repeatable).
    /// Workers need none: they check the name `coordinator.marmot`, not the address they
    /// dial, so a new DHCP lease breaks nothing. For other tools that check the address.
    #[arg(long = "san", value_name = "NAME|IP")]
    pub sans: Vec<String>,
    /// Where the cluster CA, keys and join secret live [default: /var/lib/marmot/coordinator
    /// as root, else $XDG_DATA_HOME/marmot/coordinator]
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The control socket `marmotctl` talks to [default: /run/marmot/marmotd.sock as root,
    /// else $XDG_RUNTIME_DIR/marmot/marmotd.sock]
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
    /// How long a worker certificate is valid; connected workers get a new one when less
    /// than a third of this is left.
    #[arg(long, default_value = "365days", value_parser = parse_cert_life)]
    pub worker_cert_life: Duration,
    /// The share of each job's chunks also run on a second worker and compared bit for bit
    /// (0 to 1; a job may ask for another with `marmotctl run --verify`).
    #[arg(long, default_value_t = crate::coordinator::DEFAULT_VERIFY, value_parser = proto::human::parse_share)]
    pub verify: f64,
    /// Jobs waiting or running at once, at most; more are refused until some end.
    #[arg(long, default_value_t = crate::coordinator::DEFAULT_MAX_RUNNING_JOBS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_jobs: u32,
    /// How long an ended job's result is kept in the journal; one never read is kept at least
    /// this long, however many others come after it.
    #[arg(long, default_value = "7days", value_parser = parse_keep_for)]
    pub keep_results: Duration,
    /// How many of the newest ended jobs are kept unread past --keep-results; read ones go
    /// when past either bound.
    #[arg(long, default_value_t = 10_000)]
    pub keep_results_count: u64,
    /// Move the journal (STATE_DIR/journal.sqlite) aside, keeping it as
    /// journal.sqlite.reset-TIME, and start an empty one: for a journal the coordinator
    /// refuses. Jobs it held are not resumed.
    #[arg(long)]
    pub journal_reset: bool,
    /// How much the store of files uploaded for commands (`marmotctl run cmd --file`) may
    /// hold before the least recently used are removed, e.g. 4GiB.
    #[arg(long, default_value = "8GiB", value_parser = parse_size)]
    pub file_store: u64,
    /// How many files that store may hold. Files that queued and running jobs need are kept
    /// whatever the bounds; a job whose files cannot be kept is refused.
    #[arg(long, default_value_t = crate::exec::cache::DEFAULT_FILES, value_name = "N")]
    pub files_max: usize,
    /// How much output of command jobs may wait on this machine's disk for the clients that
    /// take it, all jobs together, e.g. 4GiB. Past it (or past --spool-per-job), a job's
    /// units wait until its client takes some.
    #[arg(long, default_value = "4GiB", value_parser = parse_size)]
    pub spool: u64,
    /// How much of one job's output may wait, e.g. 1GiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub spool_per_job: u64,
    /// Serve the web dashboard and /metrics over HTTP on ADDR: a port alone (8080) listens
    /// on 127.0.0.1 only, where reading needs no token; any other address (0.0.0.0:8080)
    /// asks for the token `marmotctl dashboard-token` makes. Cancelling a job always needs
    /// it. Off by default (`marmotctl dashboard` works without it).
    #[arg(long, value_name = "ADDR", value_parser = parse_http_addr)]
    pub http: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The coordinator, as HOST or HOST:PORT (default port 7070). A name that does not
    /// resolve yet (DNS not up at boot) is retried, like an unreachable coordinator.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_coordinator)]
    pub coordinator: String,
    /// The join token from `marmotctl join-token`, needed for the first start only. Prefer
    /// the environment variable, or `-` to read it from stdin: arguments are visible to every
    /// user in `ps`.
    #[arg(long, env = "MARMOT_TOKEN", hide_env_values = true, value_parser = token_or_stdin)]
    pub token: Option<String>,
    /// The name this worker is listed under: letters, digits, '-', '_', '.' [default: the
    /// host name]
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,
    /// How many chunks run at once [default: the available cores]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub slots: Option<u32>,
    /// Where the worker's key and certificate live [default: /var/lib/marmot/worker as root,
    /// else $XDG_DATA_HOME/marmot/worker]
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The coordinator silent this long is considered gone, and the worker reconnects.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub dead_after: Duration,
    /// How long a chunk keeps running, and its result is kept, while the coordinator is out
    /// of reach: delivered when the worker reconnects within it, so a coordinator restart or
    /// a short network outage costs no work.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lease: Duration,
    /// Run no users' commands (`marmotctl run cmd`): their units go to other workers.
    #[arg(long)]
    pub no_exec: bool,
    /// How much the cache of command files (`--file`, `--input-files`) may hold before the
    /// least recently used are removed, e.g. 500MiB, 2GiB.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub file_cache: u64,
    /// On battery: pause (take no chunks, suspend running commands), run, or slots=N.
    #[arg(long, default_value = "pause", value_name = "pause|run|slots=N", value_parser = str::parse::<proto::policy::Mode>)]
    pub on_battery: proto::policy::Mode,
    /// On battery below this charge (percent), pause whatever --on-battery says.
    #[arg(long, value_name = "PCT", value_parser = proto::policy::parse_percent)]
    pub battery_below: Option<u8>,
    /// At or above this temperature (°C, the hottest thermal zone) give up a slot every
    /// 10 s; all come back below 10 °C less.
    #[arg(long, default_value_t = proto::policy::DEFAULT_MAX_TEMP, value_name = "CELSIUS", value_parser = proto::policy::parse_celsius)]
    pub max_temp: u16,
    /// While someone uses the machine (keyboard or touchpad input within --idle-after):
    /// pause, run, or slots=N.
    #[arg(long, default_value = "run", value_name = "pause|run|slots=N", value_parser = str::parse::<proto::policy::Mode>)]
    pub in_use: proto::policy::Mode,
    /// How long without input before the machine counts as not in use.
    #[arg(long, default_value = "3m", value_parser = parse_idle_after)]
    pub idle_after: Duration,
    /// Work only in these hours, local time, e.g. 22:00-07:00 or 12:00-13:00,19:00-23:30
    /// [default: all day]
    #[arg(long, value_name = "HH:MM-HH:MM,...", value_parser = str::parse::<proto::policy::Hours>)]
    pub hours: Option<proto::policy::Hours>,
    /// Internal: the trial start of a newly received binary (connect, shake hands, exit).
    #[arg(long = "update-trial", hide = true)]
    pub update_trial: bool,
}

#[derive(Args, Debug)]
pub struct LocalArgs {
    /// How many workers to start.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Slots per worker [default: the machine's cores shared between the workers]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub slots: Option<u32>,
}

/// A size in bytes, written like 500MiB, 2GiB or 1.5GB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize =
        s.parse().map_err(|e| format!("{e}: write sizes like 500MiB or 2GiB"))?;
    Ok(size.as_u64())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = proto::human::parse_duration(s, "5s, 500ms or 1m")?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err("must be between 100ms and 1h".into());
    }
    Ok(d)
}

fn parse_idle_after(s: &str) -> Result<Duration, String> {
    let d = proto::human::parse_duration(s, "3m, 90s or 10m")?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(24 * 3600) {
        return Err("must be between 1s and 24h".into());
    }
    Ok(d)
}

fn parse_keep_for(s: &str) -> Result<Duration, String> {
    proto::human::parse_duration(s, "7days, 12h or 30m")
}

fn parse_cert_life(s: &str) -> Result<Duration, String> {
    let d = proto::human::parse_duration(s, "365days, 90days or 12h")?;
    if d < Duration::from_secs(6) || d > Duration::from_secs(100 * 365 * 24 * 3600) {
        return Err("must be between 6s and 100 years".into());
    }
    Ok(d)
}

/// The coordinator's address as `HOST:PORT`: `HOST` alone gets port 7070; an IPv6 address
/// is written `[ADDR]:PORT` (or bare, for the default port). Only the form is checked here:
/// whether the name resolves is found out, and retried, when connecting.
fn parse_coordinator(s: &str) -> Result<String, String> {
    use std::net::{IpAddr, SocketAddr};
    let s = s.trim();
    let bad = |why: &str| Err(format!("'{s}' {why}: write HOST, HOST:PORT or [IPv6]:PORT"));
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return if addr.port() == 0 { bad("has port 0") } else { Ok(addr.to_string()) };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, proto::DEFAULT_PORT).to_string());
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 => (host, p),
            _ => return bad("has no valid port (1 to 65535)"),
        },
        None => (s, proto::DEFAULT_PORT),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if host.is_empty() || !host.chars().all(valid) {
        return bad("is not a host name or address");
    }
    Ok(format!("{host}:{port}"))
}

/// The state dir from `--state-dir`, or the role's default (warning about an old layout).
fn state_dir_or_default(flag: Option<PathBuf>, role: Role) -> PathBuf {
    flag.unwrap_or_else(|| {
        let (dir, warning) = state_dir::default_for(role);
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        dir
    })
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
            temporary: false,
            listen: self.listen,
            state_dir: state_dir_or_default(self.state_dir, Role::Coordinator),
            socket: self.socket.unwrap_or_else(proto::paths::default_socket),
            socket_group: self.socket_group,
            sans: self.sans,
            dead_after: self.dead_after,
            straggler_factor: self.straggler_factor,
            worker_cert_life: self.worker_cert_life,
            max_running_jobs: self.max_jobs as usize,
            verify: self.verify,
            retention: crate::journal::Retention {
                keep_for: self.keep_results,
                keep_count: self.keep_results_count,
            },
            journal_reset: self.journal_reset,
            file_store: self.file_store,
            files_max: self.files_max,
            spool: crate::coordinator::jobs::SpoolBounds {
                per_job: self.spool_per_job,
                total: self.spool,
            },
            http: self.http,
        }
    }
}

impl InstallRole {
    /// The installer's settings; `None` for the package's refresh.
    pub fn into_settings(self) -> Option<crate::install::env_file::Settings> {
        use crate::install::env_file::Settings;
        match self {
            InstallRole::Coordinator { sans } => Some(Settings::Coordinator { sans }),
            InstallRole::Worker { coordinator, token, name, slots } => {
                Some(Settings::Worker { coordinator, token, name, slots })
            }
            InstallRole::Refresh => None,
        }
    }
}

impl UninstallArgs {
    pub fn role(&self) -> Option<Role> {
        match self.role.as_deref() {
            Some("coordinator") => Some(Role::Coordinator),
            Some(_) => Some(Role::Worker),
            None => None,
        }
    }
}

impl WorkerArgs {
    pub fn into_config(self) -> WorkerConfig {
        WorkerConfig {
            send_logs: true,
            coordinator: self.coordinator,
            token: self.token,
            name: self.name.unwrap_or_else(identity::hostname),
            slots: self.slots.unwrap_or_else(identity::default_slots),
            state_dir: state_dir_or_default(self.state_dir, Role::Worker),
            dead_after: self.dead_after,
            lease: self.lease,
            updatable: true,
            exec: !self.no_exec,
            file_cache: self.file_cache,
            policy: Some(proto::policy::Policy {
                on_battery: self.on_battery,
                battery_below: self.battery_below,
                max_temp: self.max_temp,
                hours: self.hours,
                in_use: self.in_use,
                idle_after: self.idle_after,
            }),
        }
    }
}

/// `--http`: `PORT` (on 127.0.0.1) or `IP:PORT`.
fn parse_http_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("'{text}' is not a port or an IP:PORT (e.g. 8080 for this machine only, or 0.0.0.0:8080)")
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_coordinator, state_dir_or_default};
    use crate::state_dir::Role;
    use std::path::PathBuf;

    #[test]
    fn state_dirs_from_the_flag_or_the_roles_default() {
        let given = PathBuf::from("/srv/marmot-state");
        assert_eq!(state_dir_or_default(Some(given.clone()), Role::Worker), given);
        let default = state_dir_or_default(None, Role::Worker);
        assert!(default.ends_with("marmot/worker"), "{}", default.display());
    }

    #[test]
    fn coordinator_addresses() {
        for (given, meant) in [
            ("192.168.1.25", "192.168.1.25:7070"),
            ("192.168.1.25:7171", "192.168.1.25:7171"),
            ("laptop.local", "laptop.local:7070"),
            ("laptop:9000", "laptop:9000"),
            ("::1", "[::1]:7070"),
            ("[::1]:7071", "[::1]:7071"),
            ("no-such-host.invalid", "no-such-host.invalid:7070"),
        ] {
            assert_eq!(parse_coordinator(given).as_deref(), Ok(meant), "{given}");
        }
        for bad in ["", ":7070", "host:99999", "host:0", "host:x", "a b", "1.2.3.4:0", "h/x"] {
            let e = parse_coordinator(bad).unwrap_err();
            assert!(e.contains("HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn http_takes_a_port_for_loopback_or_an_address() {
        assert_eq!(super::parse_http_addr("8080"), Ok("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(super::parse_http_addr("0.0.0.0:80"), Ok("0.0.0.0:80".parse().unwrap()));
        let e = super::parse_http_addr("localhost:80").unwrap_err();
        assert!(e.contains("not a port or an IP:PORT"), "{e}");
    }
}
