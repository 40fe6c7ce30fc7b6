//! The key center's directory: identifier → role → endpoint, a JSON file every party reads to
//! find its peers. Several merchants, issuers and carriers can be listed at once.
//!
//! ```json
//! {"version": 1, "revocation_key": "<the key center's BLS public key, base64url>", "parties": [
//!   {"id": "merchant:shop.example", "role": "merchant", "endpoint": "http://127.0.0.1:8081"}
//! ]}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use warifu_core::revocation::CenterPublicKey;
use warifu_core::{PartyId, Role};

/// The directory format version this build reads and writes.
pub const DIRECTORY_VERSION: u32 = 1;

/// What can go wrong with a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The file could not be read or written.
    #[error("directory file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid directory.
    #[error("invalid directory: {0}")]
    Invalid(String),
    /// The identifier is not listed.
    #[error("{0} is not in the key center's directory")]
    Unknown(PartyId),
    /// The identifier is listed in another role than required.
    #[error("{id} is listed as a {listed}, not a {wanted}")]
    WrongRole {
        /// The identifier.
        id: PartyId,
        /// Its listed role.
        listed: Role,
        /// The role asked for.
        wanted: Role,
    },
}

/// One listed institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The public identifier (its prefix is the role).
    pub id: PartyId,
    /// The role, stated explicitly (must agree with the identifier's prefix).
    pub role: Role,
    /// The base URL of its service, `http://host:port` or `https://…`, no trailing slash.
    pub endpoint: String,
}

impl Entry {
    /// An entry for `id` at `endpoint`, validated.
    pub fn new(id: PartyId, endpoint: &str) -> Result<Entry, DirectoryError> {
        let e = Entry {
            role: id.role(),
            id,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        };
        e.check()?;
        Ok(e)
    }

    fn check(&self) -> Result<(), DirectoryError> {
        if self.role != self.id.role() {
            return Err(DirectoryError::Invalid(format!(
                "{} is listed with role {}",
                self.id, self.role
            )));
        }
        if self.role == Role::Cardholder {
            return Err(DirectoryError::Invalid(format!(
                "{}: cardholders run no service and are not listed",
                self.id
            )));
        }
        let rest = self
            .endpoint
            .strip_prefix("http://")
            .or_else(|| self.endpoint.strip_prefix("https://"));
        match rest {
            Some(host)
                if !host.is_empty()
                    && !host.contains(char::is_whitespace)
                    && !self.endpoint.ends_with('/') => {}
            _ => {
                return Err(DirectoryError::Invalid(format!(
                    "{}: endpoint must be http(s)://host[:port][/path] without a trailing slash",
                    self.id
                )));
            }
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revocation_key: Option<CenterPublicKey>,
    parties: Vec<Entry>,
}

/// The directory: who is who and where, and the key center's public key that its revocation
/// lists verify under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    entries: BTreeMap<PartyId, Entry>,
    revocation_key: Option<CenterPublicKey>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory::default()
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, entry: Entry) {
        self.entries.insert(entry.id.clone(), entry);
    }

    /// The key center's revocation public key, if the directory names one.
    pub fn revocation_key(&self) -> Option<&CenterPublicKey> {
        self.revocation_key.as_ref()
    }

    /// Names the key center's revocation public key.
    pub fn set_revocation_key(&mut self, key: CenterPublicKey) {
        self.revocation_key = Some(key);
    }

    /// Removes an entry; whether it was there.
    pub fn remove(&mut self, id: &PartyId) -> bool {
        self.entries.remove(id).is_some()
    }

    /// Every entry, by identifier.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entry of `id`, if listed.
    pub fn get(&self, id: &PartyId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// The entry of `id`, which must be listed in `role`.
    pub fn lookup(&self, id: &PartyId, role: Role) -> Result<&Entry, DirectoryError> {
        let e = self
            .entries
            .get(id)
            .ok_or_else(|| DirectoryError::Unknown(id.clone()))?;
        if e.role != role {
            return Err(DirectoryError::WrongRole {
                id: id.clone(),
                listed: e.role,
                wanted: role,
            });
        }
        Ok(e)
    }

    /// Parses the JSON form, validating every entry and refusing duplicates.
    pub fn from_json(text: &str) -> Result<Directory, DirectoryError> {
        let file: DirectoryFile = serde_json::from_str(text)
            .map_err(|e| DirectoryError::Invalid(crate::error::redact_quoted(&e.to_string())))?;
        if file.version != DIRECTORY_VERSION {
            return Err(DirectoryError::Invalid(format!(
                "version {} (this build reads version {DIRECTORY_VERSION})",
                file.version
            )));
        }
        let mut d = Directory {
            revocation_key: file.revocation_key,
            ..Directory::default()
        };
        for e in file.parties {
            e.check()?;
            if d.entries.contains_key(&e.id) {
                return Err(DirectoryError::Invalid(format!("{} is listed twice", e.id)));
            }
            d.insert(e);
        }
        Ok(d)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let file = DirectoryFile {
            version: DIRECTORY_VERSION,
            revocation_key: self.revocation_key.clone(),
            parties: self.entries.values().cloned().collect(),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
    }

    /// Reads a directory file.
    pub fn load(path: &Path) -> Result<Directory, DirectoryError> {
        let bytes =
            crate::files::read_bounded(path, crate::files::MAX_INPUT).map_err(|source| {
                DirectoryError::Io {
                    path: path.to_owned(),
                    source,
                }
            })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| DirectoryError::Invalid(format!("{} is not UTF-8", path.display())))?;
        Directory::from_json(&text)
    }

    /// Writes the directory file atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), DirectoryError> {
        let io = |source| DirectoryError::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, self.to_json()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// How long a directory file's mtime, once checked, is trusted: a service asks for its
/// directory on every request, and one `statx` each was ≈ 1 % of an order's CPU.
const RECHECK: Duration = Duration::from_millis(50);

/// A directory shared by a running service: in memory, and re-read from its file when the
/// file changed (so `warifu keycenter directory add` reaches running services within
/// [`RECHECK`]).
#[derive(Debug)]
pub struct SharedDirectory {
    path: Option<PathBuf>,
    current: RwLock<(Arc<Directory>, Option<SystemTime>)>,
    /// When the file's mtime was last compared (`None`: not yet).
    checked: Mutex<Option<Instant>>,
}

impl SharedDirectory {
    /// A fixed directory with no file behind it.
    pub fn fixed(dir: Directory) -> SharedDirectory {
        SharedDirectory {
            path: None,
            current: RwLock::new((Arc::new(dir), None)),
            checked: Mutex::new(None),
        }
    }

    /// A directory read from `path`, and re-read whenever the file's mtime changes.
    pub fn from_file(path: &Path) -> Result<SharedDirectory, DirectoryError> {
        let dir = Directory::load(path)?;
        let mtime = mtime(path);
        Ok(SharedDirectory {
            path: Some(path.to_owned()),
            current: RwLock::new((Arc::new(dir), mtime)),
            checked: Mutex::new(None),
        })
    }

    /// The current directory (re-read first if its file changed since it was last checked,
    /// at most [`RECHECK`] ago; a bad file keeps the last good directory and is logged).
    pub fn get(&self) -> Arc<Directory> {
        if let Some(path) = &self.path
            && self.due()
        {
            let now = mtime(path);
            let stale = self.current.read().map(|c| c.1 != now).unwrap_or_default();
            if stale {
                match Directory::load(path) {
                    Ok(d) => {
                        if let Ok(mut c) = self.current.write() {
                            *c = (Arc::new(d), now);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "keeping the previous directory"),
                }
            }
        }
        self.current
            .read()
            .map(|c| c.0.clone())
            .unwrap_or_else(|p| p.into_inner().0.clone())
    }

    /// Whether the file's mtime is to be compared now (and, if so, notes that it was).
    fn due(&self) -> bool {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.is_some_and(|at| at.elapsed() < RECHECK) {
            return false;
        }
        *checked = Some(Instant::now());
        true
    }

    /// Replaces the in-memory directory (and the file, if there is one).
    pub fn replace(&self, dir: Directory) -> Result<(), DirectoryError> {
        if let Some(path) = &self.path {
            dir.save(path)?;
        }
        let m = self.path.as_deref().and_then(mtime);
        let mut c = self.current.write().unwrap_or_else(|p| p.into_inner());
        *c = (Arc::new(dir), m);
        Ok(())
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn round_trips_and_validates() {
        let mut d = Directory::new();
        d.insert(Entry::new(id("merchant:a"), "http://127.0.0.1:1/").expect("entry"));
        d.insert(Entry::new(id("issuer:b"), "https://bank.example").expect("entry"));
        let back = Directory::from_json(&d.to_json()).expect("parse");
        assert_eq!(back, d);
        assert_eq!(
            back.lookup(&id("merchant:a"), Role::Merchant)
                .expect("a")
                .endpoint,
            "http://127.0.0.1:1"
        );
        assert!(matches!(
            back.lookup(&id("merchant:a"), Role::Issuer),
            Err(DirectoryError::WrongRole { .. })
        ));
        assert!(matches!(
            back.lookup(&id("merchant:zz"), Role::Merchant),
            Err(DirectoryError::Unknown(_))
        ));
        assert!(Entry::new(id("cardholder:x"), "http://h").is_err());
        assert!(Entry::new(id("carrier:x"), "ftp://h").is_err());
        for bad in [
            r#"{"version":2,"parties":[]}"#,
            r#"{"version":1,"parties":[{"id":"merchant:a","role":"issuer","endpoint":"http://h"}]}"#,
            r#"{"version":1,"parties":[{"id":"merchant:a","role":"merchant","endpoint":"http://h"},{"id":"merchant:a","role":"merchant","endpoint":"http://g"}]}"#,
            r#"{"version":1}"#,
            "not json",
        ] {
            assert!(Directory::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shared_directory_rereads_its_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("directory.json");
        let mut d = Directory::new();
        d.insert(Entry::new(id("merchant:a"), "http://127.0.0.1:1").expect("entry"));
        d.save(&path).expect("save");
        let shared = SharedDirectory::from_file(&path).expect("load");
        assert!(shared.get().get(&id("issuer:b")).is_none());
        d.insert(Entry::new(id("issuer:b"), "http://127.0.0.1:2").expect("entry"));
        d.save(&path).expect("save");
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(2))
            .expect("touch");
        // The file is looked at again once RECHECK has passed since the last look.
        std::thread::sleep(RECHECK + Duration::from_millis(10));
        assert!(shared.get().get(&id("issuer:b")).is_some());
    }
}
