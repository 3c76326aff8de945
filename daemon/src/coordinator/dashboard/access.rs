//! Who may see the `--http` dashboard: its token, and the rule.
//!
//! The rule: on a loopback address the page, its feed, its logs and `/metrics` are readable
//! without a token (whoever is on the machine can read `marmotctl`'s socket's worth of
//! nothing more: names, rates, log lines); cancelling a job always needs the token. On any
//! other address everything needs it. The control socket needs none: it is already only its
//! owner's.
//!
//! The token is made by `marmotctl dashboard-token` and shown once: the coordinator keeps its
//! SHA-256 in `STATE_DIR/dashboard-token.sha256` (mode 0600), so reading the state dir does
//! not give it away. It comes with a request as `Authorization: Bearer TOKEN` or as
//! `?token=TOKEN` (a browser's `EventSource` cannot set headers).

use crate::coordinator::error::ClusterError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file that holds the token's hash.
const FILE: &str = "dashboard-token.sha256";

/// The dashboard token's hash, as kept in the state dir.
pub struct TokenStore {
    path: PathBuf,
    sha256: Mutex<Option<String>>,
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "this needs the dashboard token, and none was made yet: run `marmotctl dashboard-token` \
         on the coordinator and open the URL it prints"
    )]
    NoTokenYet,
    #[error(
        "this needs the dashboard token: open the page as http://HOST:PORT/?token=TOKEN \
         (`marmotctl dashboard-token` makes one)"
    )]
    Missing,
    #[error("wrong dashboard token: `marmotctl dashboard-token --rotate` makes a new one")]
    Wrong,
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenStore {
    /// The store of the coordinator whose state dir is `dir` (no token until one is made).
    pub fn open(dir: &Path) -> Self {
        let path = dir.join(FILE);
        let kept = std::fs::read_to_string(&path).ok().map(|s| s.trim().to_string());
        let sha256 = kept.filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        TokenStore { path, sha256: Mutex::new(sha256) }
    }

    /// Makes a token, or a new one in place of the old with `rotate`; returns it (the only
    /// time it is ever shown).
    pub fn make(&self, rotate: bool) -> Result<String, ClusterError> {
        let mut kept = self.sha256.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_some() && !rotate {
            return Err(ClusterError::Unavailable(
                "a dashboard token exists (it was shown when it was made): `marmotctl \
                 dashboard-token --rotate` makes a new one, and the old one stops working"
                    .into(),
            ));
        }
        let token = hex::encode(rand::random::<[u8; 24]>());
        let sha256 = sha256_hex(&token);
        certs::files::write_private(&self.path, format!("{sha256}\n").as_bytes()).map_err(|e| {
            ClusterError::Internal(format!("cannot keep the dashboard token: {e:#}"))
        })?;
        *kept = Some(sha256);
        Ok(token)
    }

    /// Whether `presented` may do what needs the token.
    pub fn check(&self, presented: Option<&str>) -> Result<(), Refusal> {
        let kept = self.sha256.lock().unwrap_or_else(|p| p.into_inner());
        let Some(kept) = kept.as_deref() else { return Err(Refusal::NoTokenYet) };
        let presented = presented.ok_or(Refusal::Missing)?;
        // Hashes are compared, so the time taken says nothing about the token.
        match sha256_hex(presented) == kept {
            true => Ok(()),
            false => Err(Refusal::Wrong),
        }
    }
}

/// Whether a request needs the token: every one on a non-loopback address, and on loopback
/// those that change something.
pub fn needs_token(loopback: bool, method: &axum::http::Method) -> bool {
    !loopback || !(method == axum::http::Method::GET || method == axum::http::Method::HEAD)
}

/// The token a request carries: `Authorization: Bearer T`, else a `token=T` query parameter.
pub fn presented(headers: &axum::http::HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| url_query_value(query?, "token"))
}

/// The value of `key` in a URL query (tokens are hex, so no decoding is needed).
fn url_query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Method};

    #[test]
    fn a_token_is_shown_once_checked_by_hash_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path());
        assert_eq!(store.check(Some("x")), Err(Refusal::NoTokenYet));
        let token = store.make(false).unwrap();
        assert_eq!(token.len(), 48);
        let kept = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!kept.contains(&token), "only its hash is kept");
        assert_eq!(store.check(Some(&token)), Ok(()));
        assert_eq!(store.check(None), Err(Refusal::Missing));
        assert_eq!(store.check(Some("nope")), Err(Refusal::Wrong));
        assert!(store.make(false).unwrap_err().to_string().contains("--rotate"));
        // A restarted coordinator knows it.
        assert_eq!(TokenStore::open(dir.path()).check(Some(&token)), Ok(()));
        let new = store.make(true).unwrap();
        assert_ne!(new, token);
        assert_eq!(store.check(Some(&token)), Err(Refusal::Wrong));
        assert_eq!(store.check(Some(&new)), Ok(()));
    }

    #[test]
    fn a_kept_hash_that_is_not_one_counts_as_no_token() {
        let dir = tempfile::tempdir().unwrap();
        for garbage in ["abc", &"z".repeat(64)] {
            std::fs::write(dir.path().join(FILE), garbage).unwrap();
            let store = TokenStore::open(dir.path());
            assert_eq!(store.check(Some("abc")), Err(Refusal::NoTokenYet), "{garbage}");
        }
    }

    #[test]
    fn loopback_reads_freely_and_everything_else_needs_the_token() {
        assert!(!needs_token(true, &Method::GET));
        assert!(!needs_token(true, &Method::HEAD));
        assert!(needs_token(true, &Method::DELETE));
        assert!(needs_token(true, &Method::POST));
        assert!(needs_token(false, &Method::GET));
    }

    #[test]
    fn the_token_comes_in_a_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented(&headers, Some("a=1&token=abc")), Some("abc".into()));
        assert_eq!(presented(&headers, Some("tokenx=abc")), None);
        assert_eq!(presented(&headers, None), None);
        headers.insert("authorization", HeaderValue::from_static("Bearer def"));
        assert_eq!(presented(&headers, Some("token=abc")), Some("def".into()));
    }
}
