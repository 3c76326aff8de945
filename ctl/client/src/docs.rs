//! Shell completions and man pages, generated from a binary's clap definition, for both
//! binaries (`marmotctl completions SHELL`, `marmotd completions SHELL`, and the hidden
//! `man-pages DIR` of each). The Debian package ships copies of their output
//! (`systemd/package/`, kept current by a test); `marmotd install` writes them fresh.

use std::io::Write;
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// The documentation commands both binaries have, flattened into each one's commands.
#[derive(clap::Subcommand, Debug)]
pub enum DocsCommand {
    /// Print a shell completion script for bash, zsh or fish.
    ///
    /// For example, for bash and this user only: `marmotctl completions bash >
    /// ~/.local/share/bash-completion/completions/marmotctl` (`marmotd` likewise). The Debian
    /// package and `marmotd install` put them in place for everyone.
    Completions {
        /// The shell to complete for.
        #[arg(value_parser = clap::value_parser!(Shell))]
        shell: Shell,
    },
    /// Write the man pages into DIR (used to package and install them).
    #[command(hide = true)]
    ManPages {
        /// Where to write the pages (PROGRAM.1, PROGRAM-COMMAND.1, ...).
        dir: PathBuf,
    },
}

impl DocsCommand {
    /// Runs the command for the program whose clap definition is `cmd`.
    pub fn run(self, cmd: clap::Command) -> Result<(), String> {
        match self {
            DocsCommand::Completions { shell } => {
                completions(cmd, shell, &mut std::io::stdout());
                Ok(())
            }
            DocsCommand::ManPages { dir } => write_man_pages(cmd, &dir)
                .map(|_| ())
                .map_err(|e| format!("cannot write man pages in {}: {e}", dir.display())),
        }
    }
}

/// The shells marmot ships completions for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes `bin`'s completion script for `shell`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) {
    let bin = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, bin, out);
}

/// Where a completion script for `bin` goes under a `share` directory (`/usr/share` for the
/// package, `/usr/local/share` for `marmotd install`), where each shell looks by default
/// (Debian's zsh reads packages' scripts from `vendor-completions`, local ones from
/// `site-functions`).
pub fn completion_path(share: &Path, bin: &str, shell: Shell) -> PathBuf {
    match shell {
        Shell::Bash => share.join("bash-completion/completions").join(bin),
        Shell::Zsh if share.starts_with("/usr/local") => {
            share.join("zsh/site-functions").join(format!("_{bin}"))
        }
        Shell::Zsh => share.join("zsh/vendor-completions").join(format!("_{bin}")),
        Shell::Fish => share.join("fish/vendor_completions.d").join(format!("{bin}.fish")),
        other => share.join(other.to_string()).join(bin),
    }
}

/// Man pages for a command and each of its subcommands (`marmotctl.1`, `marmotctl-run.1`,
/// `marmotctl-run-pi.1`, ...), as (file name, roff) pairs. The pages carry the package
/// version without the build time, so they change only when the command line does.
pub fn man_pages(cmd: clap::Command) -> Vec<(String, Vec<u8>)> {
    let mut cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    let source = format!("marmot {}", env!("CARGO_PKG_VERSION"));
    let mut pages = Vec::new();
    add_pages(&cmd, &source, &mut pages);
    pages
}

fn add_pages(cmd: &clap::Command, source: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).replace(' ', "-");
    let mut roff = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(cmd.clone())
        .title(&name)
        .source(source)
        .manual("marmot")
        .render(&mut roff);
    pages.push((format!("{name}.1"), roff));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        add_pages(sub, source, pages);
    }
}

/// Writes [`man_pages`] into `dir` (created if missing); returns the files written.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, roff) in man_pages(cmd) {
        let path = dir.join(name);
        std::fs::write(&path, roff)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> clap::Command {
        clap::Command::new("toy")
            .version("9.9.9+20990101000000")
            .about("A toy")
            .subcommand(
                clap::Command::new("run").about("Runs").subcommand(
                    clap::Command::new("fast")
                        .about("Fast")
                        .arg(clap::Arg::new("count").long("count").help("How many")),
                ),
            )
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn a_page_per_visible_command_with_the_package_version() {
        let pages = man_pages(toy());
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["toy.1", "toy-run.1", "toy-run-fast.1"]);
        let fast = String::from_utf8(pages[2].1.clone()).unwrap();
        assert!(fast.contains(".TH toy-run-fast 1"), "{fast}");
        assert!(fast.contains("toy run fast"), "{fast}");
        assert!(fast.contains("count"), "{fast}");
        assert!(fast.contains(env!("CARGO_PKG_VERSION")), "{fast}");
        assert!(!fast.contains("20990101000000"), "no build time in man pages: {fast}");
    }

    #[test]
    fn man_pages_are_written_as_files() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(toy(), &dir.path().join("man1")).unwrap();
        let names: Vec<_> = written.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["toy.1", "toy-run.1", "toy-run-fast.1"]);
        for (path, (_, page)) in written.iter().zip(man_pages(toy())) {
            assert_eq!(std::fs::read(path).unwrap(), page, "{}", path.display());
        }
    }

    #[test]
    fn completion_scripts_name_the_binary_where_each_shell_looks() {
        for shell in SHELLS {
            let mut out = Vec::new();
            completions(toy(), shell, &mut out);
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains("toy") && script.contains("fast"), "{shell}: {script}");
        }
        let share = Path::new("/usr/share");
        assert_eq!(
            completion_path(share, "toy", Shell::Bash),
            Path::new("/usr/share/bash-completion/completions/toy")
        );
        assert_eq!(
            completion_path(share, "toy", Shell::Zsh),
            Path::new("/usr/share/zsh/vendor-completions/_toy")
        );
        assert_eq!(
            completion_path(share, "toy", Shell::Fish),
            Path::new("/usr/share/fish/vendor_completions.d/toy.fish")
        );
        assert_eq!(
            completion_path(Path::new("/usr/local/share"), "toy", Shell::Zsh),
            Path::new("/usr/local/share/zsh/site-functions/_toy")
        );
    }
}
