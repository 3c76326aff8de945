//! The coordinator's record of its members: which key each worker name was issued to, and
//! which keys were revoked.
//!
//! A worker's name is the common name of its certificate, fixed at join. The record makes that
//! binding hold beyond the certificate itself: a second machine asking to join under a name
//! already issued gets a clear refusal instead of a certificate that would make the two replace
//! each other; a member whose hello claims another name is refused; and `marmotctl revoke`
//! moves a member's key to the revoked list, refused at once and forever (its renewed
//! certificates included, since they keep the key).
//!
//! Stored as `members.json` in the state dir (0600, written atomically), readable with any
//! JSON tool. A certificate issued before this record existed is adopted at its first hello.

use crate::{files, CertError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FILE: &str = "members.json";

/// What is known of one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// SHA-256 of the member's public key (its SubjectPublicKeyInfo), lowercase hex.
    pub key_sha256: String,
    /// When the latest certificate issued to it expires (Unix seconds).
    pub not_after: i64,
}

/// A revoked member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub name: String,
    pub key_sha256: String,
    /// When it was revoked (Unix seconds).
    pub at: i64,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Record {
    members: BTreeMap<String, Member>,
    revoked: Vec<Revoked>,
}

/// Why a name or key may not be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "a worker named '{0}' is already in the cluster: give this machine another --name, or, \
         if it is that worker reinstalled, run `marmotctl revoke {0}` on the coordinator first"
    )]
    NameTaken(String),
    #[error(
        "this worker's certificate was revoked (`marmotctl revoke`): it may not connect again; \
         to bring the machine back, remove its worker.key and worker.crt and join with a token"
    )]
    Revoked,
    #[error(
        "the certificate was issued to '{issued}', not to '{claimed}': start it as --name {issued}"
    )]
    NotItsName { issued: String, claimed: String },
}

/// The members and the revoked, behind a lock, saved on every change.
pub struct Registry {
    path: PathBuf,
    record: Mutex<Record>,
}

impl Registry {
    /// Writes a new cluster's empty record in `dir`, unless one is there (a CA made again
    /// after a crash between its files finds the record written before it).
    pub fn create(dir: &Path) -> Result<(), CertError> {
        let path = dir.join(FILE);
        if files::read_optional(&path)?.is_none() {
            let registry = Registry { path, record: Mutex::new(Record::default()) };
            registry.save(&registry.lock())?;
        }
        Ok(())
    }

    /// The record in `dir`. It is made with the cluster's CA, so a CA without it is damaged
    /// state: taken as empty, it would admit revoked certificates again.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let path = dir.join(FILE);
        let record = match files::read_optional(&path)? {
            None => {
                return Err(CertError::Damaged(format!(
                    "{} is missing beside the cluster CA: restore it from a backup; only if it \
                     is lost for good, write {{}} into it to start an empty record (workers it \
                     revoked could connect again: revoke them anew)",
                    path.display()
                )))
            }
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CertError::Damaged(format!(
                    "{} is damaged ({e}): restore it from a backup, or move it aside to start \
                     a new record (revocations in it would be forgotten)",
                    path.display()
                ))
            })?,
        };
        Ok(Registry { path, record: Mutex::new(record) })
    }

    /// Whether a certificate for `key_sha256` may be issued under `name`: the name is free, or
    /// already this key's (a join retried after its reply was lost).
    pub fn may_issue(&self, name: &str, key_sha256: &str) -> Result<(), Refusal> {
        let record = self.lock();
        if record.revoked.iter().any(|r| r.key_sha256 == key_sha256) {
            return Err(Refusal::Revoked);
        }
        match record.members.get(name) {
            Some(member) if member.key_sha256 != key_sha256 => {
                Err(Refusal::NameTaken(name.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Records a certificate issued (or renewed) for `name`.
    pub fn issued(&self, name: &str, member: Member) -> Result<(), CertError> {
        let mut record = self.lock();
        record.members.insert(name.to_string(), member);
        self.save(&record)
    }

    /// Whether a member presenting a certificate for `name` with `key_sha256` may connect as
    /// `claimed`. A certificate from before the record existed is adopted.
    pub fn check_member(
        &self,
        name: &str,
        key_sha256: &str,
        not_after: i64,
        claimed: &str,
    ) -> Result<(), Refusal> {
        if name != claimed {
            return Err(Refusal::NotItsName { issued: name.into(), claimed: claimed.into() });
        }
        self.may_issue(name, key_sha256)?;
        let mut record = self.lock();
        if !record.members.contains_key(name) {
            let member = Member { key_sha256: key_sha256.into(), not_after };
            record.members.insert(name.to_string(), member);
            // Not saved is not lost: it is adopted again at its next hello.
            let _ = self.save(&record);
        }
        Ok(())
    }

    /// Revokes the member `name`: its key is refused from now on, and its name is free.
    /// `None` if there is no such member.
    pub fn revoke(&self, name: &str, now: i64) -> Result<Option<Revoked>, CertError> {
        let mut record = self.lock();
        let Some(member) = record.members.remove(name) else { return Ok(None) };
        let revoked = Revoked { name: name.into(), key_sha256: member.key_sha256, at: now };
        record.revoked.push(revoked.clone());
        self.save(&record)?;
        Ok(Some(revoked))
    }

    /// The member `name`, if there is one.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.lock().members.get(name).cloned()
    }

    /// How many members there are.
    pub fn member_count(&self) -> usize {
        self.lock().members.len()
    }

    /// Every revoked member, oldest first.
    pub fn revoked(&self) -> Vec<Revoked> {
        self.lock().revoked.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, record: &Record) -> Result<(), CertError> {
        let json = serde_json::to_vec_pretty(record).expect("the record serializes");
        files::write_private(&self.path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: &str) -> Member {
        Member { key_sha256: key.into(), not_after: 100 }
    }

    #[test]
    fn a_name_is_one_keys_until_revoked_and_revocation_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        Registry::create(dir.path()).unwrap();
        let registry = Registry::load(dir.path()).unwrap();
        assert_eq!(registry.may_issue("w1", "k1"), Ok(()));
        registry.issued("w1", member("k1")).unwrap();
        assert_eq!(registry.may_issue("w1", "k1"), Ok(()), "a retried join");
        assert_eq!(registry.may_issue("w1", "k2"), Err(Refusal::NameTaken("w1".into())));
        assert_eq!(registry.may_issue("w2", "k2"), Ok(()));
        assert_eq!(registry.check_member("w1", "k1", 100, "w1"), Ok(()));
        assert_eq!(
            registry.check_member("w1", "k1", 100, "w2"),
            Err(Refusal::NotItsName { issued: "w1".into(), claimed: "w2".into() })
        );

        assert_eq!(registry.member_count(), 1, "one issued");
        let revoked = registry.revoke("w1", 42).unwrap().unwrap();
        assert_eq!(registry.member_count(), 0, "revoked: no member");
        assert_eq!(revoked, Revoked { name: "w1".into(), key_sha256: "k1".into(), at: 42 });
        assert_eq!(registry.revoke("w1", 43).unwrap(), None, "nothing left to revoke");
        assert_eq!(registry.check_member("w1", "k1", 100, "w1"), Err(Refusal::Revoked));
        assert_eq!(registry.may_issue("w9", "k1"), Err(Refusal::Revoked), "under any name");
        assert_eq!(registry.may_issue("w1", "k3"), Ok(()), "the name is free again");

        // All of it survives a restart.
        let again = Registry::load(dir.path()).unwrap();
        assert_eq!(again.revoked(), [revoked]);
        assert_eq!(again.check_member("w1", "k1", 100, "w1"), Err(Refusal::Revoked));
        assert_eq!(again.member("w1"), None);
    }

    #[test]
    fn certificates_the_record_misses_are_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        Registry::create(dir.path()).unwrap();
        let registry = Registry::load(dir.path()).unwrap();
        assert_eq!(registry.check_member("old", "k1", 7, "old"), Ok(()));
        assert_eq!(Registry::load(dir.path()).unwrap().member("old"), Some(member_at("k1", 7)));
        assert_eq!(registry.may_issue("old", "k2"), Err(Refusal::NameTaken("old".into())));
        assert_eq!(
            registry.check_member("old", "k2", 7, "old"),
            Err(Refusal::NameTaken("old".into()))
        );
    }

    fn member_at(key: &str, not_after: i64) -> Member {
        Member { key_sha256: key.into(), not_after }
    }

    #[test]
    fn a_damaged_record_stops_the_coordinator_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        let Err(e) = Registry::load(dir.path()) else { panic!("a damaged record loaded") };
        assert!(matches!(e, CertError::Damaged(_)), "{e}");
        assert!(e.to_string().contains("members.json is damaged"), "{e}");
        assert_eq!(std::fs::read(dir.path().join(FILE)).unwrap(), b"{not json");
    }

    #[test]
    fn a_missing_record_is_damaged_and_an_empty_one_is_a_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = Registry::load(dir.path()) else { panic!("a missing record loaded") };
        assert!(matches!(e, CertError::Damaged(_)), "{e}");
        let line = e.to_string();
        assert!(line.contains("members.json is missing") && line.contains("write {}"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        std::fs::write(dir.path().join(FILE), b"{}").unwrap();
        assert_eq!(Registry::load(dir.path()).unwrap().member_count(), 0);
        // Made once, then kept as it is.
        let dir = tempfile::tempdir().unwrap();
        Registry::create(dir.path()).unwrap();
        Registry::load(dir.path()).unwrap().issued("w1", member("k1")).unwrap();
        Registry::create(dir.path()).unwrap();
        assert_eq!(Registry::load(dir.path()).unwrap().member_count(), 1);
    }
}
