//! Errors that restarting cannot fix.
//!
//! A worker whose token was refused, or a coordinator told to give its socket to a group it is
//! not in, fails the same way on every start: under systemd's `Restart=on-failure` it would
//! loop forever with the same line in the journal. Such errors carry a [`ConfigError`], and
//! `marmotd` exits with [`proto::exit::CONFIG`], which the units list in
//! `RestartPreventExitStatus=`. Network trouble and crashes are never marked so.

/// A mistake in the configuration (flags, token, files) that only a person can fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// An `anyhow` error carrying this marker.
    pub fn error(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(ConfigError(message.into()))
    }
}

/// Whether `e` (or anything in its chain of causes) is a [`ConfigError`], or trust files
/// that do not belong together ([`certs::CertError::Damaged`]).
pub fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<ConfigError>()
            || matches!(cause.downcast_ref(), Some(certs::CertError::Damaged(_)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn found_through_context() {
        let e = Err::<(), _>(ConfigError::error("refused")).context("joining").unwrap_err();
        assert!(is_config_error(&e));
        assert_eq!(format!("{e:#}"), "joining: refused");
        assert!(!is_config_error(&anyhow::anyhow!("network down")));
        let damaged = anyhow::Error::new(certs::CertError::Damaged("ca.key missing".into()));
        assert!(is_config_error(&damaged.context("loading the CA")));
        let invalid = anyhow::Error::new(certs::CertError::Invalid("bad".into()));
        assert!(!is_config_error(&invalid));
    }
}
