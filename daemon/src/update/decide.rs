//! Whether a machine takes a binary on offer: the one decision a worker makes on an update
//! offer and the coordinator makes on its own update, written once.

use super::version;
use proto::wire::{UpdateAnswer, UpdateOffer};

/// What a machine runs, for [`decide`].
pub struct Running<'a> {
    pub sha256: &'a str,
    pub arch: &'a str,
    pub version: &'a str,
}

impl Running<'static> {
    /// This process's own binary, whose SHA-256 is `sha256`.
    pub fn this(sha256: &str) -> Running<'_> {
        Running { sha256, arch: std::env::consts::ARCH, version: version::current() }
    }
}

/// `Ok` to take `offer` on a machine running `ours`, or the answer that declines it: the same
/// binary, another architecture, an older version (unless downgrades are allowed), or a
/// version that is not one.
pub fn decide(offer: &UpdateOffer, ours: &Running) -> Result<(), UpdateAnswer> {
    if offer.sha256 == ours.sha256 {
        return Err(UpdateAnswer::Current);
    }
    if offer.arch != ours.arch {
        return Err(UpdateAnswer::WrongArch { ours: ours.arch.into() });
    }
    match version::compare(&offer.version, ours.version) {
        None => {
            Err(UpdateAnswer::Refused { reason: format!("'{}' is not a version", offer.version) })
        }
        Some(std::cmp::Ordering::Less) if !offer.allow_downgrade => {
            Err(UpdateAnswer::Downgrade { ours: ours.version.into() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(sha256: &str, arch: &str, version: &str, allow_downgrade: bool) -> UpdateOffer {
        UpdateOffer {
            version: version.into(),
            size: 1,
            sha256: sha256.into(),
            arch: arch.into(),
            allow_downgrade,
        }
    }

    #[test]
    fn current_wrong_arch_downgrade_and_accept() {
        let ours = Running { sha256: "aa", arch: "x86_64", version: "0.2.0+20260101000000" };
        assert_eq!(
            decide(&offer("aa", "aarch64", "0.1.0", false), &ours),
            Err(UpdateAnswer::Current)
        );
        let other_arch = decide(&offer("bb", "aarch64", "0.3.0", false), &ours);
        assert_eq!(other_arch, Err(UpdateAnswer::WrongArch { ours: "x86_64".into() }));
        let older = decide(&offer("bb", "x86_64", "0.1.0+20250101000000", false), &ours);
        assert_eq!(older, Err(UpdateAnswer::Downgrade { ours: "0.2.0+20260101000000".into() }));
        assert_eq!(decide(&offer("bb", "x86_64", "0.1.0+20250101000000", true), &ours), Ok(()));
        assert_eq!(
            decide(&offer("bb", "x86_64", "0.2.0+20260101000000", false), &ours),
            Ok(()),
            "a rebuild of the same version"
        );
        assert_eq!(decide(&offer("bb", "x86_64", "0.3.0+20270101000000", false), &ours), Ok(()));
        let Err(UpdateAnswer::Refused { reason }) =
            decide(&offer("bb", "x86_64", "soon", false), &ours)
        else {
            panic!("a version that is not one was taken")
        };
        assert_eq!(reason, "'soon' is not a version");
    }
}
