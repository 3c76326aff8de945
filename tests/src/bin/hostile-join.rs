//! A test fixture: a hostile peer on the LAN that sends join requests with any name (control
//! characters included, which a real worker refuses to send) and any secret, as many times
//! as asked, and prints each answer on one line.
//!
//! Usage: hostile-join ADDR TOKEN NAME COUNT STATE_DIR

use marmotd::worker::{join, WorkerConfig};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, token, name, count, state_dir] = args.as_slice() else {
        anyhow::bail!("usage: hostile-join ADDR TOKEN NAME COUNT STATE_DIR");
    };
    let addr: std::net::SocketAddr = addr.parse()?;
    let config = WorkerConfig {
        coordinator: addr.to_string(),
        token: Some(token.clone()),
        name: name.clone(),
        slots: 1,
        state_dir: state_dir.into(),
        dead_after: Duration::from_secs(5),
        lease: marmotd::worker::DEFAULT_LEASE,
        updatable: false,
        exec: true,
        file_cache: marmotd::exec::cache::DEFAULT_LIMIT,
        send_logs: false,
        policy: None,
    };
    let endpoint = marmotd::transport::client_endpoint(addr)?;
    for _ in 0..count.parse::<u32>()? {
        match join::join(&endpoint, addr, token, &config).await {
            Ok(Ok(_)) => println!("accepted"),
            Ok(Err(e)) => println!("failed: {e:#}"),
            Err(e) => println!("refused: {e:#}"),
        }
    }
    Ok(())
}
