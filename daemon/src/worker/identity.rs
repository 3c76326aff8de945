//! What a worker tells the coordinator about itself in its `Hello`.

use super::WorkerConfig;
use crate::update::{binary, version};
use anyhow::Result;
use proto::wire::Hello;

/// The worker's description, computed once at start.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    pub hello: Hello,
}

impl WorkerInfo {
    pub async fn detect(config: &WorkerConfig) -> Result<Self> {
        let binary_sha256 = binary::own_sha256().await?;
        Ok(WorkerInfo {
            hello: Hello {
                protocol: proto::PROTOCOL_VERSION,
                name: config.name.clone(),
                slots: config.slots,
                version: version::current().to_string(),
                binary_sha256,
                arch: std::env::consts::ARCH.to_string(),
                os: std::env::consts::OS.to_string(),
            },
        })
    }
}

/// The machine's host name, the default worker name.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The default number of slots: the cores available to this process.
pub fn default_slots() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}
