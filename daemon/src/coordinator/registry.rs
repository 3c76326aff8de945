//! The connected workers: who they are (their hello), their connection and session, when they
//! were last heard from, and their bench scores (kept by name across reconnections).

use super::scores::SlotRates;
use crate::scheduler::WorkerId;
use crate::tasks::NOMINAL_SLOT_RATE;
use proto::api::WorkerView;
use proto::wire::{Control, Hello};
use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A connected worker.
pub struct WorkerEntry {
    pub hello: Hello,
    pub conn: quinn::Connection,
    /// The session's token: its chunk streams are cancelled with it.
    pub session: CancellationToken,
    since: SystemTime,
    control: mpsc::UnboundedSender<Control>,
    /// Datagrams received at the last check, and when that count last moved.
    last_rx: (u64, Instant),
    /// What it said it gives now, if not all its slots (its laptop's rules).
    pub standing: Option<proto::policy::Standing>,
}

/// What a new session brings to the registry.
pub struct Joining {
    pub hello: Hello,
    pub abilities: proto::wire::Abilities,
    pub conn: quinn::Connection,
    pub session: CancellationToken,
    pub control: mpsc::UnboundedSender<Control>,
}

/// A name [`Registry::select`] found no connected worker for.
#[derive(Debug, PartialEq, Eq)]
pub struct NotConnected(pub String);

pub struct Registry {
    workers: BTreeMap<WorkerId, WorkerEntry>,
    next: WorkerId,
    /// The last benchmark of each worker by name: pi samples per second of each slot.
    slot_rates: SlotRates,
    /// Sessions welcomed and ended since the coordinator started, and the bytes sent and
    /// received on the ended ones' connections.
    pub joined: u64,
    pub left: u64,
    traffic_of_gone: Traffic,
}

/// Bytes sent to and received from workers (UDP payload, as QUIC counts them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub sent: u64,
    pub received: u64,
}

impl Traffic {
    fn of(conn: &quinn::Connection) -> Self {
        let stats = conn.stats();
        Traffic { sent: stats.udp_tx.bytes, received: stats.udp_rx.bytes }
    }

    fn add(self, other: Traffic) -> Self {
        Traffic { sent: self.sent + other.sent, received: self.received + other.received }
    }
}

impl Registry {
    pub fn new(slot_rates: SlotRates) -> Self {
        Registry {
            workers: BTreeMap::new(),
            next: 1,
            slot_rates,
            joined: 0,
            left: 0,
            traffic_of_gone: Traffic::default(),
        }
    }

    /// Adds a worker whose session was welcomed; returns its id and the ids of live sessions
    /// of the same name, now removed: taken to be this worker's previous connection (a
    /// reconnect beat the idle timeout), they are closed.
    pub fn add(&mut self, now: Instant, joining: Joining) -> (WorkerId, Vec<WorkerId>) {
        let stale: Vec<WorkerId> = self.ids_named(&joining.hello.name);
        for id in &stale {
            if let Some(old) = self.remove(*id) {
                old.conn.close(crate::transport::codes::REPLACED, b"replaced by a new connection");
            }
        }
        self.joined += 1;
        let id = self.next;
        self.next += 1;
        let Joining { hello, conn, session, control, .. } = joining;
        let since = SystemTime::now();
        self.workers.insert(
            id,
            WorkerEntry { hello, conn, session, since, control, last_rx: (0, now), standing: None },
        );
        (id, stale)
    }

    pub fn remove(&mut self, id: WorkerId) -> Option<WorkerEntry> {
        let gone = self.workers.remove(&id)?;
        self.left += 1;
        self.traffic_of_gone = self.traffic_of_gone.add(Traffic::of(&gone.conn));
        Some(gone)
    }

    /// Bytes exchanged with workers since the coordinator started, live connections included.
    pub fn traffic(&self) -> Traffic {
        self.workers.values().fold(self.traffic_of_gone, |t, w| t.add(Traffic::of(&w.conn)))
    }

    pub fn get(&self, id: WorkerId) -> Option<&WorkerEntry> {
        self.workers.get(&id)
    }

    /// Keeps what a worker said it gives now (all its slots: no standing).
    pub fn set_standing(&mut self, id: WorkerId, standing: proto::policy::Standing) {
        if let Some(w) = self.workers.get_mut(&id) {
            w.standing = standing.why.is_some().then_some(standing);
        }
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Connected workers by id.
    pub fn iter(&self) -> impl Iterator<Item = (WorkerId, &WorkerEntry)> {
        self.workers.iter().map(|(&id, w)| (id, w))
    }

    /// The ids of live sessions of the worker `name`.
    pub fn ids_named(&self, name: &str) -> Vec<WorkerId> {
        self.iter().filter(|(_, w)| w.hello.name == name).map(|(id, _)| id).collect()
    }

    /// Notes how many datagrams a worker's connection has received, for "last seen".
    pub fn touch(&mut self, now: Instant, id: WorkerId, datagrams: u64) {
        if let Some(w) = self.workers.get_mut(&id) {
            if w.last_rx.0 != datagrams {
                w.last_rx = (datagrams, now);
            }
        }
    }

    /// Tells a worker over its session stream; `false` if the session is gone.
    pub fn tell(&self, id: WorkerId, message: Control) -> bool {
        self.workers.get(&id).is_some_and(|w| w.control.send(message).is_ok())
    }

    /// The named workers, or all of them when `names` is empty; the first name that is not
    /// connected if one is not.
    pub fn select(&self, names: &[String]) -> Result<Vec<WorkerId>, NotConnected> {
        if names.is_empty() {
            return Ok(self.workers.keys().copied().collect());
        }
        names
            .iter()
            .map(|name| {
                self.ids_named(name).first().copied().ok_or_else(|| NotConnected(name.clone()))
            })
            .collect()
    }

    /// Keeps a worker's bench scores (pi samples per second of each slot).
    pub fn set_rates(&mut self, name: String, rates: Vec<f64>) {
        self.slot_rates.insert(name, rates);
    }

    pub fn slot_rates(&self) -> &SlotRates {
        &self.slot_rates
    }

    /// How each connected worker's benchmarked slots compare with the slot the tasks' nominal
    /// rates assume, as it claims (by name; none before a benchmark).
    pub fn claimed_speeds(&self) -> HashMap<String, f64> {
        self.workers
            .values()
            .filter_map(|w| {
                let rates = self.slot_rates.get(&w.hello.name).filter(|r| !r.is_empty())?;
                let mean = rates.iter().sum::<f64>() / rates.len() as f64;
                Some((w.hello.name.clone(), mean / NOMINAL_SLOT_RATE))
            })
            .collect()
    }

    /// The connected workers, by name, with their busy slots and quarantine as the job table
    /// knows them.
    pub fn views(
        &self,
        now: Instant,
        busy: impl Fn(WorkerId) -> u32,
        quarantined: impl Fn(&str) -> bool,
    ) -> Vec<WorkerView> {
        let mut list: Vec<WorkerView> = self
            .iter()
            .map(|(id, w)| {
                let rates = self.slot_rates.get(&w.hello.name).cloned().unwrap_or_default();
                let traffic = Traffic::of(&w.conn);
                WorkerView {
                    name: w.hello.name.clone(),
                    address: w.conn.remote_address().to_string(),
                    slots: w.hello.slots,
                    slots_now: w.standing.as_ref().map_or(w.hello.slots, |s| s.slots),
                    held_back: w.standing.as_ref().and_then(|s| s.why.clone()),
                    slots_busy: busy(id),
                    version: w.hello.version.clone(),
                    binary_sha256: w.hello.binary_sha256.clone(),
                    arch: w.hello.arch.clone(),
                    os: w.hello.os.clone(),
                    connected_since: w.since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                    last_seen_ms: now.saturating_duration_since(w.last_rx.1).as_millis() as u64,
                    rtt_ms: w.conn.rtt().as_secs_f64() * 1e3,
                    score: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / 1e9),
                    slot_scores: rates.iter().map(|r| r / 1e9).collect(),
                    quarantined: quarantined(&w.hello.name),
                    chunks_done: 0,
                    units_done: 0,
                    bytes_sent: traffic.sent,
                    bytes_received: traffic.received,
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}
