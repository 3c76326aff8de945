//! Places for connections that have not authenticated yet, so that strangers on the LAN cannot
//! lock members out.
//!
//! Anyone on the LAN can open a QUIC connection to the coordinator, and each one costs memory
//! (handshake state, buffers) until it either proves itself (a join with the token's secret, or
//! a hello over a connection with a member certificate) or is dropped. A connection holds a
//! place in one of three pools, each bounded in all and per source address:
//!
//! - **handshaking**: from its first packet until its TLS handshake is done. Under pressure
//!   (half the places taken), a peer must first prove it owns its source address (a QUIC
//!   Retry), so the per-address bound holds against forged addresses.
//! - **strangers**: done with the handshake, no client certificate (a joiner, or anyone), until
//!   its first message is read. Its place is short-lived (the session's own deadline).
//! - **members**: done with the handshake, with a certificate the cluster CA signed, until its
//!   hello is welcomed. Strangers never take these places, however many they open.
//!
//! When a pool is full in all, a newcomer takes the place of the pool's oldest connection (it
//! is told through [`Ticket::evicted`] and closed): a host that holds places costs only the
//! places it holds *now*, and a real peer, which moves on within a round trip, is never the
//! oldest for long. An address at its own bound is refused instead. Sans-IO: no clock, no
//! sockets; the session performs what it decides.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The three places a connection can hold before it is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Handshaking,
    Strangers,
    Members,
}

/// One pool's bounds: places in all, and places one source address may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub total: u32,
    pub per_address: u32,
}

/// The shipped bounds: eight hosts at their per-address bound fill half a pool at most.
pub const HANDSHAKING: Limits = Limits { total: 256, per_address: 16 };
pub const STRANGERS: Limits = Limits { total: 64, per_address: 4 };
pub const MEMBERS: Limits = Limits { total: 1024, per_address: 64 };

/// What becomes of a connection's first packet.
pub enum Decision {
    /// A place: the handshake may go on.
    Admit(Ticket),
    /// Ask the peer to prove its address first (a Retry): places are getting scarce.
    Retry,
    /// Its address holds as many places as it may.
    Refuse,
}

/// Counts connections in each pool, in all and per source address.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Mutex<Pools>>,
}

struct Pools {
    next_id: u64,
    handshaking: Places,
    strangers: Places,
    members: Places,
}

impl Pools {
    fn pool(&mut self, pool: Pool) -> &mut Places {
        match pool {
            Pool::Handshaking => &mut self.handshaking,
            Pool::Strangers => &mut self.strangers,
            Pool::Members => &mut self.members,
        }
    }
}

/// One pool's places; ids grow with time, so the smallest is the oldest.
struct Places {
    limits: Limits,
    held: BTreeMap<u64, (IpAddr, CancellationToken)>,
    per_address: HashMap<IpAddr, u32>,
}

impl Places {
    fn new(limits: Limits) -> Self {
        Places { limits, held: BTreeMap::new(), per_address: HashMap::new() }
    }

    /// Takes a place for `address` under `id`, evicting the oldest when the pool is full;
    /// `false` when the address is at its own bound.
    fn take(&mut self, id: u64, address: IpAddr, evicted: CancellationToken) -> bool {
        let from_address = self.per_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.limits.per_address {
            return false;
        }
        if self.held.len() as u32 >= self.limits.total {
            if let Some((oldest, (its_address, token))) = self.held.pop_first() {
                self.forget(oldest, its_address);
                token.cancel();
            }
        }
        self.held.insert(id, (address, evicted));
        *self.per_address.entry(address).or_default() += 1;
        true
    }

    /// Frees `id`'s place, if it still holds one (an evicted connection's does not).
    fn free(&mut self, id: u64) {
        if let Some((address, _)) = self.held.remove(&id) {
            self.forget(id, address);
        }
    }

    fn forget(&mut self, id: u64, address: IpAddr) {
        self.held.remove(&id);
        match self.per_address.get_mut(&address) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                self.per_address.remove(&address);
            }
        }
    }

    fn len(&self) -> u32 {
        self.held.len() as u32
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(HANDSHAKING, STRANGERS, MEMBERS)
    }
}

impl Admission {
    pub fn new(handshaking: Limits, strangers: Limits, members: Limits) -> Self {
        let pools = Pools {
            next_id: 0,
            handshaking: Places::new(handshaking),
            strangers: Places::new(strangers),
            members: Places::new(members),
        };
        Admission { inner: Arc::new(Mutex::new(pools)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pools> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What to do with a first packet from `address`; `validated` when the peer has already
    /// proved it owns that address (it came back after a Retry).
    pub fn first_packet(&self, address: IpAddr, validated: bool) -> Decision {
        let mut pools = self.lock();
        let handshaking = &pools.handshaking;
        if !validated && handshaking.len() * 2 >= handshaking.limits.total {
            return Decision::Retry;
        }
        let id = pools.next_id;
        pools.next_id += 1;
        let evicted = CancellationToken::new();
        if !pools.handshaking.take(id, address, evicted.clone()) {
            return Decision::Refuse;
        }
        let place = (Pool::Handshaking, id);
        Decision::Admit(Ticket { admission: self.clone(), address, place: Some(place), evicted })
    }

    /// Connections holding a place in `pool`.
    pub fn held(&self, pool: Pool) -> u32 {
        self.lock().pool(pool).len()
    }

    /// Connections holding a place, by pool.
    pub fn waiting(&self) -> proto::api::Waiting {
        let pools = self.lock();
        proto::api::Waiting {
            handshaking: pools.handshaking.len(),
            strangers: pools.strangers.len(),
            members: pools.members.len(),
        }
    }
}

/// One connection's place; dropping it frees the place.
pub struct Ticket {
    admission: Admission,
    address: IpAddr,
    /// The pool and id of the place held; `None` once freed.
    place: Option<(Pool, u64)>,
    evicted: CancellationToken,
}

impl Ticket {
    /// Moves the connection to `pool` (its handshake is done): `false` when its address holds
    /// as many places there as it may, and the connection holds none any more.
    pub fn move_to(&mut self, pool: Pool) -> bool {
        let mut pools = self.admission.lock();
        if let Some((from, id)) = self.place.take() {
            pools.pool(from).free(id);
        }
        if self.evicted.is_cancelled() {
            return false;
        }
        let id = pools.next_id;
        pools.next_id += 1;
        let taken = pools.pool(pool).take(id, self.address, self.evicted.clone());
        self.place = taken.then_some((pool, id));
        taken
    }

    /// Resolves when a newcomer took this connection's place: it is to be closed.
    pub fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.evicted.clone().cancelled_owned()
    }

    fn free(&mut self) {
        if let Some((pool, id)) = self.place.take() {
            self.admission.lock().pool(pool).free(id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    fn small() -> Admission {
        let limits = |total, per_address| Limits { total, per_address };
        Admission::new(limits(4, 2), limits(3, 2), limits(3, 2))
    }

    fn admit(admission: &Admission, address: IpAddr, validated: bool) -> Option<Ticket> {
        match admission.first_packet(address, validated) {
            Decision::Admit(ticket) => Some(ticket),
            Decision::Retry | Decision::Refuse => None,
        }
    }

    #[test]
    fn handshakes_are_bounded_per_address_and_retried_under_pressure() {
        let admission = small();
        let a1 = admit(&admission, ip(1), false).unwrap();
        assert!(matches!(admission.first_packet(ip(2), false), Decision::Admit(_)));
        // One in four taken: no Retry yet; two of four: a Retry for an unvalidated address.
        let a2 = admit(&admission, ip(1), false).unwrap();
        assert_eq!(admission.held(Pool::Handshaking), 2);
        assert!(matches!(admission.first_packet(ip(3), false), Decision::Retry));
        assert!(matches!(admission.first_packet(ip(1), true), Decision::Refuse), "per address");
        let b = admit(&admission, ip(2), true).unwrap();
        assert_eq!(admission.held(Pool::Handshaking), 3);
        drop((a1, a2, b));
        assert_eq!(admission.held(Pool::Handshaking), 0);
        let pools = admission.lock();
        assert!(pools.handshaking.per_address.is_empty(), "no entry left behind");
    }

    #[test]
    fn an_address_keeps_its_count_while_some_of_its_places_are_held() {
        let admission = small();
        let (a1, _a2) = (admit(&admission, ip(1), true).unwrap(), admit(&admission, ip(1), true));
        drop(a1);
        let _a3 = admit(&admission, ip(1), true).unwrap();
        assert!(matches!(admission.first_packet(ip(1), true), Decision::Refuse), "two held");
    }

    #[test]
    fn a_retry_is_asked_from_half_the_handshaking_places_on() {
        let limits = Limits { total: 8, per_address: 8 };
        let admission = Admission::new(limits, limits, limits);
        let held: Vec<Ticket> = (0..3).map(|_| admit(&admission, ip(1), false).unwrap()).collect();
        assert!(matches!(admission.first_packet(ip(2), false), Decision::Admit(_)), "3 of 8");
        let _fourth = admit(&admission, ip(1), false).unwrap();
        assert!(matches!(admission.first_packet(ip(2), false), Decision::Retry), "4 of 8");
        drop(held);
    }

    #[test]
    fn connections_moved_one_after_another_each_hold_a_place() {
        let admission = small();
        let mut a = admit(&admission, ip(1), true).unwrap();
        let mut b = admit(&admission, ip(2), true).unwrap();
        assert!(a.move_to(Pool::Strangers) && b.move_to(Pool::Strangers));
        assert_eq!(admission.held(Pool::Strangers), 2);
        assert!(!a.evicted.is_cancelled() && !b.evicted.is_cancelled());
    }

    #[test]
    fn a_full_pool_evicts_its_oldest_place() {
        let admission = small();
        let tickets: Vec<Ticket> =
            [1, 2, 3, 4].iter().map(|&n| admit(&admission, ip(n), true).unwrap()).collect();
        assert!(tickets.iter().all(|t| !t.evicted.is_cancelled()));
        let newcomer = admit(&admission, ip(5), true).unwrap();
        assert!(tickets[0].evicted.is_cancelled(), "the oldest made room");
        assert!(tickets[1..].iter().all(|t| !t.evicted.is_cancelled()));
        assert_eq!(admission.held(Pool::Handshaking), 4);
        // The evicted one's drop frees nothing more; the others' do.
        drop(tickets);
        assert_eq!(admission.held(Pool::Handshaking), 1);
        assert!(!newcomer.evicted.is_cancelled());
        drop(newcomer);
        assert!(admission.lock().handshaking.per_address.is_empty());
    }

    #[test]
    fn strangers_never_take_members_places() {
        let admission = small();
        let mut strangers = Vec::new();
        for n in [1, 1, 2, 2, 3] {
            let mut t = admit(&admission, ip(n), true).unwrap();
            assert!(t.move_to(Pool::Strangers));
            strangers.push(t);
        }
        assert_eq!(admission.held(Pool::Handshaking), 0, "moving frees the handshake's place");
        assert_eq!(admission.held(Pool::Strangers), 3);
        let evicted = strangers.iter().filter(|t| t.evicted.is_cancelled()).count();
        assert_eq!(evicted, 2, "the two oldest strangers made room");
        // A third from one address is refused, holding nothing.
        let mut third = admit(&admission, ip(3), true).unwrap();
        assert!(third.move_to(Pool::Strangers));
        let mut fourth = admit(&admission, ip(3), true).unwrap();
        assert!(!fourth.move_to(Pool::Strangers), "per address");
        assert_eq!(fourth.place, None);
        assert_eq!(admission.held(Pool::Handshaking), 0);
        // Members come in beside the full strangers' pool, from the same addresses too.
        let mut member = admit(&admission, ip(3), true).unwrap();
        assert!(member.move_to(Pool::Members));
        let waiting = proto::api::Waiting { handshaking: 0, strangers: 3, members: 1 };
        assert_eq!(admission.waiting(), waiting);
        drop(member);
        assert_eq!(admission.held(Pool::Members), 0);
        // An evicted connection cannot come back into a pool.
        let mut gone = strangers.remove(0);
        assert!(gone.evicted.is_cancelled());
        assert!(!gone.move_to(Pool::Members));
        assert_eq!(admission.held(Pool::Members), 0);
        drop((strangers, third, fourth, gone));
        let pools = admission.lock();
        assert!(pools.strangers.held.is_empty() && pools.strangers.per_address.is_empty());
    }
}
