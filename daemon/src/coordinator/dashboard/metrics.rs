//! `/metrics`: an [`Overview`] in Prometheus' text format (OpenMetrics), by `prometheus-client`.
//!
//! Names follow Prometheus' conventions: a `marmot_` prefix, counters end in `_total`, base
//! units (`_seconds`, `_bytes`) in the name, one label (`worker`) for per-worker series. Rates
//! (a worker's units per second) are Prometheus' to compute from the counters:
//! `rate(marmot_worker_units_done_total[1m])`. A fresh registry is filled from one snapshot per
//! scrape: the counters are the coordinator's own counts since it started, so a restart
//! resets them, which `rate()` handles.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use proto::api::{JobState, Overview};
use std::sync::atomic::AtomicU64;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeldBackLabel {
    worker: String,
    /// `battery`, `heat` or `hours`.
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaceLabel {
    place: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn float_gauge(value: f64) -> FloatGauge {
    let g = FloatGauge::default();
    g.set(value);
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn worker(name: &str) -> WorkerLabel {
    WorkerLabel { worker: name.to_string() }
}

/// The text a scrape returns.
pub fn render(overview: &Overview) -> String {
    let mut r = Registry::with_prefix("marmot");
    let (status, c) = (&overview.status, &overview.counters);
    r.register_with_unit(
        "uptime",
        "Time since the coordinator started",
        Unit::Seconds,
        float_gauge(status.uptime_seconds),
    );
    r.register("workers_connected", "Workers connected now", gauge(status.workers as i64));
    r.register("slots", "Slots of the connected workers", gauge(i64::from(status.slots)));
    r.register("slots_busy", "Slots running a chunk", gauge(i64::from(status.slots_busy)));
    r.register("chunks_queued", "Chunks waiting for a slot", gauge(status.chunks_queued as i64));
    r.register("jobs_running", "Jobs waiting or running", gauge(status.jobs_running as i64));
    let counters: [(&str, &str, u64); 11] = [
        ("chunks_started", "Chunk streams opened, first runs and re-runs", c.chunks_started),
        ("chunks_retried", "Chunk streams opened to run a chunk again", c.chunks_retried),
        ("chunks_done", "Chunk results counted", c.chunks_done),
        ("chunks_failed", "Chunk streams that ended with an error", c.chunks_failed),
        ("chunks_stopped", "Chunk streams the coordinator stopped", c.chunks_stopped),
        ("jobs_submitted", "Jobs submitted", c.jobs_submitted),
        ("quarantines", "Workers quarantined for a contradicted result", c.quarantines),
        ("worker_joins", "Worker sessions welcomed", c.workers_joined),
        ("worker_losses", "Worker sessions ended", c.workers_lost),
        ("log_lines_received", "Log lines received from workers", c.log_lines_received),
        ("log_lines_refused", "Log lines refused (bad batches)", c.log_lines_refused),
    ];
    for (name, help, value) in counters {
        r.register(name, help, counter(value));
    }
    r.register_with_unit("sent", "Bytes sent to workers", Unit::Bytes, counter(c.bytes_sent));
    r.register_with_unit(
        "received",
        "Bytes received from workers",
        Unit::Bytes,
        counter(c.bytes_received),
    );
    let ended = Family::<StateLabel, Counter>::default();
    for (state, value) in [
        (JobState::Done, c.jobs_done),
        (JobState::Failed, c.jobs_failed),
        (JobState::Cancelled, c.jobs_cancelled),
    ] {
        ended.get_or_create(&StateLabel { state: state.to_string() }).inc_by(value);
    }
    r.register("jobs_ended", "Jobs ended, by how", ended);
    let waiting = Family::<PlaceLabel, Gauge>::default();
    let w = status.waiting;
    for (place, value) in
        [("handshaking", w.handshaking), ("strangers", w.strangers), ("members", w.members)]
    {
        waiting.get_or_create(&PlaceLabel { place: place.into() }).set(i64::from(value));
    }
    r.register("connections_waiting", "Connections not authenticated yet, by place", waiting);
    let updates = Family::<OutcomeLabel, Counter>::default();
    for (outcome, value) in &c.updates {
        updates.get_or_create(&OutcomeLabel { outcome: outcome.clone() }).inc_by(*value);
    }
    r.register("updates", "Machines' update outcomes", updates);
    let units = Family::<WorkerLabel, Counter>::default();
    let chunks = Family::<WorkerLabel, Counter>::default();
    let rtt = Family::<WorkerLabel, FloatGauge>::default();
    let slots = Family::<WorkerLabel, Gauge>::default();
    let busy = Family::<WorkerLabel, Gauge>::default();
    let given = Family::<WorkerLabel, Gauge>::default();
    let held_back = Family::<HeldBackLabel, Gauge>::default();
    for w in &overview.workers {
        let label = worker(&w.name);
        units.get_or_create(&label).inc_by(w.units_done);
        chunks.get_or_create(&label).inc_by(w.chunks_done);
        rtt.get_or_create(&label).set(w.rtt_ms / 1e3);
        slots.get_or_create(&label).set(i64::from(w.slots));
        busy.get_or_create(&label).set(i64::from(w.slots_busy));
        given.get_or_create(&label).set(i64::from(w.slots_now));
        if let Some(why) = &w.held_back {
            let label = HeldBackLabel { worker: w.name.clone(), reason: why.kind().into() };
            held_back.get_or_create(&label).set(1);
        }
    }
    r.register("worker_units_done", "Units a worker computed that were counted", units);
    r.register("worker_chunks_done", "Chunks a worker computed that were counted", chunks);
    r.register_with_unit("worker_rtt", "A worker's smoothed round-trip time", Unit::Seconds, rtt);
    r.register("worker_slots", "A worker's slots", slots);
    r.register("worker_slots_busy", "A worker's slots running a chunk", busy);
    r.register(
        "worker_slots_given",
        "A worker's slots it takes chunks for now (its laptop's rules)",
        given,
    );
    r.register(
        "worker_held_back",
        "1 while a worker gives fewer than all its slots, by reason",
        held_back,
    );
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &r);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::{Counters, Status, WorkerView};

    fn overview() -> Overview {
        let status = Status {
            version: "0.1.0".into(),
            binary_sha256: String::new(),
            listen: "127.0.0.1:7070".into(),
            uptime_seconds: 12.5,
            workers: 1,
            members: 1,
            slots: 4,
            slots_busy: 3,
            chunks_queued: 7,
            jobs_running: 2,
            waiting: proto::api::Waiting { handshaking: 3, strangers: 2, members: 1 },
            journal_failing: None,
        };
        let w: WorkerView = serde_json::from_value(serde_json::json!({
            "name": "w1", "address": "127.0.0.1:1", "slots": 4, "slots_busy": 3, "slots_now": 1,
            "held_back": {"Heat": {"celsius": 91}},
            "version": "0.1.0", "binary_sha256": "", "arch": "x86_64", "os": "linux",
            "connected_since": 0, "last_seen_ms": 0, "rtt_ms": 2.5, "score": null,
            "chunks_done": 5, "units_done": 5000
        }))
        .unwrap();
        let mut counters = Counters {
            chunks_done: 5,
            jobs_done: 3,
            jobs_cancelled: 1,
            bytes_sent: 1000,
            ..Default::default()
        };
        counters.updates.insert("rolled_back".into(), 2);
        Overview { status, workers: vec![w], jobs: vec![], counters, events: vec![] }
    }

    #[test]
    fn every_series_is_named_by_convention_with_its_value() {
        let text = render(&overview());
        for line in [
            "marmot_uptime_seconds 12.5",
            "marmot_workers_connected 1",
            "marmot_slots 4",
            "marmot_slots_busy 3",
            "marmot_chunks_queued 7",
            "marmot_jobs_running 2",
            "marmot_chunks_done_total 5",
            "marmot_sent_bytes_total 1000",
            "marmot_jobs_ended_total{state=\"done\"} 3",
            "marmot_jobs_ended_total{state=\"cancelled\"} 1",
            "marmot_jobs_ended_total{state=\"failed\"} 0",
            "marmot_connections_waiting{place=\"handshaking\"} 3",
            "marmot_connections_waiting{place=\"strangers\"} 2",
            "marmot_connections_waiting{place=\"members\"} 1",
            "marmot_updates_total{outcome=\"rolled_back\"} 2",
            "marmot_worker_units_done_total{worker=\"w1\"} 5000",
            "marmot_worker_chunks_done_total{worker=\"w1\"} 5",
            "marmot_worker_rtt_seconds{worker=\"w1\"} 0.0025",
            "marmot_worker_slots_busy{worker=\"w1\"} 3",
            "marmot_worker_slots_given{worker=\"w1\"} 1",
            "marmot_worker_held_back{worker=\"w1\",reason=\"heat\"} 1",
            "# TYPE marmot_chunks_done counter",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_grafana_dashboard_asks_only_for_series_that_exist() {
        let text = render(&overview());
        let grafana: serde_json::Value =
            serde_json::from_str(include_str!("grafana.json")).unwrap();
        let mut asked = 0;
        for panel in grafana["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if word.starts_with("marmot_") {
                        asked += 1;
                        let exists = text.lines().any(|l| {
                            l.strip_prefix(word).is_some_and(|rest| rest.starts_with([' ', '{']))
                        });
                        assert!(exists, "{word} (in {expr}) is not served");
                    }
                }
            }
        }
        assert!(asked > 10);
    }
}
