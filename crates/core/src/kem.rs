//! Recipients' KEM keys with epochs (issue 19): the X25519 key pairs that sealed format
//! version 3 seals each part to with HPKE (RFC 9180), kept in a small ring per party.
//!
//! A party (merchant, issuer, carrier) holds the private keys of its current epoch and of
//! the epochs still in their grace period; deleting an epoch's private key makes every part
//! sealed to it unreadable, whatever else leaks later (forward secrecy). Epochs count up from
//! 1. Keys are made with RFC 9180 `DeriveKeyPair` from 32 random bytes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use curve25519_dalek::scalar::clamp_integer;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::hpke::{self, RecipientKey};
use crate::rand::Randomness;
use crate::{Error, Result};

/// A KEM that version-3 parts can be sealed to, with its RFC 9180 KEM identifier on the wire.
/// Only X25519 today; a post-quantum hybrid (X-Wing) would be a second variant (PROTOCOL.md
/// §19.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KemId {
    /// DHKEM(X25519, HKDF-SHA256), RFC 9180 KEM id 0x0020.
    #[serde(rename = "x25519-hkdf-sha256")]
    X25519HkdfSha256,
}

impl KemId {
    /// The RFC 9180 KEM identifier.
    pub fn code(self) -> u16 {
        match self {
            KemId::X25519HkdfSha256 => 0x0020,
        }
    }

    /// The KEM of an RFC 9180 identifier, if this build seals to it.
    pub fn from_code(code: u16) -> Option<KemId> {
        (code == 0x0020).then_some(KemId::X25519HkdfSha256)
    }

    /// Bytes of an encapsulated key (`Nenc`).
    pub fn enc_len(self) -> usize {
        match self {
            KemId::X25519HkdfSha256 => 32,
        }
    }

    /// Bytes of a public key (`Npk`).
    pub fn public_len(self) -> usize {
        match self {
            KemId::X25519HkdfSha256 => 32,
        }
    }

    /// The name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KemId::X25519HkdfSha256 => "x25519-hkdf-sha256",
        }
    }
}

/// A recipient's published KEM public key of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "KemPublicKeyJson")]
pub struct KemPublicKey {
    /// The KEM.
    pub kem: KemId,
    /// The epoch, from 1 up.
    pub epoch: u32,
    /// The serialized public key (`Npk` bytes).
    #[serde(with = "crate::sealed::b64_vec")]
    pub public_key: Vec<u8>,
    /// The same key for HPKE, with the sender's precomputed table for it (built once the key
    /// has been sealed to often enough, shared by every clone: the cardholder's cache of
    /// recipients' keys keeps it).
    #[serde(skip)]
    recipient: RecipientKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KemPublicKeyJson {
    kem: KemId,
    epoch: u32,
    #[serde(with = "crate::sealed::b64_vec")]
    public_key: Vec<u8>,
}

impl TryFrom<KemPublicKeyJson> for KemPublicKey {
    type Error = Error;
    fn try_from(j: KemPublicKeyJson) -> Result<KemPublicKey> {
        KemPublicKey::new(j.kem, j.epoch, j.public_key)
    }
}

impl KemPublicKey {
    /// Checks the epoch (≥ 1) and that the bytes are a public key of `kem`.
    pub fn new(kem: KemId, epoch: u32, public_key: Vec<u8>) -> Result<KemPublicKey> {
        if epoch == 0 {
            return Err(Error::malformed("KEM epoch", "epochs start at 1"));
        }
        if public_key.len() != kem.public_len() {
            return Err(Error::malformed("KEM public key", "wrong length"));
        }
        let recipient = RecipientKey::from_slice(&public_key)
            .map_err(|_| Error::malformed("KEM public key", "not a public key of its KEM"))?;
        Ok(KemPublicKey {
            kem,
            epoch,
            public_key,
            recipient,
        })
    }

    /// The key to encapsulate to. Its precomputation is only used while `public_key` (a public
    /// field) still holds the bytes it was made for.
    pub(crate) fn recipient(&self) -> Result<RecipientKey> {
        if self.recipient.as_bytes().as_slice() == self.public_key.as_slice() {
            return Ok(self.recipient.clone());
        }
        RecipientKey::from_slice(&self.public_key)
            .map_err(|_| Error::malformed("KEM public key", "not a public key of its KEM"))
    }

    /// A short fingerprint for logs and dashboards: base64url of the first 8 bytes of
    /// SHA-256 over the key.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        B64.encode(&Sha256::digest(&self.public_key)[..8])
    }
}

/// One epoch's KEM private key (wiped on drop, never printed).
#[derive(Clone)]
pub struct KemSecretKey {
    kem: KemId,
    epoch: u32,
    secret: Zeroizing<[u8; 32]>,
    public: KemPublicKey,
}

impl core::fmt::Debug for KemSecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KemSecretKey")
            .field("kem", &self.kem)
            .field("epoch", &self.epoch)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KemSecretKey {
    /// A fresh key pair for `epoch`: RFC 9180 `DeriveKeyPair(ikm)` with 32 random bytes.
    pub fn generate(epoch: u32, rng: &mut dyn Randomness) -> Result<KemSecretKey> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill(ikm.as_mut())?;
        let (sk, _) = hpke::derive_key_pair(ikm.as_ref());
        // Stored clamped, as RFC 9180's SerializePrivateKey of X25519 must.
        let bytes = Zeroizing::new(clamp_integer(*sk));
        KemSecretKey::from_bytes(KemId::X25519HkdfSha256, epoch, bytes.as_ref())
    }

    /// The key of these serialized private-key bytes (as [`KemSecretKey::expose_bytes`]).
    pub fn from_bytes(kem: KemId, epoch: u32, bytes: &[u8]) -> Result<KemSecretKey> {
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::malformed("KEM private key", "wrong length"))?;
        let secret = Zeroizing::new(secret);
        let public = KemPublicKey::new(kem, epoch, hpke::public_key(&secret).to_vec())?;
        Ok(KemSecretKey {
            kem,
            epoch,
            secret,
            public,
        })
    }

    /// The KEM.
    pub fn kem(&self) -> KemId {
        self.kem
    }

    /// The epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The public key to publish.
    pub fn public(&self) -> &KemPublicKey {
        &self.public
    }

    /// The serialized private key, for storing it encrypted. Each call site is a place where
    /// the secret leaves its wrapper.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key's bytes (`pkRm`), computed once when the key was made or loaded.
    pub(crate) fn public_bytes(&self) -> &[u8; 32] {
        self.public.recipient.as_bytes()
    }
}

/// A party's KEM private keys: the current epoch (the highest) and the older epochs still in
/// their grace period. An epoch whose key is not in the ring cannot be opened.
#[derive(Debug, Clone, Default)]
pub struct KemRing {
    keys: Vec<KemSecretKey>,
}

impl KemRing {
    /// A ring of these keys (their epochs must differ).
    pub fn new(keys: Vec<KemSecretKey>) -> Result<KemRing> {
        let mut ring = KemRing::default();
        for k in keys {
            ring.insert(k)?;
        }
        Ok(ring)
    }

    /// Adds a key; an epoch already present is refused.
    pub fn insert(&mut self, key: KemSecretKey) -> Result<()> {
        if self.get(key.kem, key.epoch).is_some() {
            return Err(Error::malformed("KEM epoch", "already in the ring"));
        }
        self.keys.push(key);
        self.keys.sort_by_key(|k| k.epoch);
        Ok(())
    }

    /// The key of the highest epoch: the one to publish.
    pub fn current(&self) -> Option<&KemSecretKey> {
        self.keys.last()
    }

    /// The key of `epoch`, if it has not been deleted.
    pub fn get(&self, kem: KemId, epoch: u32) -> Option<&KemSecretKey> {
        self.keys.iter().find(|k| k.kem == kem && k.epoch == epoch)
    }

    /// Deletes the key of `epoch` (its parts can never be opened again); whether it was there.
    pub fn remove(&mut self, epoch: u32) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.epoch != epoch);
        self.keys.len() != before
    }

    /// Every key, oldest epoch first.
    pub fn keys(&self) -> &[KemSecretKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::SeededRandom;

    #[test]
    fn keys_round_trip_and_print_no_secret() {
        let k = KemSecretKey::generate(3, &mut SeededRandom::new(b"k")).expect("key");
        let back = KemSecretKey::from_bytes(k.kem(), 3, k.expose_bytes()).expect("back");
        assert_eq!(back.public(), k.public());
        let json = serde_json::to_string(k.public()).expect("json");
        let parsed: KemPublicKey = serde_json::from_str(&json).expect("parse");
        assert_eq!(&parsed, k.public());
        let debug = format!("{k:?}");
        assert!(debug.contains("redacted"));
        assert!(!debug.contains(&format!("{:?}", k.expose_bytes())));
    }

    #[test]
    fn bad_public_keys_and_epochs_are_refused() {
        let kem = KemId::X25519HkdfSha256;
        assert!(KemPublicKey::new(kem, 0, vec![9; 32]).is_err());
        assert!(KemPublicKey::new(kem, 1, vec![9; 31]).is_err());
        assert!(
            serde_json::from_str::<KemPublicKey>(
                r#"{"kem":"x25519-hkdf-sha256","epoch":1,"public_key":"AA"}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<KemPublicKey>(
            r#"{"kem":"x-wing","epoch":1,"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#
        )
        .is_err());
        assert_eq!(KemId::from_code(0x647a), None);
    }

    #[test]
    fn the_ring_keeps_one_key_per_epoch_and_forgets_deleted_ones() {
        let mut rng = SeededRandom::new(b"r");
        let kem = KemId::X25519HkdfSha256;
        let mut ring = KemRing::new(vec![
            KemSecretKey::generate(2, &mut rng).expect("2"),
            KemSecretKey::generate(1, &mut rng).expect("1"),
        ])
        .expect("ring");
        assert_eq!(ring.current().map(KemSecretKey::epoch), Some(2));
        assert!(
            ring.insert(KemSecretKey::generate(2, &mut rng).expect("2"))
                .is_err()
        );
        assert!(ring.remove(1) && !ring.remove(1));
        assert!(ring.get(kem, 1).is_none() && ring.get(kem, 2).is_some());
    }
}
