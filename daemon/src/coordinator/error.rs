//! Why a request to the coordinator cannot be served; the control API maps each kind to an
//! HTTP status.

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// The coordinator is stopping (to restart, often): asking again soon may succeed.
    #[error("the coordinator is shutting down")]
    Stopping,
}

impl ClusterError {
    /// The coordinator is stopping: its state is no longer served.
    pub fn stopping() -> Self {
        ClusterError::Stopping
    }

    /// A name no worker of this cluster has: the one answer of every command that names
    /// workers (`logs`, `clear`, `exit`, `ping`, `revoke`).
    pub fn unknown_worker(name: &str) -> Self {
        ClusterError::NotFound(format!(
            "unknown worker '{name}': `marmotctl workers` lists the connected ones"
        ))
    }

    /// A worker of this cluster that is not connected now.
    pub fn away(name: &str) -> Self {
        ClusterError::NotFound(format!(
            "worker '{name}' is not connected: `marmotctl workers` lists the connected ones"
        ))
    }
}
