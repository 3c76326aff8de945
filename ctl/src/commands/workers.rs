//! `marmotctl workers`: the connected workers, one line each.

use super::{print, short_sha};
use anyhow::Result;
use client::Client;
use proto::api::WorkerView;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

pub async fn workers(client: &Client, json: bool) -> Result<ExitCode> {
    let list = client.workers().await?;
    print(json, &list, || {
        if list.is_empty() {
            println!("no workers connected (add one with `marmotd worker --coordinator HOST --token TOKEN`)");
            return;
        }
        println!(
            "{:<16} {:<22} {:>5} {:>4} {:>7} {:<21} {:<12} {:>8} {:>9} {:>10}  STATE",
            "NAME",
            "ADDRESS",
            "SLOTS",
            "BUSY",
            "SCORE",
            "VERSION",
            "SHA256",
            "RTT",
            "SEEN",
            "CONNECTED",
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        for w in &list {
            let score = w.score.map_or("-".to_string(), |s| format!("{s:.2}"));
            println!(
                "{:<16} {:<22} {:>5} {:>4} {:>7} {:<21} {:<12} {:>6.2}ms {:>7}ms {:>9}s  {}",
                w.name,
                w.address,
                slots(w),
                w.slots_busy,
                score,
                w.version,
                short_sha(&w.binary_sha256),
                w.rtt_ms,
                w.last_seen_ms,
                now.saturating_sub(w.connected_since),
                state(w),
            );
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// Its slots, as `given/all` while its laptop's rules hold some back.
fn slots(w: &WorkerView) -> String {
    match w.held_back {
        Some(_) => format!("{}/{}", w.slots_now, w.slots),
        None => w.slots.to_string(),
    }
}

/// What it does now, in a few words: `running`, `paused: battery 34%`, `1 of 4 slots: 91 °C`,
/// `quarantined`.
fn state(w: &WorkerView) -> String {
    match (&w.held_back, w.quarantined) {
        (_, true) => "quarantined (marmotctl clear)".into(),
        (Some(why), _) if w.slots_now == 0 => format!("paused: {why}"),
        (Some(why), _) => format!("{} of {} slots: {why}", w.slots_now, w.slots),
        (None, _) => "running".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::policy::Holdback;

    #[test]
    fn a_workers_state_says_why_it_gives_fewer_slots() {
        let mut w: WorkerView = serde_json::from_value(serde_json::json!({
            "name": "attic", "address": "10.0.0.2:5000", "slots": 4, "slots_busy": 0,
            "version": "0.1.0", "binary_sha256": "", "arch": "x86_64", "os": "linux",
            "connected_since": 0, "last_seen_ms": 0, "rtt_ms": 2.5, "score": null
        }))
        .unwrap();
        w.slots_now = 4;
        assert_eq!((slots(&w), state(&w)), ("4".into(), "running".into()));
        (w.slots_now, w.held_back) = (0, Some(Holdback::Battery { charge: Some(34) }));
        assert_eq!((slots(&w), state(&w)), ("0/4".into(), "paused: battery 34%".into()));
        (w.slots_now, w.held_back) = (1, Some(Holdback::Heat { celsius: 91 }));
        assert_eq!((slots(&w), state(&w)), ("1/4".into(), "1 of 4 slots: 91 °C".into()));
        w.quarantined = true;
        assert_eq!(state(&w), "quarantined (marmotctl clear)");
    }
}
