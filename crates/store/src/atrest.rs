//! Data at rest: card numbers and destinations are stored encrypted under data keys, which
//! are stored wrapped under a key-encryption key (KEK) kept outside the database.
//!
//! - Each card number (issuer) and each destination (carrier: addressee and address) is
//!   XChaCha20-Poly1305 ciphertext under a *data key*; the row names its key (`key_id`), and
//!   the associated data binds the ciphertext to its column and row (a ciphertext moved to
//!   another row does not open). A card also keeps HMAC-SHA256 of its number under the
//!   *lookup key* (`number_mac`), to find a card by number without decrypting.
//! - The data keys and the lookup key live in the `data_keys` table, each wrapped
//!   (XChaCha20-Poly1305) under the KEK. The KEK comes from [`StoreOptions::kek`], else
//!   [`KEK_FILE_ENV`] (a file of 64 hex digits, 0600) or [`KEK_ENV`] (64 hex digits), else —
//!   for a SQLite file — `NAME.kek` beside the database, created 0600 on first use (the
//!   default of `warifu demo`, `warifu up` and tests); a PostgreSQL store without a KEK
//!   refuses to read or write card numbers and destinations.
//! - Rotation without downtime ([`Store::rotate_data_key`], [`Store::reencrypt`]): a new data
//!   key becomes the active one (new writes use it); every store refreshes its keys at least
//!   every [`REFRESH`], and on meeting a key it does not know; the re-encryption pass moves
//!   the rows under older keys to the active one in small transactions. Old keys stay
//!   (wrapped) until [`Store::retire_data_keys`] drops those no row uses.
//! - Rows written before schema version 5 (plaintext) are encrypted in place the first time
//!   a store loads its keys (on SQLite with `secure_delete`, then a WAL checkpoint, so the
//!   old text does not linger in free pages).
//!
//! [`StoreOptions::kek`]: crate::StoreOptions::kek

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::open::{Db, Store};
use crate::sql::{postgres, sqlite};

/// The environment variable naming a file that holds the key-encryption key.
pub const KEK_FILE_ENV: &str = "WARIFU_DATA_KEK_FILE";
/// The environment variable holding the key-encryption key itself (64 hex digits).
pub const KEK_ENV: &str = "WARIFU_DATA_KEK";
/// How long a store uses its loaded keys before it looks for a newer active key.
pub const REFRESH: Duration = Duration::from_secs(30);
/// The largest KEK file read (a KEK file is 64 hex digits and a line ending).
const KEK_FILE_MAX: u64 = 4096;
const NONCE: usize = 24;
/// A message that marks a row under a data key this store has not loaded (it reloads once).
const UNKNOWN_KEY: &str = "a row is encrypted under a data key this store does not know";

/// A key-encryption key: 32 bytes, wiped when dropped, never printed.
#[derive(Clone)]
pub struct Kek(Zeroizing<[u8; 32]>);

impl core::fmt::Debug for Kek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl PartialEq for Kek {
    fn eq(&self, other: &Kek) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&*other.0))
    }
}
impl Eq for Kek {}

fn dk(message: impl Into<String>) -> StoreError {
    StoreError::DataKey(message.into())
}

impl Kek {
    /// A KEK of these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Kek {
        Kek(Zeroizing::new(bytes))
    }

    /// A fresh random KEK.
    pub fn generate() -> Result<Kek> {
        Ok(Kek(random32()?))
    }

    /// Parses 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Kek> {
        let t = text.trim();
        let bad = || dk("a key-encryption key is 64 hex digits (32 bytes)");
        if t.len() != 64 {
            return Err(bad());
        }
        let mut out = Zeroizing::new([0u8; 32]);
        for (i, pair) in t.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
        }
        Ok(Kek(out))
    }

    /// The 64 hex digits.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(64));
        for b in self.0.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Reads a KEK file (64 hex digits). Refused if larger than 4 KiB or, on Unix, readable
    /// or writable by others than its owner.
    pub fn read_file(path: &Path) -> Result<Kek> {
        use std::io::Read as _;
        let fail = |e: std::io::Error| dk(format!("cannot read {}: {e}", path.display()));
        let f = std::fs::File::open(path).map_err(fail)?;
        let meta = f.metadata().map_err(fail)?;
        if !meta.is_file() {
            return Err(dk(format!("{} is not a regular file", path.display())));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(dk(format!(
                    "{} is accessible to others (mode {mode:o}); chmod 600 it",
                    path.display()
                )));
            }
        }
        let mut text = Zeroizing::new(String::new());
        f.take(KEK_FILE_MAX + 1)
            .read_to_string(&mut text)
            .map_err(fail)?;
        if text.len() as u64 > KEK_FILE_MAX {
            return Err(dk(format!(
                "{} is larger than {KEK_FILE_MAX} bytes",
                path.display()
            )));
        }
        Kek::from_hex(&text).map_err(|e| dk(format!("{}: {e}", path.display())))
    }

    /// Reads the KEK file at `path`, or creates it (0600, a fresh random KEK) if missing.
    pub fn read_or_create_file(path: &Path) -> Result<Kek> {
        use std::io::Write as _;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(path) {
            Ok(mut f) => {
                let kek = Kek::generate()?;
                let mut text = kek.to_hex();
                text.push('\n');
                f.write_all(text.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| dk(format!("cannot write {}: {e}", path.display())))?;
                Ok(kek)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Kek::read_file(path),
            Err(e) => Err(dk(format!("cannot create {}: {e}", path.display()))),
        }
    }
}

/// Where a store's KEK comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    /// This key.
    Key(Kek),
    /// A file of 64 hex digits that must exist.
    File(PathBuf),
    /// A file of 64 hex digits, created with a fresh key if missing.
    FileOrCreate(PathBuf),
}

impl KekSource {
    /// The KEK named by the environment ([`KEK_FILE_ENV`], then [`KEK_ENV`]), if any.
    pub fn from_env() -> Result<Option<KekSource>> {
        if let Some(path) = std::env::var_os(KEK_FILE_ENV).filter(|v| !v.is_empty()) {
            return Ok(Some(KekSource::File(PathBuf::from(path))));
        }
        match std::env::var(KEK_ENV) {
            Ok(v) if !v.is_empty() => Ok(Some(KekSource::Key(Kek::from_hex(&v)?))),
            _ => Ok(None),
        }
    }

    fn load(&self) -> Result<Kek> {
        match self {
            KekSource::Key(k) => Ok(k.clone()),
            KekSource::File(p) => Kek::read_file(p),
            KekSource::FileOrCreate(p) => Kek::read_or_create_file(p),
        }
    }
}

fn random32() -> Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(k.as_mut()).map_err(|_| dk("no operating-system randomness"))?;
    Ok(k)
}

fn aead(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.into())
}

/// `nonce ‖ XChaCha20-Poly1305(key, nonce, plain, aad)`.
fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).map_err(|_| dk("no operating-system randomness"))?;
    let ct = aead(key)
        .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
        .map_err(|_| dk("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if blob.len() < NONCE + 16 {
        return None;
    }
    let (nonce, ct) = blob.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().ok()?;
    aead(key)
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn wrap_aad(key_id: i64, purpose: &str) -> Vec<u8> {
    let mut aad = b"warifu/v1/data-key\0".to_vec();
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

fn field_aad(column: &str, row: &str) -> Vec<u8> {
    let mut aad = b"warifu/v1/at-rest\0".to_vec();
    aad.extend_from_slice(column.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

/// What a stored key is for.
pub(crate) const PURPOSE_DATA: &str = "data";
pub(crate) const PURPOSE_LOOKUP: &str = "lookup";
/// The columns encrypted (the associated data names them).
pub(crate) const CARD_NUMBER: &str = "issuer_cards.number";
pub(crate) const DESTINATION: &str = "carrier_shipments.destination";

/// A `data_keys` row.
#[derive(Debug, Clone)]
pub(crate) struct WrappedKey {
    pub(crate) key_id: i64,
    pub(crate) purpose: String,
    pub(crate) wrapped: Vec<u8>,
    pub(crate) created_at_ms: i64,
    pub(crate) retired_at_ms: Option<i64>,
}

/// Wraps a fresh random key under `kek` for `key_id`.
pub(crate) fn new_wrapped(
    kek: &Kek,
    key_id: i64,
    purpose: &str,
    now_ms: i64,
) -> Result<WrappedKey> {
    let key = random32()?;
    Ok(WrappedKey {
        key_id,
        purpose: purpose.to_owned(),
        wrapped: seal(&kek.0, &wrap_aad(key_id, purpose), key.as_ref())?,
        created_at_ms: now_ms,
        retired_at_ms: None,
    })
}

/// The associated data of a wrapped KEM private key: its epoch and KEM.
fn kem_aad(row: &crate::kemkeys::KemKeyRow) -> Vec<u8> {
    let mut aad = b"warifu/v3/kem-key\0".to_vec();
    aad.extend_from_slice(&row.epoch.to_be_bytes());
    aad.extend_from_slice(row.kem.as_bytes());
    aad
}

/// Wraps a KEM private key of `row`'s epoch under `kek`.
pub(crate) fn wrap_kem(
    kek: &Kek,
    row: &crate::kemkeys::KemKeyRow,
    secret: &[u8; 32],
) -> Result<Vec<u8>> {
    seal(&kek.0, &kem_aad(row), secret)
}

/// Unwraps `row`'s KEM private key.
pub(crate) fn unwrap_kem(
    kek: &Kek,
    row: &crate::kemkeys::KemKeyRow,
) -> Result<Zeroizing<[u8; 32]>> {
    let plain = open(&kek.0, &kem_aad(row), &row.wrapped).ok_or_else(|| {
        dk(format!(
            "KEM key of epoch {} does not open under this key-encryption key (a wrong KEK?)",
            row.epoch
        ))
    })?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt("kem_keys.wrapped"))?;
    Ok(Zeroizing::new(bytes))
}

/// Re-wraps a stored KEM private key under another KEK.
pub(crate) fn rewrap_kem(old: &Kek, new: &Kek, row: &crate::kemkeys::KemKeyRow) -> Result<Vec<u8>> {
    let secret = unwrap_kem(old, row)?;
    wrap_kem(new, row, &secret)
}

/// Re-wraps a stored key under another KEK.
pub(crate) fn rewrap(old: &Kek, new: &Kek, w: &WrappedKey) -> Result<Vec<u8>> {
    let key = unwrap(old, w)?;
    seal(&new.0, &wrap_aad(w.key_id, &w.purpose), key.as_ref())
}

fn unwrap(kek: &Kek, w: &WrappedKey) -> Result<Zeroizing<[u8; 32]>> {
    let plain = open(&kek.0, &wrap_aad(w.key_id, &w.purpose), &w.wrapped).ok_or_else(|| {
        dk(format!(
            "data key {} does not open under this key-encryption key (a wrong KEK?)",
            w.key_id
        ))
    })?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt("data_keys.wrapped"))?;
    Ok(Zeroizing::new(bytes))
}

/// A ciphertext and the data key it is under.
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    pub(crate) key_id: i64,
    pub(crate) blob: Vec<u8>,
}

/// The unwrapped keys of a store.
pub(crate) struct Keyring {
    data: BTreeMap<i64, Zeroizing<[u8; 32]>>,
    lookup: Zeroizing<[u8; 32]>,
    active: i64,
    loaded: Instant,
}

impl Keyring {
    /// Unwraps every stored key; `None` if there is no data key or no lookup key yet.
    pub(crate) fn unwrap_all(kek: &Kek, rows: &[WrappedKey]) -> Result<Option<Keyring>> {
        let mut data = BTreeMap::new();
        let mut lookup = None;
        for w in rows {
            match w.purpose.as_str() {
                PURPOSE_DATA => {
                    data.insert(w.key_id, unwrap(kek, w)?);
                }
                PURPOSE_LOOKUP if lookup.is_none() => lookup = Some(unwrap(kek, w)?),
                PURPOSE_LOOKUP => {}
                _ => return Err(StoreError::Corrupt("data_keys.purpose")),
            }
        }
        let (Some(lookup), Some(&active)) = (lookup, data.keys().next_back()) else {
            return Ok(None);
        };
        Ok(Some(Keyring {
            data,
            lookup,
            active,
            loaded: Instant::now(),
        }))
    }

    /// The active data key's id.
    pub(crate) fn active(&self) -> i64 {
        self.active
    }

    /// Encrypts `plain` for `column` of row `row` under the active key.
    pub(crate) fn seal(&self, column: &str, row: &str, plain: &[u8]) -> Result<Sealed> {
        let key = self.data.get(&self.active).ok_or_else(|| dk(UNKNOWN_KEY))?;
        Ok(Sealed {
            key_id: self.active,
            blob: seal(key, &field_aad(column, row), plain)?,
        })
    }

    /// Decrypts a stored value; [`StoreError::Corrupt`] names the column if it does not open.
    pub(crate) fn open(
        &self,
        column: &'static str,
        row: &str,
        key_id: i64,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.data.get(&key_id).ok_or_else(|| dk(UNKNOWN_KEY))?;
        open(key, &field_aad(column, row), blob).ok_or(StoreError::Corrupt(column))
    }

    /// HMAC-SHA256 of a card number under the lookup key.
    pub(crate) fn number_mac(&self, number: &str) -> Vec<u8> {
        let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.lookup.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(b"warifu/v1/card-number\0");
        m.update(number.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
}

/// Whether an error says a row is under a data key the store has not loaded.
pub(crate) fn is_unknown_key(e: &StoreError) -> bool {
    matches!(e, StoreError::DataKey(m) if m == UNKNOWN_KEY)
}

/// A store's key state, shared by its clones: where its KEK comes from and the keys loaded.
pub(crate) struct AtRest {
    source: Option<KekSource>,
    kek: RwLock<Option<Kek>>,
    ring: RwLock<Option<Arc<Keyring>>>,
    /// Serializes loading (one load at a time; the others then use its result).
    loading: tokio::sync::Mutex<()>,
    legacy_done: AtomicBool,
}

impl core::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AtRest { .. }")
    }
}

impl AtRest {
    /// The key state of a store opened with `explicit` (from its options) over a SQLite file
    /// at `sqlite_file` (`None`: in memory or PostgreSQL), `memory` for an in-memory
    /// database.
    pub(crate) fn new(
        explicit: Option<&KekSource>,
        sqlite_file: Option<&Path>,
        memory: bool,
    ) -> Result<Arc<AtRest>> {
        let source = match explicit {
            Some(s) => Some(s.clone()),
            None => match KekSource::from_env()? {
                Some(s) => Some(s),
                None if memory => Some(KekSource::Key(Kek::generate()?)),
                None => sqlite_file.map(|f| KekSource::FileOrCreate(f.with_extension("kek"))),
            },
        };
        Ok(Arc::new(AtRest {
            source,
            kek: RwLock::new(None),
            ring: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            legacy_done: AtomicBool::new(false),
        }))
    }

    /// The KEK (read once, then kept).
    pub(crate) fn kek(&self) -> Result<Kek> {
        if let Some(k) = self.kek.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(k.clone());
        }
        let source = self.source.as_ref().ok_or_else(|| {
            dk(format!(
                "no key-encryption key for card numbers and destinations: set {KEK_FILE_ENV} \
                 (a 0600 file of 64 hex digits) or {KEK_ENV}"
            ))
        })?;
        let k = source.load()?;
        *self.kek.write().unwrap_or_else(|p| p.into_inner()) = Some(k.clone());
        Ok(k)
    }

    /// Replaces the KEK (after its data keys were re-wrapped under `kek`).
    pub(crate) fn set_kek(&self, kek: Kek) {
        *self.kek.write().unwrap_or_else(|p| p.into_inner()) = Some(kek);
    }

    /// The loaded keys if fresh (younger than [`REFRESH`]) or `!fresh_only`.
    pub(crate) fn cached(&self, fresh_only: bool) -> Option<Arc<Keyring>> {
        self.ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|r| !fresh_only || r.loaded.elapsed() < REFRESH)
            .cloned()
    }

    pub(crate) fn install(&self, ring: Keyring) -> Arc<Keyring> {
        let ring = Arc::new(ring);
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Some(ring.clone());
        ring
    }

    pub(crate) async fn lock_loading(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.loading.lock().await
    }

    /// Whether rows from before schema version 5 still need encrypting (checked once).
    pub(crate) fn legacy_pending(&self) -> bool {
        !self.legacy_done.load(Ordering::Acquire)
    }

    pub(crate) fn legacy_finished(&self) {
        self.legacy_done.store(true, Ordering::Release);
    }
}

/// One stored key as reported by [`Store::data_keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyInfo {
    /// Its id (the `key_id` of the rows under it).
    pub key_id: i64,
    /// `data` (encrypts) or `lookup` (the card-number hash).
    pub purpose: String,
    /// Whether new writes use it.
    pub active: bool,
    /// When it was made.
    pub created_at_ms: i64,
    /// When a newer data key superseded it.
    pub retired_at_ms: Option<i64>,
    /// Rows encrypted under it (cards and shipments).
    pub rows: u64,
}

/// Calls the backend's operation.
macro_rules! on_backend {
    ($s:ident, $f:ident($($a:expr),*)) => {
        match &$s.db {
            Db::Sqlite(p) => sqlite::$f(p $(, $a)*).await,
            Db::Postgres(p) => postgres::$f(p $(, $a)*).await,
        }
    };
}

impl Store {
    /// Uses `kek` as the key-encryption key from now on (instead of the one the options or
    /// the environment named); give it before the keys are first loaded.
    pub fn use_kek(&self, kek: Kek) {
        match &self.db {
            Db::Sqlite(p) => p.at_rest.set_kek(kek),
            Db::Postgres(p) => p.at_rest.set_kek(kek),
        }
    }

    /// The stored keys (none before the first card or destination is written).
    pub async fn data_keys(&self) -> Result<Vec<DataKeyInfo>> {
        on_backend!(self, data_key_info())
    }

    /// Makes a new data key the active one: this store writes under it at once, every other
    /// store using the database within [`REFRESH`]. Returns its id. Rows under older keys
    /// stay readable; [`Store::reencrypt`] moves them.
    pub async fn rotate_data_key(&self, now_ms: i64) -> Result<i64> {
        on_backend!(self, rotate_data_key(now_ms))
    }

    /// Moves every row not under the active data key to it (and encrypts any plaintext row
    /// left from before schema version 5), `batch` rows per transaction. Returns how many
    /// rows it moved. Safe while services run: each row is compared-and-set.
    pub async fn reencrypt(&self, batch: u32) -> Result<u64> {
        on_backend!(self, reencrypt(batch.max(1), false))
    }

    /// Drops the data keys superseded before `before_ms` that no row uses any more. Returns
    /// their ids.
    pub async fn retire_data_keys(&self, before_ms: i64) -> Result<Vec<i64>> {
        on_backend!(self, retire_data_keys(before_ms))
    }

    /// Re-wraps every stored key under `new` (KEK rotation) in one transaction; this store
    /// uses `new` from then on. Other stores of the database must be restarted with the new
    /// KEK before they next load keys.
    pub async fn rewrap_data_keys(&self, new: &Kek) -> Result<usize> {
        on_backend!(self, rewrap_data_keys(new))
    }

    /// Loads the keys again now (instead of within [`REFRESH`]).
    pub async fn refresh_data_keys(&self) -> Result<()> {
        on_backend!(self, keyring(true)).map(|_| ())
    }

    /// The ids of the cards whose number is `number` (by its keyed hash).
    pub async fn card_ids_by_number(&self, number: &str) -> Result<Vec<String>> {
        on_backend!(self, card_ids_by_number(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_hex_and_wrap() {
        let kek = Kek::generate().expect("kek");
        assert_eq!(Kek::from_hex(&kek.to_hex()).expect("hex"), kek);
        assert!(Kek::from_hex("00").is_err());
        assert!(!format!("{kek:?}").contains(&kek.to_hex()[..8]));
        let w = new_wrapped(&kek, 7, PURPOSE_DATA, 1).expect("wrap");
        let other = Kek::generate().expect("kek");
        assert!(unwrap(&other, &w).is_err());
        let mut moved = w.clone();
        moved.key_id = 8;
        assert!(unwrap(&kek, &moved).is_err(), "bound to its id");
        let l = new_wrapped(&kek, 1, PURPOSE_LOOKUP, 1).expect("wrap");
        let ring = Keyring::unwrap_all(&kek, &[l, w])
            .expect("unwrap")
            .expect("complete");
        let s = ring
            .seal(CARD_NUMBER, "C-1", b"4539148803436467")
            .expect("seal");
        assert_eq!(s.key_id, 7);
        assert!(!s.blob.windows(4).any(|x| x == b"4539"));
        let back = ring.open(CARD_NUMBER, "C-1", 7, &s.blob).expect("open");
        assert_eq!(back.as_slice(), b"4539148803436467");
        assert!(
            ring.open(CARD_NUMBER, "C-2", 7, &s.blob).is_err(),
            "bound to its row"
        );
        assert!(is_unknown_key(
            &ring.open(CARD_NUMBER, "C-1", 9, &s.blob).expect_err("err")
        ));
        assert_eq!(ring.number_mac("1"), ring.number_mac("1"));
        assert_ne!(ring.number_mac("1"), ring.number_mac("2"));
    }

    #[test]
    fn kek_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("x.kek");
        let a = Kek::read_or_create_file(&path).expect("create");
        let b = Kek::read_or_create_file(&path).expect("read");
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = Kek::read_file(&path).expect_err("world-readable");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        let big = dir.path().join("big.kek");
        std::fs::write(&big, vec![b'a'; 10_000]).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        assert!(Kek::read_file(&big).is_err());
    }
}
