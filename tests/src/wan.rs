//! A WAN on 127.0.0.1: a UDP relay between workers and a coordinator that delays, jitters and
//! drops packets, each direction on its own terms (this kernel has no `tc netem`, and a test
//! needs no root for this). Used by the e2e tests and by `wan-relay` for benchmarks.
//!
//! Each client (a worker's source address) gets a socket of its own towards the coordinator,
//! so the coordinator sees one address per worker as it would across the internet.
//! [`Wan::move_clients`] gives every client a new one: to the coordinator, each worker has
//! just changed address (a new DHCP lease, Wi-Fi to Ethernet, a NAT rebinding).
//! [`Wan::cut`] drops every packet both ways until [`Wan::mend`]: a network partition, a
//! cable pulled.
//!
//! Packets leave in the order they came (jitter spreads them, never reorders them) after
//! `delay + U(0, jitter)`; a direction holds at most [`QUEUE`] packets in flight, dropping
//! past that, as a router's buffer does.

use std::collections::hash_map::{Entry, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Packets one direction holds in flight at most.
pub const QUEUE: usize = 20_000;

/// One direction of the link.
#[derive(Clone, Copy, Debug, Default)]
pub struct Link {
    pub delay: Duration,
    pub jitter: Duration,
    /// The share of packets dropped, 0 to 1.
    pub loss: f64,
}

impl Link {
    /// `rtt / 2` of delay and `loss` each way: the same on both directions.
    pub fn symmetric(rtt: Duration, loss: f64) -> (Link, Link) {
        let link = Link { delay: rtt / 2, jitter: Duration::ZERO, loss };
        (link, link)
    }
}

/// A running relay; stopped when dropped.
pub struct Wan {
    /// Where workers send their packets.
    pub addr: SocketAddr,
    /// Packets lost on purpose or past a full queue.
    dropped: Arc<AtomicU64>,
    /// Set while the link is cut.
    cut: Arc<AtomicBool>,
    moves: mpsc::UnboundedSender<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Wan {
    /// Relays between `listen` (port 0: one the OS picks) and `target`: `up` towards the
    /// target, `down` back.
    pub fn start(listen: SocketAddr, target: SocketAddr, up: Link, down: Link) -> Wan {
        let std_socket = std::net::UdpSocket::bind(listen).expect("the relay's address");
        std_socket.set_nonblocking(true).expect("a non-blocking socket");
        let addr = std_socket.local_addr().expect("the relay's address");
        let dropped = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (moves, moves_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let fate = Fate { dropped: dropped.clone(), cut: cut.clone() };
        let thread = std::thread::Builder::new()
            .name("wan".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the relay's runtime");
                runtime.block_on(async move {
                    let front = Arc::new(UdpSocket::from_std(std_socket).expect("a tokio socket"));
                    let relay = relay(front, target, (up, down), fate, moves_rx);
                    tokio::select! {
                        () = relay => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("the relay's thread");
        Wan { addr, dropped, cut, moves, stop: Some(stop), thread: Some(thread) }
    }

    /// Every client's packets leave from a new port from now on.
    pub fn move_clients(&self) {
        let _ = self.moves.send(());
    }

    /// Packets dropped: lost on purpose, past a full queue, or while cut.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Drops every packet, both ways, until [`Wan::mend`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    pub fn mend(&self) {
        self.cut.store(false, Ordering::Relaxed);
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a delayed packet goes.
enum To {
    /// Towards the coordinator, from a client's own socket.
    Target(Arc<UdpSocket>),
    /// Back to a client.
    Client(SocketAddr),
}

struct Packet {
    at: Instant,
    bytes: Vec<u8>,
    to: To,
}

/// A direction: decides each packet's fate and time, and hands it to its sender.
/// What both directions share: the drop counter and the cut switch.
#[derive(Clone)]
struct Fate {
    dropped: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Direction {
    link: Link,
    queue: mpsc::Sender<Packet>,
    fate: Fate,
    /// When the last packet leaves (none leaves before it), and the losses' random numbers:
    /// seeded, so that a run drops the same packets by their order every time.
    state: Arc<std::sync::Mutex<(Instant, fastrand::Rng)>>,
}

impl Direction {
    fn new(link: Link, seed: u64, fate: Fate, front: Arc<UdpSocket>) -> Direction {
        let (queue, mut packets) = mpsc::channel::<Packet>(QUEUE);
        tokio::spawn(async move {
            while let Some(packet) = packets.recv().await {
                tokio::time::sleep_until(packet.at).await;
                let _ = match packet.to {
                    To::Target(socket) => socket.send(&packet.bytes).await,
                    To::Client(addr) => front.send_to(&packet.bytes, addr).await,
                };
            }
        });
        let state =
            Arc::new(std::sync::Mutex::new((Instant::now(), fastrand::Rng::with_seed(seed))));
        Direction { link, queue, fate, state }
    }

    fn pass(&self, bytes: &[u8], to: To) {
        let at = {
            let mut state = self.state.lock().expect("not poisoned");
            let (last, rng) = &mut *state;
            let lost = self.link.loss > 0.0 && rng.f64() < self.link.loss;
            if lost || self.fate.cut.load(Ordering::Relaxed) {
                self.fate.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let jitter = self.link.jitter.mul_f64(rng.f64());
            *last = (Instant::now() + self.link.delay + jitter).max(*last);
            *last
        };
        if self.queue.try_send(Packet { at, bytes: bytes.to_vec(), to }).is_err() {
            self.fate.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A client's socket towards the target, and the task relaying what comes back on it.
struct Client {
    socket: Arc<UdpSocket>,
    back: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(target: SocketAddr, client: SocketAddr, down: Direction) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a client's socket");
        socket.connect(target).await.expect("the target");
        let socket = Arc::new(socket);
        let reader = socket.clone();
        let back = tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = reader.recv(&mut buf).await {
                down.pass(&buf[..n], To::Client(client));
            }
        });
        Client { socket, back }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.back.abort();
    }
}

async fn relay(
    front: Arc<UdpSocket>,
    target: SocketAddr,
    (up, down): (Link, Link),
    fate: Fate,
    mut moves: mpsc::UnboundedReceiver<()>,
) {
    let up = Direction::new(up, 1, fate.clone(), front.clone());
    let down = Direction::new(down, 2, fate, front.clone());
    let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            received = front.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { continue };
                let socket = match clients.entry(from) {
                    Entry::Occupied(client) => client.get().socket.clone(),
                    Entry::Vacant(slot) => {
                        let client = Client::connect(target, from, down.clone()).await;
                        slot.insert(client).socket.clone()
                    }
                };
                up.pass(&buf[..n], To::Target(socket));
            }
            Some(()) = moves.recv() => {
                for (&addr, client) in clients.iter_mut() {
                    *client = Client::connect(target, addr, down.clone()).await;
                }
            }
        }
    }
}
