//! `marmotctl parallel`: a GNU parallel command line run on the cluster. The line is read
//! here (`crate::parallel`), each job's line of shell code built here as GNU parallel builds
//! it, and the jobs run as the units of a command job, each `bash -c LINE` on a worker, with
//! `PARALLEL_SEQ` set; output, joblog and exit status as `run cmd` has them, shown as GNU
//! parallel shows them (`--tag`, `-v`, no words about failed jobs but the exit status).

use super::cmd::{open_joblog, run_spec, upload, ResultsTo, Shown, Writer};
use super::cmd::{Found, UPLOAD_QUEUE};
use crate::parallel::pipe;
use crate::parallel::results::{Kept, Table};
use crate::parallel::{self, Slots, Verbose};
use crate::saving::{Rows, Saving};
use anyhow::{bail, Context, Result};
use client::{Client, Submit};
use proto::command::placed::Placed;
use proto::command::spool::SpoolError;
use proto::command::FileRef;
use proto::command::{joblog, CmdSpec, Template};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, Write};
use std::process::ExitCode;
use tokio::sync::mpsc;

/// GNU parallel's exit status for an error of its own (a bad option, an unreadable source).
pub const ERROR_STATUS: u8 = 255;

/// The status of a process killed by SIGPIPE, as a shell reports it.
const BROKEN_PIPE_STATUS: u8 = 128 + 13;

pub async fn run(client: &Client, argv: Vec<String>, how: Submit) -> Result<ExitCode> {
    match run_line(client, argv, how).await {
        Ok(code) => Ok(code),
        // What reads the output (`| head`, --bar's reader) is gone: the run stops, its job
        // cancelled, silently, as GNU parallel stops (killed by SIGPIPE).
        Err(e) if broken_pipe(&e) => Ok(ExitCode::from(BROKEN_PIPE_STATUS)),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "marmotctl: error: {e:#}");
            Ok(ExitCode::from(ERROR_STATUS))
        }
    }
}

/// Whether `error` is a write to a pipe nobody reads any more.
fn broken_pipe(error: &anyhow::Error) -> bool {
    let broken = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        let followed = match cause.downcast_ref::<client::follow::FollowError>() {
            Some(client::follow::FollowError::Output(SpoolError::Io(e))) => Some(e),
            _ => None,
        };
        cause.downcast_ref::<std::io::Error>().or(followed).is_some_and(broken)
    })
}

async fn run_line(client: &Client, argv: Vec<String>, how: Submit) -> Result<ExitCode> {
    let mut request =
        tokio::task::spawn_blocking(move || parallel::read(&argv, &mut std::io::stdin().lock()))
            .await
            .context("reading the command line failed")??;
    if let Some((text, status)) = &request.settings.print {
        print!("{text}");
        return Ok(ExitCode::from(*status));
    }
    let pipe = request.pipe.take();
    // -j: a number of slots, or one relative to the cluster's (asked of the coordinator).
    let relative = !matches!(request.settings.slots, None | Some(Slots::Count(_)));
    let per_slot = pipe.as_ref().is_some_and(|pipe| pipe.per_slot.is_some());
    let cluster = match relative || request.needs_slots() || per_slot {
        true => Some(client.status().await?.slots),
        false => None,
    };
    let max_slots = match request.settings.slots {
        None | Some(Slots::Count(0)) => None,
        Some(asked) => Some(asked.of(cluster.unwrap_or(1))),
    };
    // The job slots -m and -X spread their arguments over, as GNU parallel's.
    let slots = max_slots.or(cluster).unwrap_or(1);
    // Under --pipe, a job per block: the blocks are read (and sent, unless in a dry run)
    // before the jobs are made.
    let blocks = match &pipe {
        Some(pipe) => {
            let blocks = read_blocks(client, pipe, slots, !request.settings.dry_run).await?;
            let value = if pipe.as_file { parallel::BLOCK_FILE_MARK } else { "" };
            // A job per block, or under --round-robin one per job slot.
            let blocks = match pipe.round_robin {
                true => dealt(blocks, slots)?,
                false => blocks.into_iter().map(|block| vec![block]).collect(),
            };
            request.records = vec![vec![value.to_string()]; blocks.len()];
            Some(blocks)
        }
        None => None,
    };
    let settings = &request.settings;
    let mut jobs = match settings.retry_failed {
        true => logged_jobs(settings.joblog.as_deref())?,
        false => request.jobs(slots)?,
    };
    if pipe.as_ref().is_some_and(|pipe| pipe.as_file) {
        for job in &mut jobs {
            job.line = job.line.replace(parallel::BLOCK_FILE_MARK, "$PARALLEL_TMP");
        }
    }
    let tags = match &settings.tag {
        None => None,
        Some(tagstring) => Some(tags(&jobs, tagstring.as_ref())?),
    };
    if settings.dry_run {
        // Jobs a perl expression skip()s are printed too, as GNU parallel prints them.
        for (n, job) in jobs.iter().enumerate() {
            match &tags {
                Some(tags) => println!("{}\t{}", tags[n], job.line),
                None => println!("{}", job.line),
            }
            // -t says what runs on stderr, even when nothing does.
            if settings.verbose == Verbose::Stderr {
                eprintln!("{}", job.line);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut command: Vec<String> = vec![];
    if let Some(nice) = settings.nice {
        command.extend(["nice".into(), "-n".into(), nice.to_string()]);
    }
    command.extend(["env", "PARALLEL_SEQ={#}", "bash", "-c"].map(String::from));
    // The job's line is "$0" of a wrapper, when one is needed.
    let wrapper = match pipe.as_ref().map(|pipe| (pipe.as_file, pipe.fifo)) {
        // --cat: $PARALLEL_TMP names the block.
        Some((true, false)) => Some(format!("PARALLEL_TMP=\"$PWD/{BLOCK}\" exec bash -c \"$0\"")),
        // --fifo: a named pipe the block is written into (the writer stops with the job).
        Some((true, true)) => Some(format!(
            "export PARALLEL_TMP=\"$PWD/.marmot-fifo\"; mkfifo \"$PARALLEL_TMP\" || exit 255; \
             cat {BLOCK} > \"$PARALLEL_TMP\" & bash -c \"$0\"; status=$?; rm -f \
             \"$PARALLEL_TMP\"; exit $status"
        )),
        // --round-robin: the job's blocks one after another on its stdin.
        _ if pipe.as_ref().is_some_and(|pipe| pipe.round_robin) => {
            Some(format!("cat {BLOCK}-* | bash -c \"$0\""))
        }
        _ => None,
    };
    // --load, --memfree, --noswap: waited for on the worker first.
    let wrapper = match (settings.gate.shell(), wrapper) {
        (Some(gate), wrapper) => {
            Some(format!("{gate}; {}", wrapper.as_deref().unwrap_or("exec bash -c \"$0\"")))
        }
        (None, wrapper) => wrapper,
    };
    command.extend(wrapper);
    command.push("{}".into());
    let mut env = vec![];
    for name in &settings.env {
        proto::command::spec::check_env_key(name).map_err(anyhow::Error::msg)?;
        if name == "_" {
            bail!("--env _ (every variable but those in ~/.parallel/ignored_vars) is not supported by marmotctl parallel: name each variable");
        }
        let function = format!("BASH_FUNC_{name}%%");
        match (std::env::var(name), std::env::var(&function)) {
            (Ok(value), _) => env.push((name.clone(), value)),
            (_, Ok(body)) => env.push((function, body)),
            _ => bail!("--env {name}: no such variable or exported function is set here"),
        }
    }
    // Functions bash exported reach the units, as they reach GNU parallel's jobs.
    for (key, value) in std::env::vars_os() {
        let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else { continue };
        if key.starts_with("BASH_FUNC_")
            && key.ends_with("%%")
            && !env.iter().any(|(k, _)| k == key)
        {
            proto::command::spec::check_env_key(key).map_err(anyhow::Error::msg)?;
            env.push((key.to_string(), value.to_string()));
        }
    }
    // Variables set here that the lines or those functions mention go too: a job that
    // reads "$VAR" reads what it would read under GNU parallel.
    let code = jobs.iter().map(|job| job.line.as_str()).chain(env.iter().map(|(_, v)| v.as_str()));
    let mentioned = parallel::mentioned::to_send(code, &env, |name| {
        std::env::var(name).ok().filter(|_| proto::command::spec::check_env_key(name).is_ok())
    });
    env.extend(mentioned);
    let resume = match (settings.resume, settings.resume_failed || settings.retry_failed) {
        (true, _) => Some(joblog::Resume::Logged),
        (_, true) => Some(joblog::Resume::Succeeded),
        _ => None,
    };
    if resume.is_some() && settings.joblog.is_none() {
        bail!("--resume and --resume-failed need --joblog FILE");
    }
    let (joblog, logged) = match &settings.joblog {
        Some(path) => open_joblog(path, resume, jobs.len() as u64)?,
        None => (None, vec![]),
    };
    // Not run: those the joblog shows done, and those a perl expression skip()s (each
    // counted as failed, with its joblog line, unless the joblog shows it done).
    let done = |n: &u64| logged.iter().any(|&(start, end)| (start..end).contains(n));
    let skipped: Vec<u64> =
        (0..jobs.len() as u64).filter(|&n| jobs[n as usize].skip && !done(&n)).collect();
    // --retry-failed: numbers the joblog does not have are no jobs.
    let absent = jobs.iter().filter(|job| job.args.is_empty() && settings.retry_failed);
    let absent: Vec<u64> = absent.map(|job| job.seq - 1).collect();
    let skip = proto::command::spec::ranges(
        logged
            .iter()
            .flat_map(|&(start, end)| start..end)
            .chain(skipped.iter().copied())
            .chain(absent),
    );
    // Files the jobs' arguments and command lines name travel with them, uploaded as they
    // are hashed; under --pipe, each job's block.
    let here = std::env::current_dir().context("cannot tell the current dir")?;
    // What each job was given from here (not its block): removed here when its unit removes
    // it, as a local run would.
    let (placed, given) = match blocks {
        Some(blocks) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            let mtime_ns = now.map_or(0, |t| t.as_nanos() as i64);
            let placed = |file| Placed { file, mode: 0o600, mtime_ns };
            // The files the command names (`grep -f - bigfile`) go with every block.
            let line = jobs.first().map(parallel::files::names_of).into_iter().collect();
            let named = found_and_uploaded(client, &here, line).await?;
            let named = named.into_iter().next().unwrap_or_default();
            let with_block = |files: Vec<_>| {
                files.into_iter().map(placed).chain(named.iter().cloned()).collect()
            };
            let given = vec![named.clone(); blocks.len()];
            (blocks.into_iter().map(with_block).collect(), given)
        }
        None => {
            let names = jobs.iter().map(parallel::files::names_of).collect();
            let placed: Vec<Vec<Placed>> = found_and_uploaded(client, &here, names).await?;
            (placed.clone(), placed)
        }
    };
    let stdin = pipe.as_ref().filter(|pipe| !pipe.as_file && !pipe.round_robin);
    let stdin = stdin.map(|_| BLOCK.to_string());
    let saving = saving_of(settings, &jobs, &request.columns)?;
    let mut inputs = proto::command::inputs::Inputs::default();
    for job in jobs {
        inputs.push(job.line)?;
    }
    let spec = CmdSpec {
        command: Template::new(command)?,
        inputs: inputs.finish()?,
        inputs_file: None,
        input_files: vec![],
        files: vec![],
        env,
        timeout_ms: match settings.timeout {
            Some(parallel::Timeout::After(t)) => Some(t.as_millis().max(1) as u64),
            _ => None,
        },
        timeout_percent: match settings.timeout {
            Some(parallel::Timeout::OfMedian(pct)) => Some(pct),
            _ => None,
        },
        delay_ms: settings.delay.map(|d| d.as_millis().max(1) as u64),
        // GNU parallel's --retries counts the tries; marmot's the tries after the first.
        retries: settings.retries.saturating_sub(1),
        halt: settings.halt,
        slots_per_unit: 1,
        max_slots,
        keep_order: settings.keep_order,
        results: false,
        skip,
        placed,
        bring_back: true,
        stdin,
        term_seq: settings.term_seq.clone(),
    };
    if spec.units_to_run() == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    spec.check().map_err(anyhow::Error::msg)?;
    let verbose = match settings.verbose {
        Verbose::No => None,
        Verbose::Stdout => Some(true),
        Verbose::Stderr => Some(false),
    };
    let progress = settings.progress;
    let shown =
        Shown { input_is_command: true, tags, verbose, quiet: true, skipped, saving, progress };
    let out = Writer::new(
        &spec,
        shown,
        Some(ResultsTo::InPlace(here, std::sync::Arc::new(given))),
        joblog,
    )?;
    run_spec(client, spec, out, how, false).await
}

/// The name of a `--pipe` job's block in its dir (its stdin, or `$PARALLEL_TMP`).
const BLOCK: &str = ".marmot-block";

/// How many blocks may wait for their upload: memory holds at most this many and the one
/// being read.
const BLOCKS_QUEUED: usize = 2;

/// `--pipe`, `--pipepart`: the input cut into blocks, each hashed and (with `upload`) sent
/// to the coordinator's store as it is cut; their names there, in order.
async fn read_blocks(
    client: &Client,
    pipe: &parallel::Pipe,
    slots: u32,
    upload: bool,
) -> Result<Vec<FileRef>> {
    let (cutting, parts) = (pipe.cutting.clone(), pipe.parts.clone());
    let per_slot = pipe.per_slot;
    let (tx, mut rx) = mpsc::channel::<(bytes::Bytes, String)>(BLOCKS_QUEUED);
    let reading = tokio::task::spawn_blocking(move || -> Result<Vec<FileRef>> {
        let mut named = vec![];
        let mut each = |block: Vec<u8>| -> Result<()> {
            let sha256 = hex::encode(Sha256::digest(&block));
            named.push(FileRef {
                name: BLOCK.into(),
                sha256: sha256.clone(),
                size: block.len() as u64,
            });
            if upload && tx.blocking_send((block.into(), sha256)).is_err() {
                bail!("the blocks' upload stopped");
            }
            Ok(())
        };
        if parts.is_empty() {
            for block in pipe::Blocks::new(std::io::stdin().lock(), cutting)? {
                each(block?)?;
            }
            return Ok(named);
        }
        for_each_part(&parts, &cutting, per_slot.map(|n| (n, slots)), &mut each)?;
        Ok(named)
    });
    // Owns the way in: a failed upload drops it, which stops the reading.
    let uploading = async move {
        let mut seen = std::collections::HashSet::new();
        while let Some((bytes, sha256)) = rx.recv().await {
            if seen.insert(sha256.clone()) && !client.has_file(&sha256).await? {
                client.upload_bytes(bytes, &sha256).await.context("cannot upload a block")?;
            }
        }
        anyhow::Ok(())
    };
    let (read, uploaded) = tokio::join!(reading, uploading);
    uploaded?;
    read.context("reading the input failed")?
}

/// `--round-robin`: the blocks dealt to `slots` jobs in turn (fewer if there are fewer
/// blocks), each job's named to sort in the order it reads them.
fn dealt(blocks: Vec<FileRef>, slots: u32) -> Result<Vec<Vec<FileRef>>> {
    let jobs = (slots as usize).max(1).min(blocks.len());
    let mut dealt: Vec<Vec<FileRef>> = vec![vec![]; jobs];
    for (n, mut block) in blocks.into_iter().enumerate() {
        let job = &mut dealt[n % jobs];
        block.name = format!("{BLOCK}-{:06}", job.len());
        job.push(block);
    }
    let most = proto::command::placed::MAX_PLACED_PER_UNIT;
    if let Some(blocks) = dealt.first().map(Vec::len).filter(|&n| n > most) {
        bail!(
            "--round-robin: each job would read {blocks} blocks, and a job reads at most \
             {most}: give a larger --block (or more job slots with -j)"
        );
    }
    Ok(dealt)
}

/// `--pipepart`: each file's parts (its header before each), in order, to `each`; with
/// `per_slot` `(N, slots)`, parts of all files' size over N times the slots.
fn for_each_part(
    parts: &[std::path::PathBuf],
    cutting: &pipe::Cutting,
    per_slot: Option<(u64, u32)>,
    each: &mut dyn FnMut(Vec<u8>) -> Result<()>,
) -> Result<()> {
    let size_of = |path: &std::path::PathBuf| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let block = match per_slot {
        Some((n, slots)) => {
            let total: u64 = parts.iter().map(size_of).sum::<Result<u64>>()?;
            1 + total / u64::from(slots.max(1)) / n.max(1)
        }
        None => cutting.block as u64,
    };
    for path in parts {
        let shown = path.display();
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {shown}"))?;
        if !file.metadata()?.is_file() {
            bail!("--pipepart only works on files one can seek in, and {shown} is not one");
        }
        let size = size_of(path)?;
        let header = match &cutting.header {
            Some(header) => {
                pipe::read_header(&mut file, &mut vec![], header, cutting.block.min(1 << 20))?
            }
            None => vec![],
        };
        let cuts =
            pipe::part_positions(&mut file, size, block, header.len() as u64, &cutting.separators)?;
        for pair in cuts.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            let mut part = header.clone();
            file.seek(std::io::SeekFrom::Start(start))?;
            (&mut file).take(end - start).read_to_end(&mut part)?;
            each(part)?;
        }
    }
    Ok(())
}

/// The files each job's words (`names`) name under `dir`, uploaded as they are found.
async fn found_and_uploaded(
    client: &Client,
    dir: &std::path::Path,
    names: Vec<Vec<String>>,
) -> Result<Vec<Vec<Placed>>> {
    let (found, to_upload) = mpsc::channel(UPLOAD_QUEUE);
    let dir = dir.to_path_buf();
    let finding = tokio::task::spawn_blocking(move || placed_of(&names, &dir, &found));
    let (placed, uploaded) = tokio::join!(finding, upload(client, to_upload));
    let placed = placed.context("looking for the jobs' files failed")??;
    uploaded?;
    Ok(placed)
}

/// The files each job's words (`args`: its arguments and its line's words) name under `dir`,
/// or none at all when no job names one; each is handed to `found` to upload once hashed.
fn placed_of(
    args: &[Vec<String>],
    dir: &std::path::Path,
    found: &mpsc::Sender<Found>,
) -> Result<Vec<Vec<Placed>>> {
    let mut known = None;
    let mut upload = |path, file: &proto::command::FileRef| {
        // Nobody takes it only when uploading has failed: that is said after.
        let _ = found.blocking_send((path, file.clone()));
    };
    let placed =
        args.iter().map(|args| parallel::files::of_args(args, dir, &mut known, &mut upload));
    let placed = placed.collect::<Result<Vec<_>>>()?;
    if let Some(known) = known {
        known.save();
    }
    let most = proto::command::placed::MAX_PLACED_PER_UNIT;
    if let Some(at) = placed.iter().position(|files| files.len() > most) {
        bail!(
            "job {} names more than {most} files and dirs (a dir counts with all it holds); a \
             job may take at most {most} with it: give -n {most} (or less), or name smaller \
             dirs, so that each job names fewer",
            at + 1
        );
    }
    Ok(match placed.iter().all(Vec::is_empty) {
        true => vec![],
        false => placed,
    })
}

/// Each job's `--tag` (its arguments) or `--tagstring` (filled in, perl and all).
fn tags(
    jobs: &[parallel::jobs::Job],
    tagstring: Option<&parallel::template::Template>,
) -> Result<Vec<String>> {
    match tagstring {
        None => Ok(jobs.iter().map(|job| job.args.join(" ")).collect()),
        Some(template) => filled_in(jobs, template),
    }
}

/// A text with replacement strings (`--tagstring`, `--results`) filled in for each job, perl
/// and all, unquoted.
fn filled_in(
    jobs: &[parallel::jobs::Job],
    template: &parallel::template::Template,
) -> Result<Vec<String>> {
    let mut perl = match template.has_perl() {
        true => Some(parallel::perl::Perl::start()?),
        false => None,
    };
    let total = jobs.len() as u64;
    let mut filled = Vec::with_capacity(jobs.len());
    for job in jobs {
        let args: Vec<&str> = job.args.iter().map(String::as_str).collect();
        let values = match &mut perl {
            Some(perl) => template.evaluate(perl, &args, job.seq, total)?,
            None => Default::default(),
        };
        filled.push(template.tag(&args, job.seq, &values));
    }
    Ok(filled)
}

/// Where each job's output is kept instead of printed (`--results`, `--files`), if anywhere.
fn saving_of(
    settings: &parallel::Settings,
    jobs: &[parallel::jobs::Job],
    columns: &[String],
) -> Result<Option<Saving>> {
    let table = settings.results.as_ref().and_then(|(text, _)| Some((text, Table::of(text)?)));
    if let Some((text, table)) = table {
        let path = std::path::PathBuf::from(text);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create the --results table {text}"))?;
        let values: Vec<Vec<String>> = jobs.iter().map(|job| job.args.clone()).collect();
        let most = values.iter().map(Vec::len).max().unwrap_or(0);
        file.write_all(&table.header(most, columns))?;
        let rows = Rows { table, path, file, values };
        let tmpdir = settings.tmpdir.clone().unwrap_or_else(std::env::temp_dir);
        let print_names = settings.files;
        return Ok(Some(Saving { kept: None, table: Some(rows), print_names, tmpdir }));
    }
    let kept = match &settings.results {
        None => None,
        Some((text, template)) if template.is_plain() => Some(
            jobs.iter()
                .map(|job| {
                    let args: Vec<&str> = job.args.iter().map(String::as_str).collect();
                    Kept::of(text, true, columns, &args)
                })
                .collect(),
        ),
        Some((_, template)) => Some(
            filled_in(jobs, template)?
                .iter()
                .map(|name| Kept::of(name, false, columns, &[]))
                .collect(),
        ),
    };
    if kept.is_none() && !settings.files {
        return Ok(None);
    }
    let tmpdir = settings.tmpdir.clone().unwrap_or_else(std::env::temp_dir);
    Ok(Some(Saving { kept, table: None, print_names: settings.files, tmpdir }))
}

/// `--retry-failed`: a job for each unit the joblog has a line of, its command the logged
/// one (the command line's own and its sources are not read); a number it skips has a job
/// with no arguments, which does not run.
fn logged_jobs(joblog: Option<&std::path::Path>) -> Result<Vec<parallel::jobs::Job>> {
    let Some(path) = joblog else { bail!("--retry-failed needs --joblog FILE (the one to retry)") };
    let shown = path.display();
    let log = match std::fs::read(path) {
        // Nothing to retry: the joblog is begun, as GNU parallel begins it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let header = format!("{}\n", joblog::HEADER);
            std::fs::write(path, header).with_context(|| format!("cannot create {shown}"))?;
            return Ok(vec![]);
        }
        read => read.with_context(|| format!("cannot read the joblog {shown}"))?,
    };
    let logged = joblog::last_lines(&log[..])
        .map_err(|e| anyhow::anyhow!("the joblog {shown} cannot be retried from: {e}"))?;
    let last = logged.keys().next_back().copied().unwrap_or(0);
    Ok((1..=last)
        .map(|seq| {
            let command = logged.get(&seq).map(|l| l.command.clone());
            let args = command.iter().cloned().collect();
            parallel::jobs::Job { seq, line: command.unwrap_or_default(), args, skip: false }
        })
        .collect())
}
