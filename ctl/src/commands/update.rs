//! `marmotctl update`: upload the binaries, roll them out, and, when the coordinator replaced
//! itself, wait for it to come back on the new binary.

use super::{print, short_sha};
use anyhow::{bail, Context, Result};
use client::Client;
use proto::api::{MachineUpdate, UpdateRequest, UpdateStatus};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long a restarting coordinator may take to answer again.
const COORDINATOR_BACK: Duration = Duration::from_secs(60);

pub async fn run(
    client: &Client,
    binaries: &[PathBuf],
    mut request: UpdateRequest,
    json: bool,
) -> Result<ExitCode> {
    for path in binaries {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file: name a marmotd binary", path.display());
        }
        let info = client
            .upload_binary(path)
            .await
            .with_context(|| format!("{} was not taken", path.display()))?;
        if !json {
            eprintln!(
                "uploaded {}: marmotd {} for {} ({})",
                path.display(),
                info.version,
                info.arch,
                short_sha(&info.sha256)
            );
        }
        request.binaries.push(info.sha256);
    }
    let asked = request.parallel.unwrap_or(1);
    let mut report = client.update(&request).await?;
    if let Some(coordinator) = &mut report.coordinator {
        if coordinator.status == UpdateStatus::Restarting {
            wait_for_coordinator(client, coordinator).await;
        }
    }
    print(json, &report, || {
        for line in report.workers.iter().chain(&report.coordinator) {
            println!("{}", describe(line));
        }
        let updated = report.workers.iter().filter(|w| w.status == UpdateStatus::Updated).count();
        println!(
            "{updated} of {} updated, {} at a time, in {:.2} s ({} sent at {})",
            proto::human::count(report.workers.len() as u64, "worker", "workers"),
            report.parallel,
            report.seconds,
            proto::human::amount(report.bytes_sent as f64, "B"),
            proto::human::rate(report.bytes_per_second, "B")
        );
        if report.parallel < asked {
            println!("{}", fewer_at_a_time(asked, report.parallel, report.workers.len()));
        }
    });
    let all_good = report.workers.iter().chain(&report.coordinator).all(|m| m.status.is_success());
    Ok(if all_good { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Waits until the coordinator answers on its new binary, and records how that went.
async fn wait_for_coordinator(client: &Client, line: &mut MachineUpdate) {
    let deadline = tokio::time::Instant::now() + COORDINATOR_BACK;
    let mut last_seen = String::new();
    while tokio::time::Instant::now() < deadline {
        // The socket disappears while the coordinator restarts: errors mean "not yet".
        if let Ok(status) = client.status().await {
            if status.binary_sha256 == line.to_sha256 {
                line.status = UpdateStatus::Updated;
                line.version = status.version;
                return;
            }
            last_seen = status.binary_sha256;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    line.status =
        if last_seen == line.from_sha256 { UpdateStatus::RolledBack } else { UpdateStatus::Failed };
    line.detail = Some(format!("not back on the new binary within {COORDINATOR_BACK:?}"));
}

/// Why a rollout updated fewer workers at a time than asked.
fn fewer_at_a_time(asked: u32, used: u32, workers: usize) -> String {
    format!(
        "(asked for {asked} at a time, used {used}: at most a quarter of the {} are \
         updated at once, so the rest keep computing)",
        proto::human::count(workers as u64, "worker", "workers")
    )
}

fn describe(m: &MachineUpdate) -> String {
    let what = match m.status {
        UpdateStatus::Updated => {
            format!(
                "updated      {} → {} ({})",
                short_sha(&m.from_sha256),
                short_sha(&m.to_sha256),
                m.version
            )
        }
        UpdateStatus::Current => format!("current      {}", short_sha(&m.to_sha256)),
        UpdateStatus::Skipped => format!("skipped      {}", m.detail.as_deref().unwrap_or("")),
        UpdateStatus::Failed => format!("failed       {}", m.detail.as_deref().unwrap_or("")),
        UpdateStatus::RolledBack => {
            format!("rolled back  {}", m.detail.as_deref().unwrap_or(""))
        }
        UpdateStatus::Restarting => "restarting".to_string(),
    };
    format!("{:<16} {what}", m.name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn says_why_fewer_ran_at_once() {
        assert_eq!(
            super::fewer_at_a_time(4, 1, 3),
            "(asked for 4 at a time, used 1: at most a quarter of the 3 workers are updated at \
             once, so the rest keep computing)"
        );
    }
}
