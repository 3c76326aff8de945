//! Operations on the fleet of workers rather than on jobs: ping, bench, exit, revoke.
//!
//! Each asks the driver for its targets (names and connections), does its network I/O on
//! its own, and hands back to the driver only what the state keeps (bench scores, draining).

use super::driver::Cluster;
use super::error::ClusterError;
use super::registry::NotConnected;
use crate::transport::codes;
use anyhow::{anyhow, bail, Context, Result};
use proto::api::{BenchResult, PingResult, RevokeReply};
use proto::wire::{BenchReply, CoordinatorOpen, Pong};
use proto::{MessageReader, MessageWriter};
use std::time::{Duration, Instant};

/// A worker to talk to: its name, connection and slots.
struct Target {
    name: String,
    conn: quinn::Connection,
    slots: u32,
}

/// The named workers (all when `names` is empty).
async fn targets(cluster: &Cluster, names: Vec<String>) -> Result<Vec<Target>, ClusterError> {
    let selected = cluster
        .call(move |s, _| {
            let ids = s.registry.select(&names)?;
            Ok(ids
                .into_iter()
                .filter_map(|id| s.registry.get(id))
                .map(|w| Target {
                    name: w.hello.name.clone(),
                    conn: w.conn.clone(),
                    slots: w.hello.slots,
                })
                .collect())
        })
        .await?;
    selected.map_err(|missing| not_connected(cluster, missing))
}

/// Why a named worker cannot be reached: it is no worker of this cluster, or one that is away.
fn not_connected(cluster: &Cluster, NotConnected(name): NotConnected) -> ClusterError {
    if cluster.facts().authority.is_member(&name) {
        ClusterError::away(&name)
    } else {
        ClusterError::unknown_worker(&name)
    }
}

/// Whether `name` is a worker this cluster knows: one that holds its certificate, is
/// connected, or left lines in its log book; the one "unknown worker" answer if not.
pub async fn known(cluster: &Cluster, name: String) -> Result<(), ClusterError> {
    if cluster.facts().authority.is_member(&name) {
        return Ok(());
    }
    let shown = name.clone();
    let seen = cluster
        .call(move |s, _| !s.registry.ids_named(&name).is_empty() || s.logs.has_source(&name))
        .await?;
    if seen {
        Ok(())
    } else {
        Err(ClusterError::unknown_worker(&shown))
    }
}

/// Pings the named workers (all when `names` is empty), each bounded by `timeout`.
pub async fn ping(
    cluster: &Cluster,
    names: Vec<String>,
    timeout: Duration,
) -> Result<Vec<PingResult>, ClusterError> {
    let pings = targets(cluster, names).await?.into_iter().map(|t| async move {
        let worker = t.name;
        match tokio::time::timeout(timeout, ping_one(&t.conn)).await {
            Ok(Ok(rtt)) => {
                PingResult { worker, rtt_ms: Some(rtt.as_secs_f64() * 1e3), error: None }
            }
            Ok(Err(e)) => PingResult { worker, rtt_ms: None, error: Some(e.to_string()) },
            Err(_) => PingResult { worker, rtt_ms: None, error: Some("timeout".into()) },
        }
    });
    let mut results = futures_util::future::join_all(pings).await;
    results.sort_by(|a, b| a.worker.cmp(&b.worker));
    Ok(results)
}

/// Runs the benchmark on every slot of every worker at once for `length`, and keeps the
/// scores for chunk sizing (in the state, and in the state dir across restarts).
pub async fn bench(cluster: &Cluster, length: Duration) -> Result<Vec<BenchResult>, ClusterError> {
    let runs = targets(cluster, vec![]).await?.into_iter().map(|t| async move {
        // Bounded: a worker that never answers must not hold the whole bench.
        let limit = length + Duration::from_secs(10);
        let outcome = tokio::time::timeout(limit, bench_one(&t.conn, length, t.slots)).await;
        (t.name, outcome.map_err(|_| anyhow!("no answer in time")).and_then(|r| r))
    });
    let outcomes = futures_util::future::join_all(runs).await;
    let mut results: Vec<BenchResult> = vec![];
    let mut scores = vec![];
    for (worker, outcome) in outcomes {
        results.push(match outcome {
            Ok(rates) => {
                scores.push((worker.clone(), rates.clone()));
                BenchResult {
                    worker,
                    score: Some(rates.iter().sum::<f64>() / 1e9),
                    slot_scores: rates.iter().map(|r| r / 1e9).collect(),
                    error: None,
                }
            }
            Err(e) => BenchResult {
                worker,
                score: None,
                slot_scores: vec![],
                error: Some(format!("{e:#}")),
            },
        });
    }
    let all = cluster
        .call(move |s, _| {
            for (name, rates) in scores {
                s.registry.set_rates(name, rates);
            }
            s.jobs.set_claimed_speeds(s.registry.claimed_speeds());
            s.registry.slot_rates().clone()
        })
        .await?;
    let state_dir = cluster.facts().state_dir.clone();
    // A small file, written off the async runtime.
    let _ = tokio::task::spawn_blocking(move || super::scores::save(&state_dir, &all)).await;
    results.sort_by(|a, b| a.worker.cmp(&b.worker));
    Ok(results)
}

/// Tells the named workers (all when `names` is empty) to hand back their chunks and exit.
pub async fn exit(cluster: &Cluster, names: Vec<String>) -> Result<Vec<String>, ClusterError> {
    let told = cluster
        .call(move |s, now| s.tell_exit(now, &names))
        .await?
        .map_err(|missing| not_connected(cluster, missing))?;
    for name in &told {
        tracing::info!("told worker '{name}' to exit");
    }
    Ok(told)
}

/// Revokes the certificate of the worker `name` and closes its live session, if any.
pub async fn revoke(cluster: &Cluster, name: String) -> Result<RevokeReply, ClusterError> {
    let revoked = cluster
        .facts()
        .authority
        .revoke_worker(&name)
        .map_err(|e| ClusterError::Internal(format!("cannot record the revocation: {e}")))?
        .ok_or_else(|| ClusterError::unknown_worker(&name))?;
    let live = {
        let name = name.clone();
        cluster
            .call(move |s, _| {
                let ids = s.registry.ids_named(&name);
                for id in &ids {
                    if let Some(w) = s.registry.get(*id) {
                        w.conn.close(codes::REFUSED, b"certificate revoked");
                    }
                }
                !ids.is_empty()
            })
            .await?
    };
    tracing::warn!("revoked the certificate of worker '{name}'");
    Ok(RevokeReply { worker: name, key_sha256: revoked.key_sha256, disconnected: live })
}

/// Lets a quarantined worker take chunks again.
pub async fn clear(cluster: &Cluster, name: String) -> Result<(), ClusterError> {
    known(cluster, name.clone()).await?;
    let shown = name.clone();
    cluster.try_call(move |s, now| s.jobs.clear(now, &name)).await?;
    tracing::info!("cleared worker '{shown}': it takes chunks again");
    Ok(())
}

/// A bench score above this (pi samples per second on one slot, some 50 times what a fast
/// core does) is a lie or a fault, not a machine.
pub const MAX_SLOT_RATE: f64 = 1e11;

/// Whether `rates` can be the bench scores of a worker with `slots` slots.
pub fn check_scores(rates: &[f64], slots: u32) -> Result<(), String> {
    if rates.len() != slots as usize {
        return Err(format!("{} scores for {slots} slots", rates.len()));
    }
    if let Some(bad) = rates.iter().find(|r| !(r.is_finite() && **r > 0.0 && **r <= MAX_SLOT_RATE))
    {
        return Err(format!("a score of {bad} samples per second is impossible"));
    }
    Ok(())
}

/// Runs the benchmark on one worker with `slots` slots: its slots' pi samples per second.
async fn bench_one(conn: &quinn::Connection, length: Duration, slots: u32) -> Result<Vec<f64>> {
    let (send, recv) = conn.open_bi().await?;
    let mut writer = MessageWriter::new(send);
    let millis = u32::try_from(length.as_millis()).unwrap_or(u32::MAX);
    writer.send(&CoordinatorOpen::Bench { millis }).await?;
    writer.get_mut().finish()?;
    let reply = MessageReader::new(recv).recv::<BenchReply>().await?;
    let rates = reply.context("the worker closed the bench stream")?.slot_rates;
    check_scores(&rates, slots).map_err(|e| anyhow!("the worker sent impossible scores: {e}"))?;
    Ok(rates)
}

/// One ping round trip on a stream of its own.
pub(super) async fn ping_one(conn: &quinn::Connection) -> Result<Duration> {
    let started = Instant::now();
    let nonce = rand::random::<u64>();
    let (send, recv) = conn.open_bi().await?;
    let mut writer = MessageWriter::new(send);
    writer.send(&CoordinatorOpen::Ping { nonce }).await?;
    writer.get_mut().finish()?;
    match MessageReader::new(recv).recv::<Pong>().await? {
        Some(Pong { nonce: echoed }) if echoed == nonce => Ok(started.elapsed()),
        Some(_) => bail!("the worker answered another ping"),
        None => bail!("the worker closed the ping stream"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_scores_must_fit_the_slots_and_a_machine() {
        assert_eq!(check_scores(&[1e9, 2e9], 2), Ok(()));
        assert_eq!(check_scores(&[MAX_SLOT_RATE], 1), Ok(()));
        assert_eq!(check_scores(&[1e9], 2), Err("1 scores for 2 slots".into()));
        assert_eq!(check_scores(&[], 0), Ok(()), "no slots, no scores");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_SLOT_RATE * 1.01] {
            let e = check_scores(&[1e9, bad], 2).unwrap_err();
            assert!(e.contains("is impossible"), "{bad}: {e}");
        }
    }
}
