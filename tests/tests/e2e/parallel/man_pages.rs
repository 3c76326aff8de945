//! GNU parallel's own man pages as `marmotctl parallel`'s cases: every example of its tutorial
//! (`man parallel_tutorial`) and of its examples page (`man parallel_examples`) that runs on
//! one machine, run by bash with `parallel` being GNU parallel's `parallel -k`, then
//! `marmotctl parallel -k` on a cluster. Stdout and exit status are compared byte for byte,
//! and for the examples (which act on files) the files left in the case's directory too.
//! What differs must be on a list with its reason; anything else that differs fails the lab,
//! and so does a listed case that now passes (the lists are kept true).

use crate::util::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a case came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Same stdout and exit status (and files, for the examples).
    Same,
    /// `marmotctl parallel` refused an option or string, saying so.
    Refused,
    /// Different output, status or files.
    Differs,
    /// GNU parallel's own output changes from run to run (time, random, PIDs): no oracle.
    Unsteady,
    /// Expected only: the same or not (or unsteady), by how jobs on two workers race.
    Racy,
}

/// Tutorial cases that are not [`Outcome::Same`], by their first line, with why. Refused
/// on purpose ("never") or for now ("not yet"); or they differ for a reason given.
const TUTORIAL_EXPECTED: &[(&str, Outcome, &str)] = &[
    ("parallel ::: ls 'echo foo' pwd", Outcome::Unsteady, "GNU parallel's own output changes from run to run"),
    ("parallel -j 2 echo {%} ::: A B C", Outcome::Racy, "which of two jobs on two workers ends first frees the slot the third takes"),
    ("parallel -j2 --slotreplace ,, echo ,, ::: A B C", Outcome::Racy, "which of two jobs on two workers ends first frees the slot the third takes"),
    ("parallel -j2 --ungroup 'printf \"%s-start\\n%s\" {} {};", Outcome::Differs, "output comes whole per job, which --ungroup allows but GNU parallel does not do"),
    ("parallel --files echo ::: A B C", Outcome::Unsteady, "GNU parallel's own output changes from run to run (new files' random names)"),
    ("parallel --tmpdir /var/tmp --files echo ::: A B C", Outcome::Unsteady, "GNU parallel's own output changes from run to run (new files' random names)"),
    ("parallel --shuf echo ::: 1 2 3 ::: a b c ::: A B C", Outcome::Unsteady, "GNU parallel's own output changes from run to run (a random order)"),
    ("parallel --tty emacs ::: 1 2 3", Outcome::Refused, "never: units run on workers, away from the terminal"),
    ("parallel -X --tty vi ::: 1 2 3", Outcome::Refused, "never: units run on workers, away from the terminal"),
    ("seq 10 20 | parallel --tmux 'echo start {}; sleep {}; echo done {}'", Outcome::Refused, "never: units run on workers, away from the terminal"),
    ("parallel --delay 2.5 echo Starting {}\\;date ::: 1 2 3", Outcome::Unsteady, "GNU parallel's own output changes from run to run (the date)"),
    ("parallel --joblog $CASE_DIR/log exit  ::: 1 2 3 0", Outcome::Unsteady, "GNU parallel's own output changes from run to run"),
    ("parallel --resume-failed --joblog $CASE_DIR/log exit  ::: 1 2 3 0 0 0", Outcome::Unsteady, "GNU parallel's own output changes from run to run"),
    ("parallel -j2 --halt soon,fail=1 echo {}\\; exit {} ::: 0 0 1 2 3", Outcome::Racy, "a slot freed by the failing job may start one job more before the halt is judged"),
    ("parallel -j2 --halt now,fail=1 echo {}\\; exit {} ::: 0 0 1 2 3", Outcome::Racy, "which of two failing jobs on two workers is judged first"),
    ("parallel -j2 --halt now,success=1 echo {}\\; exit {} ::: 1 2 3 0 4 5 6", Outcome::Racy, "which jobs of two workers have ended when one succeeds (GNU parallel's own varies under load)"),
    ("parallel -j2 --halt soon,fail=20% echo {}\\; exit {} \\", Outcome::Racy, "a slot freed by the failing job may start one job more before the halt is judged"),
    ("parallel -k --retries 3 \\", Outcome::Racy, "the tries of two jobs on two workers append to one file in the order they run"),
    ("parallel --sqlandworker $DBURLTABLE echo ::: foo bar ::: baz quuz", Outcome::Refused, "never: marmot keeps jobs in its own journal"),
    ("cat num1000000 | parallel --pipe -j4 --roundrobin wc", Outcome::Racy, "GNU parallel deals the blocks to whichever job reads first; marmot in turn"),
    ("seq 1000 | parallel -j10 --bar '(echo -n {};sleep 0.1)' \\", Outcome::Racy, "the --bar's reader is gone (zenity is not installed): both stop as SIGPIPE stops them, after more or less output"),
    ("parallel --timeout 4.1 sleep {}\\; echo {} ::: 2 4 6 8", Outcome::Racy, "a 0.1 s margin: under load the 4 s job may outlast 4.1 s on a worker, spawned there beside the cluster's own processes"),
    ("parallel --timeout 200% sleep {}\\; echo {} ::: 2.1 2.2 3 7 2.3", Outcome::Racy, "which jobs outlast twice the median depends on the times measured: under load both tools' kills vary (in one CI run GNU parallel's differed from its own rerun, and ours stopped none)"),
    ("parallel --help", Outcome::Differs, "marmotctl parallel's own text"),
    ("parallel --version", Outcome::Differs, "marmotctl parallel's own text"),
    ("parallel --max-line-length-allowed", Outcome::Differs, "lines hold up to 64 KiB (a unit's line), GNU parallel's up to this machine's measured limit (about 128 KiB)"),
    ("parallel --interactive echo ::: 1 2 3", Outcome::Refused, "never: units run on workers, away from the terminal"),
    ("parallel --sqlandworker csv:///%2Ftmp/log.csv \\", Outcome::Refused, "never: marmot keeps jobs in its own journal"),
    ("parallel --results outdir --sqlandworker csv:///%2Ftmp/log2.csv \\", Outcome::Refused, "never: marmot keeps jobs in its own journal"),
    ("parallel --sqlmaster $DBURLTABLE echo ::: foo bar ::: baz quuz", Outcome::Refused, "never: marmot keeps jobs in its own journal"),
    ("parallel --sqlworker $DBURLTABLE echo ::: foo bar ::: baz quuz", Outcome::Refused, "never: marmot keeps jobs in its own journal"),
    ("parallel --number-of-cpus", Outcome::Refused, "never: the cluster's size is `marmotctl status`"),
    ("parallel --profile nicetimeout echo ::: A B C", Outcome::Refused, "never: GNU parallel's config files under ~/.parallel"),
    ("parallel --profile dryverbose --profile nicetimeout echo ::: A B C", Outcome::Refused, "never: GNU parallel's config files under ~/.parallel"),
];

/// Cases of the examples page that are not [`Outcome::Same`], by their first line that runs
/// parallel, with why.
const EXAMPLES_EXPECTED: &[(&str, Outcome, &str)] = &[
    ("parallel --env doit -S server doit ::: 1 2 3", Outcome::Refused, "never: -S, other machines over ssh"),
    ("seq 2 | parallel -N0 -j1 --delay 1 \\", Outcome::Unsteady, "GNU parallel's own output changes from run to run (the date, ps)"),
    ("parallel eval 'cat {=s/y01/y*/=} > {=s/y01//=}' ::: *y01*", Outcome::Differs, "a glob in the command matches on the worker, among the files its unit took there"),
    ("parallel wget --progress=dot --limit-rate=100k \\", Outcome::Refused, "never: --latest-line, a display redrawn in place on a terminal as time passes"),
    ("    parallel --tagstring '\\033[30;3{=$_=++$::color%8=}m' seq {}", Outcome::Differs, "a perl counter ($::color) in --tagstring counts GNU parallel's evaluations, which it repeats in an order of its own; marmotctl parallel evaluates each job's tag once, in order"),
    ("percpu=$((free / 200 / $(parallel --number-of-threads)))k", Outcome::Refused, "never: --number-of-threads describes the machine GNU parallel runs on"),
    ("parallel --pipe-part -a regexps.txt --block $percpu --compress \\", Outcome::Differs, "$percpu is unset here (the example before sets it): --block takes `--compress` as its size, which GNU parallel reads as a number and marmotctl parallel refuses"),
    ("parallel --sqlandworker $dbtableurl seq ::: {1..10}", Outcome::Refused, "never: marmot keeps jobs in its own journal"),
    ("parallel --results my.csv seq ::: 10 20 30", Outcome::Unsteady, "the block goes on in R's prompt (`> mydf <- ...`), a syntax error either way"),
    ("  parallel --pipe -N 250 --round-robin -j250 parallel -j250 your_prg", Outcome::Racy, "GNU parallel starting 250 GNU parallels on two cores may outlast the lab's 30 s"),
    ("seq 3 | parallel sem sed -i -e '1i{}' myfile", Outcome::Racy, SEM),
    ("seq 3 | parallel sem --id mymutex sed -i -e '1i{}' myfile", Outcome::Differs, SEM),
    ("cat filelist | parallel --tty -X emacs", Outcome::Refused, "never: units run on workers, away from the terminal"),
    ("parallel -j0 --open-tty --lb --tag ping '{= $SIG{INT}=sub {} =}' \\", Outcome::Refused, "never: units run on workers, away from the terminal"),
    ("parallel --tag -S .. --nonall uptime", Outcome::Refused, "never: -S, other machines over ssh"),
];

/// `sem` locks in `~/.parallel` of the machine it runs on.
const SEM: &str = "sem's lock is a file on each worker, not one on the cluster; each unit edits its own copy of myfile (the last one back wins)";

/// Sections of the examples page not run, with why: they need other machines, or never end.
const EXAMPLES_NOT_RUN: &[(&str, &str)] = &[
    ("Using remote computers", "other machines over ssh (-S, --sshlogin)"),
    ("Transferring of files", "other machines over ssh (-S, --sshlogin)"),
    ("Advanced file transfer", "other machines over ssh (-S, --sshlogin)"),
    ("Distributing work to local and remote computers", "other machines over ssh (-S, --sshlogin)"),
    ("Running the same command on remote computers", "other machines over ssh (-S, --sshlogin)"),
    ("Running 'sudo' on remote computers", "other machines over ssh (-S, --sshlogin)"),
    ("Using remote computers behind NAT wall", "other machines over ssh (-S, --sshlogin)"),
    ("Use sshpass with ssh", "other machines over ssh (-S, --sshlogin)"),
    ("Use outrun instead of ssh", "other machines over ssh (-S, --sshlogin)"),
    ("Parallelizing rsync", "another machine over ssh (fooserver:)"),
    ("Slurm cluster", "a Slurm cluster"),
    ("GNU Parallel as queue system/batch manager", "never ends: reads a queue with tail -f"),
    ("GNU Parallel as dir processor", "never ends: reads inotifywait -m"),
];

/// Numbers of the examples page scaled down so that the lab runs in minutes (each case runs
/// with both tools): (text, replaced by, why).
const EXAMPLES_SCALED: &[(&str, &str, &str)] = &[
    ("seq -w 0 9999999", "seq -w 0 999", "ten million files"),
    ("seq -w 0 9999 ", "seq -w 0 99 ", "ten thousand jobs"),
    ("seq 10000000", "seq 10000", "ten million commands"),
    ("seq 1000 | parallel -N0 -j1 --delay 1", "seq 2 | parallel -N0 -j1 --delay 1", "1000 seconds"),
];

/// Programs the examples run that this machine may lack, or that reach the network: in the
/// cases' PATH (theirs and the workers') as stand-ins that print their name and arguments.
const STAND_INS: &[&str] = &[
    "apt-file",
    "cmd",
    "convert",
    "curl",
    "do_something",
    "do_step1",
    "do_step2",
    "fastq-reader",
    "host",
    "lame",
    "lynx",
    "mpg321",
    "my_command",
    "my_program",
    "mygenerator",
    "myprog",
    "oggenc",
    "ping",
    "prips",
    "process_output",
    "R",
    "sql",
    "tracefile",
    "traceroute",
    "wget",
    "xpath",
    "your_prg",
    "youtube-dl",
];

/// The files the examples read, made in the directory each case starts from.
const EXAMPLES_FILES: &str = r#"
printf '<html>FOO BAR one</html>\n' > one.html
printf '<html>two</html>\n' > two.html
printf 'log a\n' > a.log; printf 'log b\n' > b.log; mkdir destdir
printf 'jpeg 1\n' > photo1.jpg; printf 'jpeg 2\n' > photo2.jpg
printf 'x\ny\n' | gzip -n > notes.gz; printf 'z\n' | gzip -n > more.gz
mkdir sounddir; printf 'RIFF\n' > sounddir/song.wav; printf 'RIFF\n' > intro.wav
mkdir -p pkg/inner; printf 'inside\n' > pkg/inner/file.txt
tar -C pkg --mtime=@0 --owner=0 --group=0 --sort=name -czf pkg.tar.gz inner
tar -C pkg --mtime=@0 --owner=0 --group=0 --sort=name -czf foo.tgz inner
(cd pkg && zip -q -X -r ../inner.zip inner); rm -r pkg
printf 'http://example.com/a\nhttp://example.com/b\n' > urlfile
printf 'one.html\nmissing.txt\n' > file_list
printf 'line 1\nline 2\nline 3\n' > textfile
printf 'alpha\nbeta\ngamma\n' > list
printf 'x1\nx2\n' > xlist; printf 'y1\ny2\ny3\n' > ylist
printf 'localhost\n1.2.3.4\n' > hosts.txt
printf 'a\nb\nc\nd\n' > in.txt
printf 'Name\tE-mail address\nAnn\tann@example.com\nBob\tbob@example.com\n' > addressbook.tsv
printf 'in1\tout1\n in2 \t out2 \n' > table_file.tsv
printf 'foo\nbar\n' > regexps.txt
seq 300 | sed 's/7$/foo &/; s/3$/bar &/' > bigfile
printf 'a 1\nb 1\nc 2\nd 3\ne 3\n' > my.csv
printf '>seq1\nACGT\nAC\n>seq2\nGGTT\n' > file.fasta
printf '@r1/1\nACGT\n+\n!!!!\n@r1/2\nTTGC\n+\n!!!!\n' > big.fq
seq 10 > myinput
printf 'echo job 1\necho job 2\necho job 3\n' > jobs_to_run
printf 'end\n' > myfile
printf 'one.html\n' > filelist
printf 'log\n' > log; for i in 1 2 3 4 5 6 7 8 9; do printf 'log %s\n' $i > log.$i; done
printf 'hola\n' > doc.es.txt
printf 'x1 y01\n' > x1y01z1; printf 'x1 y02\n' > x1y02z1
"#;

/// GNU parallel's man pages as Debian installs them.
const TUTORIAL: &str = "/usr/share/man/man7/parallel_tutorial.7.gz";
const EXAMPLES: &str = "/usr/share/man/man7/parallel_examples.7.gz";

/// A man page's code blocks in its sections, in order: (section, lines). Sections are headed
/// by `heading` (`.SH` or `.SS`).
fn man_blocks(page: &str, heading: &str) -> Vec<(String, Vec<String>)> {
    let man = Command::new("zcat").arg(page).output().expect("zcat");
    assert!(man.status.success(), "cannot read {page}");
    let text = String::from_utf8_lossy(&man.stdout);
    let mut blocks = vec![];
    let mut section = String::new();
    let mut block: Option<Vec<String>> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix(heading) {
            section = unescape(name.trim_matches('"'));
        } else if line.starts_with(".Vb") {
            block = Some(vec![]);
        } else if line.starts_with(".Ve") {
            if let Some(lines) = block.take() {
                blocks.push((section.clone(), lines));
            }
        } else if let Some(lines) = &mut block {
            let line = unescape(line);
            lines.push(line.strip_prefix("  ").unwrap_or(&line).to_string());
        }
    }
    blocks
}

/// A line of roff as text.
fn unescape(line: &str) -> String {
    line.replace("\\&", "")
        .replace("\\-", "-")
        .replace("\\*(Aq", "'")
        .replace("\\`", "`")
        .replace("\\|", "")
        .replace("\\s-1", "")
        .replace("\\s0", "")
        .replace("\\e", "\\")
}

/// Whether a line runs GNU parallel (as a command word, not in a sentence).
fn runs_parallel(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().enumerate().any(|(i, w)| {
        *w == "parallel"
            && (i == 0 || ["|", ";", "&&", "||", "$(", "(", "time", "`"].contains(&words[i - 1]))
            || w.ends_with("$(parallel")
            || *w == "(parallel"
    })
}

/// The tutorial's setup (the files its examples read) and its cases: blocks that run GNU
/// parallel, outside "Remote execution" (they need other machines over ssh).
fn tutorial() -> (Vec<String>, Vec<String>) {
    let mut setup = vec![];
    let mut cases = vec![];
    for (section, lines) in man_blocks(TUTORIAL, ".SH ") {
        let script = lines.join("\n");
        if section == "Prerequisites" {
            if lines.iter().any(|l| l.contains(" > ")) && !script.contains("install.sh") {
                setup.push(script);
            }
            continue;
        }
        if section == "Remote execution" || !lines.iter().any(|l| runs_parallel(l)) {
            continue;
        }
        // Its own files in the case's dir (the same path for workers on this machine), not
        // in the machine's /tmp.
        cases.push(script.replace("/tmp/", "$CASE_DIR/"));
    }
    (setup, cases)
}

/// The examples page's cases: blocks that run GNU parallel, outside [`EXAMPLES_NOT_RUN`]
/// (each said as skipped), scaled by [`EXAMPLES_SCALED`], without the `$ ` of a prompt.
fn examples() -> Vec<String> {
    let mut cases = vec![];
    for (section, lines) in man_blocks(EXAMPLES, ".SS ") {
        if !lines.iter().any(|l| runs_parallel(l)) {
            continue;
        }
        let section = section.trim_start_matches("EXAMPLE:").trim();
        let mut script =
            lines.iter().map(|l| l.strip_prefix("$ ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
        if let Some((_, why)) = EXAMPLES_NOT_RUN.iter().find(|(s, _)| *s == section) {
            eprintln!("NOT RUN\t{}\t({why})", first_line(&script));
            continue;
        }
        for (text, scaled, why) in EXAMPLES_SCALED {
            if script.contains(text) {
                eprintln!("SCALED\t{text} -> {scaled}\t({why})");
                script = script.replace(text, scaled);
            }
        }
        cases.push(script.replace("/tmp/", "$CASE_DIR/"));
    }
    cases
}

/// The files a run left: each path under the case's dir, with its bytes (a dir: none).
type Left = BTreeMap<String, Option<Vec<u8>>>;

/// What one run printed, how it ended (`None`: cut off at the time limit) and, when asked
/// for, the files it left: each path under the case's dir, with its bytes (a dir: none).
#[derive(Debug, PartialEq, Eq)]
struct Ran {
    stdout: Vec<u8>,
    stderr: String,
    status: Option<i32>,
    files: Left,
}

impl Ran {
    /// What the two tools are compared on.
    fn seen(&self) -> (&[u8], Option<i32>, &Left) {
        (&self.stdout, self.status, &self.files)
    }
}

/// How long one run of a case may take.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// Where and how a lab's cases run.
struct Lab {
    /// The files each case starts with (hard-linked, or copied if the case may write them).
    files: PathBuf,
    copy: bool,
    /// Runs' dirs go here.
    scratch: PathBuf,
    /// Put first in PATH.
    path: Option<PathBuf>,
    /// Whether the files a case leaves are compared.
    compare_files: bool,
}

impl Lab {
    /// Runs `script` with bash in a fresh copy of the lab's files, `parallel` being
    /// `parallel_fn`.
    fn run(&self, script: &str, parallel_fn: &str) -> Ran {
        let name = format!("case-{}", unique());
        let dir = self.scratch.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let copy = if self.copy { "-a" } else { "-al" };
        let copied = Command::new("cp").arg(copy).arg(self.files.join(".")).arg(&dir).status();
        assert!(copied.unwrap().success(), "cannot copy the lab's files");
        let (out, err) = (
            self.scratch.join(format!("{name}.stdout")),
            self.scratch.join(format!("{name}.stderr")),
        );
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg(format!("{parallel_fn}\nexport -f parallel\n{script}"))
            .current_dir(&dir)
            .env("CASE_DIR", &dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        if let Some(path) = &self.path {
            bash.env("PATH", with_first_in_path(path));
        }
        std::os::unix::process::CommandExt::process_group(&mut bash, 0);
        let mut child = bash.spawn().expect("bash");
        let deadline = Instant::now() + CASE_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if Instant::now() >= deadline {
                // The case's own process group: bash, GNU parallel or marmotctl, their children.
                let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let files = if self.compare_files { left_in(&dir) } else { BTreeMap::new() };
        let ran = Ran {
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
            status,
            files,
        };
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&err);
        ran
    }
}

/// PATH with `dir` first.
fn with_first_in_path(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// Every path under `dir`: a file's bytes (a link's target), a dir as `None`.
fn left_in(dir: &Path) -> Left {
    let mut found = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(at) = dirs.pop() {
        let Ok(items) = std::fs::read_dir(&at) else { continue };
        for item in items.flatten() {
            let path = item.path();
            let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                dirs.push(path);
                found.insert(name, None);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                found.insert(name, Some(target.into_os_string().into_encoded_bytes()));
            } else {
                found.insert(name, Some(std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    found
}

fn first_line(script: &str) -> &str {
    script.lines().find(|l| runs_parallel(l)).unwrap_or_default()
}

/// Runs every case with both tools and judges it against `expected`: panics listing every
/// case not as expected, after a count of outcomes titled `title`.
fn judge(
    title: &str,
    lab: &Lab,
    cases: &[String],
    socket: &Path,
    expected: &[(&str, Outcome, &str)],
) {
    let gnu = "parallel() { command parallel -k \"$@\"; }".to_string();
    let ours = format!(
        "parallel() {{ {} --socket {} parallel -k \"$@\"; }}",
        bin("marmotctl").display(),
        socket.display()
    );
    let mut outcomes: BTreeMap<Outcome, Vec<String>> = BTreeMap::new();
    let mut surprises = vec![];
    let expected: BTreeMap<&str, (Outcome, &str)> =
        expected.iter().map(|(line, outcome, why)| (*line, (*outcome, *why))).collect();
    for script in cases {
        let theirs = lab.run(script, &gnu);
        let mine = lab.run(script, &ours);
        // Refused first: an example that fails with both tools is no match when ours did
        // not even try.
        let outcome = if mine.stderr.contains("not supported by marmotctl parallel") {
            Outcome::Refused
        } else if theirs.seen() == mine.seen() {
            Outcome::Same
        } else if lab.run(script, &gnu).seen() != theirs.seen() {
            Outcome::Unsteady
        } else {
            Outcome::Differs
        };
        let line = first_line(script);
        eprintln!("{outcome:?}\t{line}");
        let want = expected.get(line).map_or(Outcome::Same, |(o, _)| *o);
        // Racy: anything but refused. Differing and unsteady are one: a case that differs
        // for its reason may also find GNU parallel unsteady, and the other way round.
        let accepted = match (want, outcome) {
            (Outcome::Racy, got) => got != Outcome::Refused,
            (Outcome::Differs | Outcome::Unsteady, Outcome::Differs | Outcome::Unsteady) => true,
            (want, got) => want == got,
        };
        if !accepted {
            surprises.push(format!(
                "{line}\n  expected {want:?}, got {outcome:?}\n  GNU parallel: {:?} {:?}\n  marmotctl:    {:?} {:?} {}{}",
                theirs.status,
                where_they_part(&theirs.stdout, &mine.stdout),
                mine.status,
                where_they_part(&mine.stdout, &theirs.stdout),
                mine.stderr.lines().next().unwrap_or_default(),
                files_differ(&theirs.files, &mine.files),
            ));
        }
        outcomes.entry(outcome).or_default().push(line.to_string());
    }
    let count = |o| outcomes.get(&o).map_or(0, Vec::len);
    eprintln!(
        "{title}: {} cases, {} the same, {} refused, {} differ, {} unsteady in GNU parallel itself",
        cases.len(),
        count(Outcome::Same),
        count(Outcome::Refused),
        count(Outcome::Differs),
        count(Outcome::Unsteady),
    );
    assert!(
        surprises.is_empty(),
        "{} cases are not as listed:\n{}",
        surprises.len(),
        surprises.join("\n")
    );
}

/// `out` from the line where it parts from `other`, 300 characters of it.
fn where_they_part(out: &[u8], other: &[u8]) -> String {
    let same = out.iter().zip(other).take_while(|(a, b)| a == b).count();
    let line = out[..same].iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
    let shown: String = String::from_utf8_lossy(&out[line..]).chars().take(300).collect();
    match line {
        0 => shown,
        _ => format!("(from byte {line}) {shown}"),
    }
}

/// The paths whose contents differ between two runs' files, said in a line (or nothing).
fn files_differ(theirs: &Left, mine: &Left) -> String {
    let mut paths: Vec<&String> = theirs.keys().chain(mine.keys()).collect();
    paths.sort();
    paths.dedup();
    let differ: Vec<String> = paths
        .into_iter()
        .filter(|p| theirs.get(*p) != mine.get(*p))
        .take(8)
        .map(|p| match (theirs.contains_key(p), mine.contains_key(p)) {
            (true, false) => format!("{p} (only GNU's)"),
            (false, true) => format!("{p} (only ours)"),
            _ => format!("{p} (other bytes)"),
        })
        .collect();
    if differ.is_empty() {
        String::new()
    } else {
        format!("\n  files: {}", differ.join(", "))
    }
}

/// A coordinator in `dir` and two workers with as many slots as GNU parallel takes jobs
/// here by default (the machine's threads), `path` first in their PATH.
fn cluster(dir: &Path, path: Option<&Path>) -> (Coordinator, Vec<Proc>) {
    let c = Coordinator::start(dir);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let mut names = vec![];
    let mut workers = vec![];
    for (name, slots) in [("w1", threads.div_ceil(2)), ("w2", threads / 2)] {
        if slots == 0 {
            continue;
        }
        let token = c.token();
        let mut cmd = worker_command(&bin("marmotd"), &c.dir, &c.addr, name, slots, Some(&token));
        if let Some(path) = path {
            cmd.env("PATH", with_first_in_path(path));
        }
        workers.push(spawn_worker(cmd, &c.dir, name));
        names.push(name);
    }
    c.wait_for_workers(&names);
    (c, workers)
}

/// Whether the man page `page` (an oracle's cases) is missing, said visibly.
fn without(page: &str) -> bool {
    let missing = !Path::new(page).exists();
    if missing {
        eprintln!("SKIPPED: {page} is not installed (GNU parallel's cases); .ci/run installs it");
    }
    missing
}

#[test]
#[ignore = "the GNU parallel lab (four minutes): .ci/run runs it; by hand: cargo test -p marmot-tests --test e2e parallel::man_pages -- --ignored --nocapture"]
fn gnu_parallels_tutorial_runs_as_gnu_parallel_runs_it() {
    if without_gnu_parallel() || without(TUTORIAL) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, _w) = cluster(dir.path(), None);
    let (setup, cases) = tutorial();
    assert!(cases.len() > 100, "only {} cases found in the tutorial", cases.len());
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    // The setup in `files` itself, each block as its own case first (each must succeed).
    let lab = Lab {
        files: files.clone(),
        copy: false,
        scratch: dir.path().to_path_buf(),
        path: None,
        compare_files: false,
    };
    for script in &setup {
        let ran = lab.run(script, "");
        assert_eq!(ran.status, Some(0), "the tutorial's setup {script}: {}", ran.stderr);
    }
    let all_setup = setup.join("\n");
    let made = Command::new("bash").arg("-c").arg(&all_setup).current_dir(&files).status().unwrap();
    assert!(made.success());
    judge("GNU parallel's tutorial", &lab, &cases, &c.socket, TUTORIAL_EXPECTED);
}

#[test]
#[ignore = "the GNU parallel lab (three minutes): .ci/run runs it; by hand: cargo test -p marmot-tests --test e2e parallel::man_pages -- --ignored --nocapture"]
fn gnu_parallels_examples_run_as_gnu_parallel_runs_them() {
    if without_gnu_parallel() || without(EXAMPLES) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stand_ins = dir.path().join("stand-ins");
    std::fs::create_dir_all(&stand_ins).unwrap();
    for name in STAND_INS {
        let path = stand_ins.join(name);
        std::fs::write(&path, "#!/bin/sh\nprintf '%s' \"${0##*/}\"; printf ' %s' \"$@\"; echo\n")
            .unwrap();
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, executable).unwrap();
    }
    let (c, _w) = cluster(dir.path(), Some(&stand_ins));
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let made =
        Command::new("bash").arg("-ec").arg(EXAMPLES_FILES).current_dir(&files).status().unwrap();
    assert!(made.success(), "the examples' files");
    let cases = examples();
    assert!(cases.len() > 60, "only {} cases found in the examples", cases.len());
    let lab = Lab {
        files,
        copy: true,
        scratch: dir.path().to_path_buf(),
        path: Some(stand_ins),
        compare_files: true,
    };
    judge("GNU parallel's examples", &lab, &cases, &c.socket, EXAMPLES_EXPECTED);
}
