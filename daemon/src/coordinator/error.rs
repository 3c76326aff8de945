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
}

impl ClusterError {
    /// The coordinator is stopping: its state is no longer served.
    pub fn stopping() -> Self {
        ClusterError::Unavailable("the coordinator is shutting down".into())
    }
}
