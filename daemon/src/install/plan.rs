//! What `marmotd install`, `uninstall` and the package's refresh do, decided as a list of
//! [`Step`]s from [`Facts`] about the machine. Nothing here touches the system: the decisions
//! are unit-tested, and `--dry-run` prints exactly the steps a real run performs.

use super::env_file::{self, Settings};
use super::layout::{self, USER};
use crate::state_dir::Role;
use client::docs::{Shell, SHELLS};
use std::cmp::Ordering;
use std::fmt;
use std::path::{Path, PathBuf};

/// A binary's identity, as far as installing cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Build {
    /// `None` when the file carries no readable version stamp.
    pub version: Option<String>,
    pub sha256: String,
}

/// What is on the machine for one role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleFacts {
    /// The copy of `marmotd` the role's unit runs.
    pub binary: Option<Build>,
    /// The environment file's text.
    pub env: Option<String>,
    /// The unit file `marmotd install` wrote, and its text.
    pub unit: Option<String>,
    /// The package ships this role's unit.
    pub packaged_unit: bool,
    /// The service is running.
    pub active: bool,
    /// A worker that holds its certificate (and so needs no token any more).
    pub joined: bool,
}

impl RoleFacts {
    /// Whether any trace of this role is installed.
    pub fn installed(&self) -> bool {
        self.binary.is_some() || self.env.is_some() || self.unit.is_some()
    }
}

/// What is on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The running `marmotd`, the one to install.
    pub exe: PathBuf,
    pub own: Build,
    /// The running `marmotd` is the Debian package's: the package owns the units,
    /// `marmotctl`, the completions and the man pages.
    pub packaged: bool,
    /// A `marmotctl` beside the running `marmotd` (not for a package).
    pub marmotctl: Option<PathBuf>,
    /// `/usr/local/bin/marmotctl` exists.
    pub local_marmotctl: bool,
    pub user_exists: bool,
    pub coordinator: RoleFacts,
    pub worker: RoleFacts,
}

impl Facts {
    pub fn role(&self, role: Role) -> &RoleFacts {
        match role {
            Role::Coordinator => &self.coordinator,
            Role::Worker => &self.worker,
        }
    }
}

/// Who owns a directory or file written by a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Root,
    /// The service user, which must be able to replace its binary.
    Service,
}

/// One action on the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    CreateUser,
    DeleteUser,
    CreateDir {
        path: PathBuf,
        owner: Owner,
        mode: u32,
    },
    /// Copied to a temporary file beside `to`, then renamed over it.
    Copy {
        from: PathBuf,
        to: PathBuf,
        owner: Owner,
        mode: u32,
    },
    /// Written atomically, owned by root; `shown` is what `--dry-run` prints (no secrets).
    Write {
        path: PathBuf,
        contents: String,
        mode: u32,
        shown: String,
    },
    /// Generated files (completions, man pages), written atomically, owned by root, 0644.
    WriteGenerated {
        what: String,
        files: Vec<(PathBuf, Vec<u8>)>,
    },
    Run {
        argv: Vec<String>,
    },
    /// A command whose standard output becomes a file (0644).
    RunInto {
        argv: Vec<String>,
        path: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
    RemoveTree {
        path: PathBuf,
    },
    /// Files in `dir` whose name starts with `prefix` and ends with `suffix`.
    RemoveMatching {
        dir: PathBuf,
        prefix: String,
        suffix: String,
    },
    /// Enables the unit; starts it (or restarts it, to apply new settings) and waits until
    /// it reports READY=1.
    Start {
        unit: String,
        restart: bool,
    },
    /// Something left as it is, and why.
    Keep {
        what: String,
    },
}

/// A request that cannot be planned, with what to do instead.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// Whether to copy `own` over the installed binary.
#[derive(Debug, PartialEq, Eq)]
pub enum BinaryChoice {
    Copy,
    /// The installed binary is this very build.
    Same,
    /// The installed binary is newer (self-updated since): never downgraded by installing.
    Newer(String),
}

pub fn choose_binary(own: &Build, installed: Option<&Build>) -> BinaryChoice {
    let Some(installed) = installed else { return BinaryChoice::Copy };
    if installed.sha256 == own.sha256 {
        return BinaryChoice::Same;
    }
    let (Some(own_version), Some(theirs)) = (&own.version, &installed.version) else {
        return BinaryChoice::Copy;
    };
    match crate::update::version::compare(theirs, own_version) {
        Some(Ordering::Greater) => BinaryChoice::Newer(theirs.clone()),
        _ => BinaryChoice::Copy,
    }
}

/// The files of `marmotd`'s own completions and man pages, given their contents.
pub type Docs = Vec<(PathBuf, Vec<u8>)>;

fn systemctl(args: &[&str]) -> Step {
    let mut argv = vec!["systemctl".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    Step::Run { argv }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// The state dirs a role's binary needs, owned by the service.
fn state_dirs(role: Role) -> [Step; 3] {
    let dir = |path: PathBuf, mode| Step::CreateDir { path, owner: Owner::Service, mode };
    [
        dir(PathBuf::from(layout::STATE_BASE), 0o750),
        dir(layout::state_dir(role), 0o700),
        dir(layout::bin_dir(role), 0o700),
    ]
}

/// The steps that put this build in place as `role`'s binary, or say why not.
fn binary_steps(facts: &Facts, role: Role) -> Vec<Step> {
    let installed = facts.role(role).binary.as_ref();
    let what = format!("the {}'s binary {}", role.name(), layout::binary(role).display());
    match choose_binary(&facts.own, installed) {
        BinaryChoice::Copy => {
            let mut steps = state_dirs(role).to_vec();
            steps.push(Step::Copy {
                from: facts.exe.clone(),
                to: layout::binary(role),
                owner: Owner::Service,
                mode: 0o755,
            });
            steps
        }
        BinaryChoice::Same => vec![Step::Keep { what: format!("{what}: already this build") }],
        BinaryChoice::Newer(version) => vec![Step::Keep {
            what: format!(
                "{what}: it is {version}, newer than this {} (updated since); \
                 `marmotctl update` rolls out versions",
                facts.own.version.as_deref().unwrap_or("build")
            ),
        }],
    }
}

/// `marmotd install ROLE ...`.
pub fn install(settings: &Settings, facts: &Facts, docs: &Docs) -> Result<Vec<Step>, PlanError> {
    let role = settings.role();
    let here = facts.role(role);
    let token = match settings {
        Settings::Worker { token: Some(token), .. } => Some(token.as_str()),
        Settings::Worker { .. } => {
            // A token kept from the last install; the package's template holds a placeholder.
            let kept = here
                .env
                .as_deref()
                .and_then(|env| env_file::value(env, "MARMOT_TOKEN"))
                .filter(|token| token.parse::<certs::JoinToken>().is_ok());
            if kept.is_none() && !here.joined {
                return Err(PlanError(
                    "a new worker needs --token: run `marmotctl join-token` on the coordinator \
                     (or copy the join command `marmotd install coordinator` printed)"
                        .into(),
                ));
            }
            kept
        }
        Settings::Coordinator { .. } => None,
    };
    let env = env_file::render(settings, token).map_err(|e| PlanError(e.0))?;

    let mut steps = Vec::new();
    if !facts.user_exists {
        steps.push(Step::CreateUser);
    }
    let binary = binary_steps(facts, role);
    let mut changed = binary.iter().any(|s| matches!(s, Step::Copy { .. }));
    steps.extend(binary);
    if here.env.as_deref() != Some(env.as_str()) {
        changed = true;
        steps.push(Step::CreateDir {
            path: PathBuf::from(layout::ENV_DIR),
            owner: Owner::Root,
            mode: 0o755,
        });
        steps.push(Step::Write {
            path: layout::env_file(role),
            shown: env_file::redacted(&env),
            contents: env,
            mode: 0o600,
        });
    } else {
        steps.push(Step::Keep {
            what: format!("{}: already these settings", layout::env_file(role).display()),
        });
    }
    if !facts.packaged {
        let unit = layout::unit_text(role);
        if here.unit.as_deref() != Some(unit) {
            changed = true;
            steps.push(Step::Write {
                path: layout::unit_file(role),
                contents: unit.to_string(),
                shown: String::new(),
                mode: 0o644,
            });
        }
        steps.push(Step::WriteGenerated {
            what: "marmotd's shell completions and man pages".into(),
            files: docs.clone(),
        });
        if let (Role::Coordinator, Some(marmotctl)) = (role, &facts.marmotctl) {
            steps.extend(marmotctl_steps(marmotctl));
        }
    }
    steps.push(systemctl(&["daemon-reload"]));
    steps.push(Step::Start { unit: layout::unit(role), restart: changed || !here.active });
    Ok(steps)
}

/// Copies `marmotctl` to `/usr/local/bin` and writes its completions and man pages.
fn marmotctl_steps(marmotctl: &Path) -> Vec<Step> {
    let local = PathBuf::from(layout::LOCAL_MARMOTCTL);
    let mut steps = vec![Step::Copy {
        from: marmotctl.to_path_buf(),
        to: local.clone(),
        owner: Owner::Root,
        mode: 0o755,
    }];
    for shell in SHELLS {
        steps.push(Step::RunInto {
            argv: vec![path_str(&local), "completions".into(), shell.to_string()],
            path: marmotctl_completion(shell),
        });
    }
    steps.push(Step::Run {
        argv: vec![path_str(&local), "man-pages".into(), path_str(&layout::local_man_dir())],
    });
    steps
}

fn marmotctl_completion(shell: Shell) -> PathBuf {
    client::docs::completion_path(Path::new(layout::LOCAL_SHARE), "marmotctl", shell)
}

/// `marmotd uninstall [ROLE] [--purge]`: the given role, or every role installed.
pub fn uninstall(
    only: Option<Role>,
    purge: bool,
    facts: &Facts,
    docs: &Docs,
) -> Result<Vec<Step>, PlanError> {
    let installed: Vec<Role> =
        layout::ROLES.into_iter().filter(|&r| facts.role(r).installed()).collect();
    let roles: Vec<Role> = match only {
        Some(role) if !installed.contains(&role) => {
            return Err(PlanError(format!("the {} is not installed here", role.name())));
        }
        Some(role) => vec![role],
        None if installed.is_empty() => {
            return Err(PlanError(
                "marmot is not installed here: no unit, settings or binary of either role".into(),
            ));
        }
        None => installed.clone(),
    };
    let mut steps = Vec::new();
    for &role in &roles {
        let here = facts.role(role);
        if here.unit.is_some() || here.packaged_unit {
            steps.push(systemctl(&["disable", "--now", &layout::unit(role)]));
        }
        if here.unit.is_some() {
            steps.push(Step::Remove { path: layout::unit_file(role) });
        }
        if here.env.is_some() {
            steps.push(Step::Remove { path: layout::env_file(role) });
        }
        if purge {
            steps.push(Step::RemoveTree { path: layout::state_dir(role) });
        } else if here.binary.is_some() {
            steps.push(Step::RemoveTree { path: layout::bin_dir(role) });
            steps.push(Step::Keep {
                what: format!(
                    "the {}'s state in {} (keys, membership; --purge removes it)",
                    role.name(),
                    layout::state_dir(role).display()
                ),
            });
        }
    }
    if roles.contains(&Role::Coordinator) && facts.local_marmotctl && !facts.packaged {
        steps.push(Step::Remove { path: PathBuf::from(layout::LOCAL_MARMOTCTL) });
        steps.extend(SHELLS.map(|shell| Step::Remove { path: marmotctl_completion(shell) }));
        steps.push(Step::RemoveMatching {
            dir: layout::local_man_dir(),
            prefix: "marmotctl".into(),
            suffix: ".1".into(),
        });
    }
    let last = installed.iter().all(|r| roles.contains(r));
    if last && !facts.packaged {
        steps.extend(docs.iter().map(|(path, _)| Step::Remove { path: path.clone() }));
    }
    if last && purge {
        steps.push(Step::RemoveTree { path: PathBuf::from(layout::STATE_BASE) });
        if facts.user_exists && !facts.packaged {
            steps.push(Step::DeleteUser);
        }
    }
    steps.push(systemctl(&["daemon-reload"]));
    Ok(steps)
}

/// The Debian package's refresh (its postinst): each role's binary becomes this build unless
/// it already is it or something newer, and a running service is restarted onto it. The
/// newer binary always wins, so `apt` and `marmotctl update` never undo each other.
pub fn refresh(facts: &Facts) -> Vec<Step> {
    let mut steps = Vec::new();
    for role in layout::ROLES {
        let binary = binary_steps(facts, role);
        let copied = binary.iter().any(|s| matches!(s, Step::Copy { .. }));
        steps.extend(binary);
        if copied && facts.role(role).active {
            steps.push(systemctl(&["try-restart", &layout::unit(role)]));
        }
    }
    steps
}

fn owner_flags(owner: Owner) -> String {
    match owner {
        Owner::Root => String::new(),
        Owner::Service => format!(" -o {USER} -g {USER}"),
    }
}

/// Each step as the shell command (or description) that does the same: `--dry-run`'s output.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateUser => write!(
                f,
                "useradd --system --user-group --home-dir {} --shell /usr/sbin/nologin {USER}",
                layout::STATE_BASE
            ),
            Step::DeleteUser => write!(f, "userdel {USER}"),
            Step::CreateDir { path, owner, mode } => {
                write!(f, "install -d -m {mode:04o}{} {}", owner_flags(*owner), path.display())
            }
            Step::Copy { from, to, owner, mode } => write!(
                f,
                "install -m {mode:04o}{} {} {}",
                owner_flags(*owner),
                from.display(),
                to.display()
            ),
            Step::Write { path, mode, shown, .. } if shown.is_empty() => {
                write!(f, "write {} ({mode:04o})", path.display())
            }
            Step::Write { path, mode, shown, .. } => {
                write!(f, "write {} ({mode:04o}):", path.display())?;
                for line in shown.lines() {
                    write!(f, "\n    {line}")?;
                }
                Ok(())
            }
            Step::WriteGenerated { what, files } => {
                write!(f, "write {what} ({} files", files.len())?;
                match common_parent(files) {
                    Some(dir) => write!(f, " under {})", dir.display()),
                    None => write!(f, ")"),
                }
            }
            Step::Run { argv } => write!(f, "{}", argv.join(" ")),
            Step::RunInto { argv, path } => write!(f, "{} > {}", argv.join(" "), path.display()),
            Step::Remove { path } => write!(f, "rm -f {}", path.display()),
            Step::RemoveTree { path } => write!(f, "rm -rf {}", path.display()),
            Step::RemoveMatching { dir, prefix, suffix } => {
                write!(f, "rm -f {}/{prefix}*{suffix}", dir.display())
            }
            Step::Start { unit, restart: true } => write!(
                f,
                "systemctl enable {unit} && systemctl restart {unit}   # waits for READY=1"
            ),
            Step::Start { unit, restart: false } => {
                write!(f, "systemctl enable {unit}   # running with these settings already")
            }
            Step::Keep { what } => write!(f, "# keep {what}"),
        }
    }
}

/// The deepest directory all `files` are under.
fn common_parent(files: &[(PathBuf, Vec<u8>)]) -> Option<PathBuf> {
    let mut common = files.first()?.0.parent()?.to_path_buf();
    for (path, _) in files {
        while !path.starts_with(&common) {
            common = common.parent()?.to_path_buf();
        }
    }
    Some(common)
}

#[cfg(test)]
mod tests;
