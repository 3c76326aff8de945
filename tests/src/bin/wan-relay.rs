//! `wan-relay TARGET RTT_MS LOSS [LISTEN]`: a WAN between workers and the coordinator at
//! TARGET for benchmarks ([`marmot_tests::wan`]): RTT_MS of round trip, half each way, and the
//! share LOSS (e.g. 0.01) of packets dropped each way. Prints the address workers are to dial;
//! a line `move` on stdin gives every worker a new source port. Runs until killed.

use marmot_tests::wan::{Link, Wan};
use std::io::BufRead;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, rtt_ms, loss, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: wan-relay TARGET RTT_MS LOSS [LISTEN]");
    };
    let listen = rest.first().map_or("127.0.0.1:0", String::as_str);
    let (up, down) = Link::symmetric(Duration::from_millis(rtt_ms.parse()?), loss.parse()?);
    let wan = Wan::start(listen.parse()?, target.parse()?, up, down);
    println!("{}", wan.addr);
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "move" {
            wan.move_clients();
        }
    }
    loop {
        std::thread::park();
    }
}
