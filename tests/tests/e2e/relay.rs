//! A UDP relay between one worker and the coordinator that a test can cut and mend: a
//! network partition, since this kernel has no `tc netem` (and a test needs no root for it).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Relay {
    /// Where the worker sends its packets.
    pub addr: SocketAddr,
    state: Arc<State>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Packets dropped while cut.
    dropped: AtomicU64,
    /// The worker's address, once it has sent a packet.
    peer: Mutex<Option<SocketAddr>>,
}

impl Relay {
    /// Relays packets between 127.0.0.1:(OS port) and `target`.
    pub fn start(target: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").expect("relay front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("relay back");
        back.connect(target).expect("relay target");
        for socket in [&front, &back] {
            socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        }
        let addr = front.local_addr().expect("relay addr");
        let state = Arc::new(State::default());
        let (front2, back2) = (front.try_clone().expect("clone"), back.try_clone().expect("clone"));
        let to_coordinator = {
            let state = state.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !state.stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else { continue };
                    *state.peer.lock().unwrap() = Some(from);
                    if state.cut.load(Ordering::Relaxed) {
                        state.dropped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = back.send(&buf[..n]);
                    }
                }
            })
        };
        let to_worker = {
            let state = state.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !state.stop.load(Ordering::Relaxed) {
                    let Ok(n) = back2.recv(&mut buf) else { continue };
                    let peer = *state.peer.lock().unwrap();
                    match peer {
                        Some(_) if state.cut.load(Ordering::Relaxed) => {
                            state.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(peer) => {
                            let _ = front2.send_to(&buf[..n], peer);
                        }
                        None => {}
                    }
                }
            })
        };
        Relay { addr, state, threads: vec![to_coordinator, to_worker] }
    }

    /// Drops every packet, both ways, until [`Relay::mend`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::Relaxed);
    }

    pub fn mend(&self) {
        self.state.cut.store(false, Ordering::Relaxed);
    }

    /// Packets dropped while cut.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
