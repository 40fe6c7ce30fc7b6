//! A party's copy of the key center's revocation list: read from a file (`--revocations`),
//! verified under the center's public key from the directory, re-read when the file changes,
//! and applied to the party's key source and session guard so that revoked peers are refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use warifu_core::keysource::KeySource;
use warifu_core::revocation::{CenterPublicKey, Revocable, Revocations, SignedRevocationList};

/// How often a service looks at its revocation file for a newer list.
pub const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// The largest revocation file read (a list of a million identifiers fits).
pub const MAX_LIST_FILE: u64 = 256 << 20;

/// Why a revocation list was not applied. The list held before stays in force.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The file could not be read.
    #[error("revocation list {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a signed revocation list.
    #[error("revocation list {path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The signature does not verify under the key center's public key.
    #[error("revocation list {path} is not signed by the key center named in the directory")]
    BadSignature {
        /// The file.
        path: PathBuf,
    },
    /// The list is older than the one held (lists only grow).
    #[error(
        "revocation list {path} has serial {found}, older than serial {held} already held: ignored"
    )]
    Older {
        /// The file.
        path: PathBuf,
        /// Its serial.
        found: u64,
        /// The serial held.
        held: u64,
    },
    /// `--revocations` was given but the directory names no key center key to check it with.
    #[error(
        "the directory names no revocation key (add it with `warifu keycenter directory center`)"
    )]
    NoCenterKey,
}

/// A party's revocation list, fed from a file.
#[derive(Debug)]
pub struct RevocationFeed {
    path: PathBuf,
    center: CenterPublicKey,
    revocations: Revocations,
    seen: Mutex<Option<SystemTime>>,
}

impl RevocationFeed {
    /// The feed of `path`, checked under `center`. A missing file is an empty list until it
    /// appears; a file that is there must verify.
    pub fn open(
        path: &Path,
        center: CenterPublicKey,
    ) -> Result<Arc<RevocationFeed>, RevocationError> {
        let feed = Arc::new(RevocationFeed {
            path: path.to_owned(),
            center,
            revocations: Revocations::new(),
            seen: Mutex::new(None),
        });
        if path.exists() {
            feed.refresh()?;
        } else {
            tracing::warn!(path = %path.display(), "no revocation list yet: none revoked until it appears");
        }
        Ok(feed)
    }

    /// The revocations held, shared with the key source and the session guard.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Applies `signed` if it verifies and is newer than the list held; whether it was
    /// applied (the same serial again is not an error).
    pub fn apply(&self, signed: &SignedRevocationList) -> Result<bool, RevocationError> {
        let held = self.revocations.serial();
        let list = signed
            .verify(&self.center)
            .map_err(|_| RevocationError::BadSignature {
                path: self.path.clone(),
            })?;
        if list.serial < held {
            return Err(RevocationError::Older {
                path: self.path.clone(),
                found: list.serial,
                held,
            });
        }
        self.revocations
            .apply(signed, &self.center)
            .map_err(|_| RevocationError::BadSignature {
                path: self.path.clone(),
            })
    }

    /// Re-reads the file if it changed since the last read, and applies its list; whether a
    /// newer list was applied. A bad file is read once per change and leaves the list held.
    pub fn refresh(&self) -> Result<bool, RevocationError> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if mtime.is_none() || *seen == mtime {
                return Ok(false);
            }
            *seen = mtime;
        }
        let bytes = crate::files::read_bounded(&self.path, MAX_LIST_FILE).map_err(|source| {
            RevocationError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|_| RevocationError::Invalid {
            path: self.path.clone(),
            detail: "not UTF-8".into(),
        })?;
        let signed =
            SignedRevocationList::from_json(&text).map_err(|e| RevocationError::Invalid {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        let applied = self.apply(&signed)?;
        if applied {
            tracing::info!(
                serial = signed.list.serial,
                revoked = signed.list.revoked.len(),
                "revocation list applied"
            );
        }
        Ok(applied)
    }

    /// Looks at the file every `period` until the runtime stops, logging a list that is not
    /// applied (the one held stays in force).
    pub fn watch(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let feed = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if let Err(e) = feed.refresh() {
                    tracing::warn!(error = %e, "keeping the revocation list held");
                }
            }
        })
    }

    /// `keys`, refusing every pairwise key with an identity this feed revokes.
    pub fn protect(&self, keys: Arc<dyn KeySource>) -> Arc<dyn KeySource> {
        Arc::new(Revocable::new(keys, self.revocations.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warifu_core::PartyId;
    use warifu_core::rand::SeededRandom;
    use warifu_core::revocation::{CenterSigningKey, RevocationList};

    fn touch(path: &Path, secs: u64) {
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .expect("touch");
    }

    #[test]
    fn a_feed_applies_newer_signed_lists_and_keeps_its_list_otherwise() {
        let mut rng = SeededRandom::new(b"feed");
        let center = CenterSigningKey::generate(&mut rng).expect("key");
        let other = CenterSigningKey::generate(&mut rng).expect("key");
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("revocations.json");
        let feed = RevocationFeed::open(&path, center.public()).expect("missing is empty");
        assert_eq!(feed.revocations().serial(), 0);

        let alice = PartyId::parse("cardholder:alice@mail.example").expect("id");
        let first = center.sign(RevocationList::default().with([alice.clone()], 1));
        std::fs::write(&path, first.to_json()).expect("write");
        touch(&path, 1_000);
        assert!(feed.refresh().expect("applies"));
        assert!(feed.revocations().check(&alice).is_err());
        assert!(!feed.refresh().expect("unchanged file"));

        // Signed by another center: refused, the list held stays.
        let bob = PartyId::parse("cardholder:bob@mail.example").expect("id");
        let forged = other.sign(first.list.with([bob.clone()], 2));
        std::fs::write(&path, forged.to_json()).expect("write");
        touch(&path, 2_000);
        assert!(matches!(
            feed.refresh(),
            Err(RevocationError::BadSignature { .. })
        ));
        assert_eq!(feed.revocations().serial(), 1);
        assert!(feed.revocations().check(&bob).is_ok());

        // Newer, then older again: the older one is refused.
        let second = center.sign(first.list.with([bob.clone()], 3));
        assert!(feed.apply(&second).expect("newer"));
        std::fs::write(&path, first.to_json()).expect("write");
        touch(&path, 3_000);
        assert!(matches!(
            feed.refresh(),
            Err(RevocationError::Older {
                found: 1,
                held: 2,
                ..
            })
        ));
        assert!(feed.revocations().check(&bob).is_err());

        // Not a list at all.
        std::fs::write(&path, "{}").expect("write");
        touch(&path, 4_000);
        assert!(matches!(
            feed.refresh(),
            Err(RevocationError::Invalid { .. })
        ));
        // A file present at start must verify.
        std::fs::write(&path, forged.to_json()).expect("write");
        assert!(RevocationFeed::open(&path, center.public()).is_err());
    }
}
