//! `marmotctl jobs`: the recent jobs (with `--all`, every one the journal keeps), each
//! described as the `marmotctl run` that asks for it.

use super::print;
use anyhow::Result;
use client::Client;
use proto::human;
use proto::job::{CountSource, JobSpec, PrimeMethod};
use std::process::ExitCode;

pub async fn jobs(client: &Client, all: bool, json: bool) -> Result<ExitCode> {
    let list = client.jobs(all).await?;
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
            if let Some(warning) = caught_lying(j) {
                println!("{:>5}  {warning}", "");
            }
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// What to say of a job holding results of workers later caught lying, if it does.
pub fn caught_lying(view: &proto::api::JobView) -> Option<String> {
    if view.caught_lying.is_empty() {
        return None;
    }
    let who = view.caught_lying.join(", ");
    let again = match to_run_again(&view.spec) {
        Some(_) => format!("`marmotctl rerun {}` runs it again", view.id),
        None => format!("run it again: marmotctl run {}", describe_spec(&view.spec)),
    };
    Some(format!("job {} holds results from a worker later caught lying ({who}): {again}", view.id))
}

/// The request that runs a job again, from its view's spec: pi, prime, and count over random
/// letters or a file (a count's inline text is not kept, nor are other tasks' outputs' places).
pub fn to_run_again(spec: &JobSpec) -> Option<JobSpec> {
    match spec {
        JobSpec::Pi { .. } | JobSpec::Prime { .. } => Some(spec.clone()),
        JobSpec::Count { letter, ignore_case, source } => {
            let source = match source {
                CountSource::Random { .. } => source.clone(),
                CountSource::File { path, .. } => {
                    CountSource::File { path: path.clone(), bytes: 0 }
                }
                CountSource::Text { .. } | CountSource::Inline { .. } => return None,
            };
            Some(JobSpec::Count { letter: letter.clone(), ignore_case: *ignore_case, source })
        }
        _ => None,
    }
}

/// What a job was asked to do, in the words of the `marmotctl run` that submits it.
pub fn describe_spec(spec: &JobSpec) -> String {
    let method = |m: &PrimeMethod| match m {
        PrimeMethod::Trial => "trial",
        PrimeMethod::Auto => "auto",
    };
    let fall =
        |f: &proto::job::Fall| format!("--y0 {} --v0 {} --g {} --dt {}", f.y0, f.v0, f.g, f.dt);
    match spec {
        JobSpec::Pi { samples, seed } => format!("pi {samples} --seed {seed}"),
        JobSpec::Prime { n, method: m } => format!("prime {n} --method {}", method(m)),
        JobSpec::Count { letter, ignore_case, source } => {
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
                    format!("--file {} ({})", one_line(path), human::amount(*bytes as f64, "B"))
                }
            };
            format!("count '{}' {source}{case}", letter.escape_debug())
        }
        JobSpec::Freefall { fall: f, .. } if f.drag > 0.0 => {
            format!("freefall {} --drag {}", fall(f), f.drag)
        }
        JobSpec::Freefall { fall: f, .. } => format!("freefall {}", fall(f)),
        JobSpec::Sweep { fall: f, from, to, steps } => {
            format!("freefall {} --sweep-drag {from}:{to}:{steps}", fall(f))
        }
        JobSpec::Cmd(cmd) => {
            let command = shlex::try_join(cmd.command.argv().iter().map(String::as_str))
                .unwrap_or_else(|_| cmd.command.argv().join(" "));
            let inputs = human::count(cmd.inputs.len() as u64, "input", "inputs");
            format!("cmd ({inputs}) -- {}", one_line(&command))
        }
    }
}

/// `text` on one line as typed: control characters escaped (`\n`, `\u{7}`), quotes and
/// backslashes left as they are.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_debug().to_string(),
            false => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::describe_spec;
    use proto::command::{CmdSpec, Template};
    use proto::job::{CountSource, Fall, JobSpec, PrimeMethod};

    #[test]
    fn jobs_are_described_as_run_would_ask_for_them() {
        let fall = Fall { y0: 100.0, v0: 10.0, g: 9.81, dt: 0.5, drag: 0.0 };
        let count = |source| JobSpec::Count { letter: "e".into(), ignore_case: true, source };
        for (spec, words) in [
            (JobSpec::Pi { samples: 1000, seed: 7 }, "pi 1000 --seed 7"),
            (JobSpec::Prime { n: 97, method: PrimeMethod::Auto }, "prime 97 --method auto"),
            (JobSpec::Prime { n: 9, method: PrimeMethod::Trial }, "prime 9 --method trial"),
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
            (JobSpec::Freefall { fall, points: 0 }, "freefall --y0 100 --v0 10 --g 9.81 --dt 0.5"),
            (
                JobSpec::Freefall { fall: Fall { drag: 0.01, ..fall }, points: 0 },
                "freefall --y0 100 --v0 10 --g 9.81 --dt 0.5 --drag 0.01",
            ),
            (
                JobSpec::Sweep { fall, from: 0.0, to: 0.5, steps: 3 },
                "freefall --y0 100 --v0 10 --g 9.81 --dt 0.5 --sweep-drag 0:0.5:3",
            ),
        ] {
            assert_eq!(describe_spec(&spec), words);
        }
        let control = JobSpec::Count {
            letter: "\u{7}".into(),
            ignore_case: false,
            source: CountSource::Text { text: "x".into() },
        };
        assert_eq!(describe_spec(&control), "count '\\u{7}' --text (1 character)");
    }

    #[test]
    fn a_command_reads_as_typed_with_its_quotes_and_only_controls_escaped() {
        let cmd = |argv: &[&str]| {
            let command = Template::new(argv.iter().map(|a| a.to_string()).collect()).unwrap();
            JobSpec::Cmd(Box::new(CmdSpec::new(command, vec!["a".into(), "b".into()])))
        };
        assert_eq!(describe_spec(&cmd(&["gzip", "-9", "{}"])), "cmd (2 inputs) -- gzip -9 '{}'");
        assert_eq!(
            describe_spec(&cmd(&["sh", "-c", "echo \"$1\"\nexit"])),
            "cmd (2 inputs) -- sh -c 'echo \"$1\"\\nexit'"
        );
    }
}
