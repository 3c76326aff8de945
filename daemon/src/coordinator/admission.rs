//! Admission of connections that have not authenticated yet.
//!
//! Anyone on the LAN can open a QUIC connection to the coordinator, and each one costs memory
//! (handshake state, buffers) until it either proves itself (a join with the token's secret, or
//! a hello over a connection with a member certificate) or is dropped. So only a bounded number
//! of such connections exist at once, in all and per source address; the rest are refused
//! before their handshake. A [`Ticket`] stands for one admitted connection and frees its place
//! when the connection authenticates or ends, whichever comes first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How many unauthenticated connections may exist at once, in all.
pub const MAX_PENDING: u32 = 64;
/// How many of them may come from one source address.
pub const MAX_PENDING_PER_ADDRESS: u32 = 8;

/// Counts unauthenticated connections, in all and per source address.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Mutex<Counts>>,
    max_total: u32,
    max_per_address: u32,
}

#[derive(Default)]
struct Counts {
    total: u32,
    per_address: HashMap<IpAddr, u32>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(MAX_PENDING, MAX_PENDING_PER_ADDRESS)
    }
}

impl Admission {
    pub fn new(max_total: u32, max_per_address: u32) -> Self {
        Admission { inner: Arc::default(), max_total, max_per_address }
    }

    /// A place for one more connection from `address`, or `None` when either bound is reached.
    pub fn admit(&self, address: IpAddr) -> Option<Ticket> {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let from_address = counts.per_address.get(&address).copied().unwrap_or(0);
        if counts.total >= self.max_total || from_address >= self.max_per_address {
            return None;
        }
        counts.total += 1;
        counts.per_address.insert(address, from_address + 1);
        Some(Ticket { admission: self.clone(), address })
    }

    /// Unauthenticated connections admitted and not yet released.
    pub fn pending(&self) -> u32 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    fn release(&self, address: IpAddr) {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        match counts.per_address.get_mut(&address) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                counts.per_address.remove(&address);
            }
        }
    }
}

/// One admitted connection's place; dropping it frees the place.
pub struct Ticket {
    admission: Admission,
    address: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    #[test]
    fn bounded_per_address_and_in_all_and_freed_on_drop() {
        let admission = Admission::new(3, 2);
        let a1 = admission.admit(ip(1)).unwrap();
        let a2 = admission.admit(ip(1)).unwrap();
        assert!(admission.admit(ip(1)).is_none(), "per-address bound");
        let b1 = admission.admit(ip(2)).unwrap();
        assert!(admission.admit(ip(3)).is_none(), "total bound");
        assert_eq!(admission.pending(), 3);
        drop(a1);
        assert_eq!(admission.pending(), 2);
        let a3 = admission.admit(ip(1)).unwrap();
        assert!(admission.admit(ip(1)).is_none());
        drop((a2, a3, b1));
        assert_eq!(admission.pending(), 0);
        assert!(admission.inner.lock().unwrap().per_address.is_empty(), "no entry left behind");
        // Per address, a release leaves the others from that address counted.
        let wide = Admission::new(10, 2);
        let (x1, _x2) = (wide.admit(ip(1)).unwrap(), wide.admit(ip(1)).unwrap());
        drop(x1);
        let _x3 = wide.admit(ip(1)).unwrap();
        assert!(wide.admit(ip(1)).is_none(), "two from one address are still live");
        // Everything is free again.
        let again = [1, 1, 2].map(|n| admission.admit(ip(n)));
        assert!(again.iter().all(Option::is_some));
    }
}
