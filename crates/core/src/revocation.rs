//! The key center's revocation list: identifiers (each with its epoch, `id~2`, …) whose keys
//! no party may accept any more, signed by the center with a BLS signature on BLS12-381
//! (blst, min-pk: a 48-byte public key, 96-byte signatures) so that every party holding the
//! center's public key — it is in every party's directory — can authenticate it, and no party
//! (not even one holding Blom or SOK keys) can forge it.
//!
//! A revoked identity is re-issued under a new epoch (a new identifier, new keys); its old keys
//! stop working wherever the list has arrived: [`Revocable`] wraps a party's key source so that
//! it refuses any key with a revoked peer ([`Error::Revoked`]) — handshakes, sealed orders and
//! attestations alike. Serials only grow: an older list never replaces a newer one.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use blst::{BLST_ERROR, min_pk};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::Writer;
use crate::id::PartyId;
use crate::keyfile::{KdfParams, open_envelope, seal_envelope};
use crate::keysource::{KeySource, Scheme};
use crate::rand::Randomness;
use crate::sealed::b64_array;
use crate::secret::Secret;
use crate::{Error, Result};

/// The BLS domain-separation tag of revocation-list signatures.
pub const REVOCATION_DST: &[u8] =
    b"WARIFU-V02-REVOCATION-LIST_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
/// The label in front of a list's signed bytes.
pub const LIST_LABEL: &[u8] = b"warifu/v2/revocation-list";
/// The key-file kind of the center's revocation signing key (§11 envelope).
pub const SIGNING_KEY_KIND: u8 = 16;
/// The most identifiers a list holds.
pub const MAX_REVOKED: usize = 1 << 20;

/// The key center's signing key (a BLS12-381 scalar).
pub struct CenterSigningKey(min_pk::SecretKey);

impl core::fmt::Debug for CenterSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CenterSigningKey(<redacted>)")
    }
}

impl CenterSigningKey {
    /// A fresh key from 32 random bytes.
    pub fn generate(rng: &mut dyn Randomness) -> Result<CenterSigningKey> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill(&mut ikm[..])?;
        min_pk::SecretKey::key_gen(&ikm[..], b"warifu/v2/revocation-key")
            .map(CenterSigningKey)
            .map_err(|_| Error::Rng)
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<CenterSigningKey> {
        min_pk::SecretKey::from_bytes(bytes)
            .map(CenterSigningKey)
            .map_err(|_| Error::malformed("revocation signing key", "not a valid scalar"))
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The key as a key file (kind [`SIGNING_KEY_KIND`], body the 32-byte scalar), sealed
    /// under `passphrase` when one is given, like the masters.
    pub fn encode_file(
        &self,
        passphrase: Option<(&Secret, KdfParams)>,
        rng: &mut dyn Randomness,
    ) -> Result<Vec<u8>> {
        seal_envelope(SIGNING_KEY_KIND, &self.to_bytes()[..], passphrase, rng)
    }

    /// Reads a key file written by [`Self::encode_file`].
    pub fn decode_file(bytes: &[u8], passphrase: Option<&Secret>) -> Result<CenterSigningKey> {
        let (kind, body) = open_envelope(bytes, passphrase)?;
        if kind != SIGNING_KEY_KIND {
            return Err(Error::malformed(
                "kind",
                format!("kind {kind} is not a revocation signing key"),
            ));
        }
        let scalar: [u8; 32] = body[..]
            .try_into()
            .map_err(|_| Error::malformed("revocation signing key", "not 32 bytes"))?;
        CenterSigningKey::from_bytes(&scalar)
    }

    /// The public key every party verifies lists with.
    pub fn public(&self) -> CenterPublicKey {
        CenterPublicKey(self.0.sk_to_pk().compress())
    }

    /// Signs `list`.
    pub fn sign(&self, list: RevocationList) -> SignedRevocationList {
        let signature = self.0.sign(&list.encode(), REVOCATION_DST, &[]).compress();
        SignedRevocationList { list, signature }
    }
}

/// The key center's public key (a compressed G1 point), as it appears in directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CenterPublicKeyJson", into = "CenterPublicKeyJson")]
pub struct CenterPublicKey([u8; 48]);

#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct CenterPublicKeyJson(#[serde(with = "b64_array")] [u8; 48]);

impl TryFrom<CenterPublicKeyJson> for CenterPublicKey {
    type Error = Error;
    fn try_from(j: CenterPublicKeyJson) -> Result<CenterPublicKey> {
        CenterPublicKey::from_bytes(&j.0)
    }
}

impl From<CenterPublicKey> for CenterPublicKeyJson {
    fn from(k: CenterPublicKey) -> CenterPublicKeyJson {
        CenterPublicKeyJson(k.0)
    }
}

impl CenterPublicKey {
    /// Parses and validates a compressed public key (on the curve, in the group, not the
    /// identity).
    pub fn from_bytes(bytes: &[u8; 48]) -> Result<CenterPublicKey> {
        min_pk::PublicKey::key_validate(bytes)
            .map_err(|_| Error::malformed("center public key", "not a valid G1 point"))?;
        Ok(CenterPublicKey(*bytes))
    }

    /// The compressed bytes.
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0
    }
}

/// The identifiers revoked so far, under an increasing serial.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    /// Grows with every list the center publishes.
    pub serial: u64,
    /// When the center published it, Unix seconds.
    pub issued_at: u64,
    /// The revoked identifiers (each epoch separately).
    pub revoked: BTreeSet<PartyId>,
}

impl RevocationList {
    /// The signed bytes: label ‖ u64 serial ‖ u64 issued_at ‖ u32 count ‖ (u16-len id)* in
    /// byte order.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(LIST_LABEL)
            .u64(self.serial)
            .u64(self.issued_at)
            .u32(self.revoked.len() as u32);
        for id in &self.revoked {
            w.bytes16(id.as_str().as_bytes());
        }
        w.finish()
    }

    /// Whether `id` is revoked.
    pub fn is_revoked(&self, id: &PartyId) -> bool {
        self.revoked.contains(id)
    }

    /// The next list: this one plus `ids`, serial + 1.
    pub fn with(&self, ids: impl IntoIterator<Item = PartyId>, now: u64) -> RevocationList {
        let mut next = self.clone();
        next.revoked.extend(ids);
        next.serial += 1;
        next.issued_at = now;
        next
    }
}

/// A list with the center's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRevocationList {
    /// The list.
    pub list: RevocationList,
    /// The BLS signature over [`RevocationList::encode`].
    #[serde(with = "b64_array")]
    pub signature: [u8; 96],
}

impl SignedRevocationList {
    /// The list, if the signature verifies under `center`.
    pub fn verify(&self, center: &CenterPublicKey) -> Result<&RevocationList> {
        if self.list.revoked.len() > MAX_REVOKED {
            return Err(Error::malformed("revocation list", "too many identifiers"));
        }
        let pk = min_pk::PublicKey::key_validate(&center.0).map_err(|_| Error::Decrypt)?;
        let sig =
            min_pk::Signature::sig_validate(&self.signature, true).map_err(|_| Error::Decrypt)?;
        match sig.verify(true, &self.list.encode(), REVOCATION_DST, &[], &pk, true) {
            BLST_ERROR::BLST_SUCCESS => Ok(&self.list),
            _ => Err(Error::Decrypt),
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses the JSON form (the signature is not checked here: [`Self::verify`]).
    pub fn from_json(s: &str) -> Result<SignedRevocationList> {
        serde_json::from_str(s).map_err(|e| Error::malformed("revocation list JSON", e.to_string()))
    }
}

/// The revocations a party has received, shared by its key sources and updated in place
/// when a newer list arrives.
#[derive(Debug, Clone, Default)]
pub struct Revocations(Arc<RwLock<RevocationList>>);

impl Revocations {
    /// No identifier revoked yet.
    pub fn new() -> Revocations {
        Revocations::default()
    }

    /// Applies a signed list if it verifies under `center` and is newer than the one held;
    /// returns whether it was applied. A list that does not verify is an error; an older or
    /// equal serial is ignored (lists only grow).
    pub fn apply(&self, signed: &SignedRevocationList, center: &CenterPublicKey) -> Result<bool> {
        let list = signed.verify(center)?;
        let mut held = self.0.write().unwrap_or_else(|p| p.into_inner());
        if list.serial <= held.serial && held.serial != 0 {
            return Ok(false);
        }
        *held = list.clone();
        Ok(true)
    }

    /// Refuses a revoked identity with [`Error::Revoked`].
    pub fn check(&self, id: &PartyId) -> Result<()> {
        let held = self.0.read().unwrap_or_else(|p| p.into_inner());
        if held.is_revoked(id) {
            return Err(Error::Revoked(id.to_string()));
        }
        Ok(())
    }

    /// A copy of the list held.
    pub fn list(&self) -> RevocationList {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The serial of the list held (0: none).
    pub fn serial(&self) -> u64 {
        self.0.read().unwrap_or_else(|p| p.into_inner()).serial
    }
}

/// A key source that refuses any pairwise key with a revoked peer, so handshakes, sealed
/// orders and attestations from (or to) a revoked identity fail with [`Error::Revoked`].
pub struct Revocable<S> {
    inner: S,
    revocations: Revocations,
}

impl<S: KeySource> Revocable<S> {
    /// `inner`, checked against `revocations`.
    pub fn new(inner: S, revocations: Revocations) -> Revocable<S> {
        Revocable { inner, revocations }
    }
}

impl<S: KeySource> KeySource for Revocable<S> {
    fn owner(&self) -> &PartyId {
        self.inner.owner()
    }
    fn scheme(&self) -> Scheme {
        self.inner.scheme()
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        self.revocations.check(peer)?;
        self.revocations.check(self.inner.owner())?;
        self.inner.shared_secret(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blom::Master;
    use crate::keysource::pairwise_key;
    use crate::rand::SeededRandom;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn a_signed_list_verifies_only_under_its_center_and_refuses_revoked_peers() {
        let mut rng = SeededRandom::new(b"r");
        let center = CenterSigningKey::generate(&mut rng).expect("key");
        let other = CenterSigningKey::generate(&mut rng).expect("key");
        let alice = id("cardholder:alice@mail.example");
        let signed = center.sign(RevocationList::default().with([alice.clone()], 1_800_000_000));
        let json = signed.to_json();
        let back = SignedRevocationList::from_json(&json).expect("json");
        assert_eq!(back.verify(&center.public()).expect("verifies").serial, 1);
        assert_eq!(back.verify(&other.public()).err(), Some(Error::Decrypt));
        // Any change to the list breaks the signature.
        let mut forged = back.clone();
        forged.list.revoked.clear();
        assert_eq!(forged.verify(&center.public()).err(), Some(Error::Decrypt));
        let mut forged = back.clone();
        forged.list.serial = 9;
        assert!(forged.verify(&center.public()).is_err());
        // The public key round-trips through JSON and is validated.
        let pk_json = serde_json::to_string(&center.public()).expect("pk");
        let pk: CenterPublicKey = serde_json::from_str(&pk_json).expect("pk back");
        assert_eq!(pk, center.public());
        assert!(CenterPublicKey::from_bytes(&[0u8; 48]).is_err());
        let again = CenterSigningKey::from_bytes(&center.to_bytes()).expect("bytes");
        assert_eq!(again.public(), center.public());
        // As a key file, plain or sealed; another kind or a wrong passphrase is refused.
        let pass = Secret::new("a passphrase for the test");
        let plain = center.encode_file(None, &mut rng).expect("plain");
        let back = CenterSigningKey::decode_file(&plain, None).expect("decode");
        assert_eq!(back.public(), center.public());
        let sealed = center
            .encode_file(Some((&pass, KdfParams::FAST_FOR_TESTS)), &mut rng)
            .expect("sealed");
        assert!(CenterSigningKey::decode_file(&sealed, None).is_err());
        let wrong = Secret::new("another passphrase");
        assert!(CenterSigningKey::decode_file(&sealed, Some(&wrong)).is_err());
        let back = CenterSigningKey::decode_file(&sealed, Some(&pass)).expect("open");
        assert_eq!(back.public(), center.public());
        let master_file =
            crate::keyfile::KeyFile::Master(Master::generate(2, &mut rng).expect("m"))
                .encode(None, &mut rng)
                .expect("master file");
        assert!(CenterSigningKey::decode_file(&master_file, None).is_err());
        assert!(crate::keyfile::KeyFile::decode(&plain, None).is_err());

        // A party's key source refuses the revoked identity once the list has arrived, and
        // serves its next epoch.
        let master = Master::generate(4, &mut rng).expect("master");
        let revocations = Revocations::new();
        let merchant = Revocable::new(
            master.personal_key(&id("merchant:shop.example")),
            revocations.clone(),
        );
        assert!(pairwise_key(&merchant, &alice).is_ok());
        assert!(revocations.apply(&forged, &center.public()).is_err());
        assert!(
            revocations
                .apply(&signed, &center.public())
                .expect("applies")
        );
        assert_eq!(
            pairwise_key(&merchant, &alice).err(),
            Some(Error::Revoked(alice.to_string()))
        );
        let alice2 = alice.with_epoch(2).expect("e2");
        assert!(pairwise_key(&merchant, &alice2).is_ok());
        // An older list never replaces a newer one.
        let newer = center.sign(signed.list.with([id("carrier:x")], 1_800_000_100));
        assert!(revocations.apply(&newer, &center.public()).expect("newer"));
        assert!(
            !revocations
                .apply(&signed, &center.public())
                .expect("older ignored")
        );
        assert_eq!(revocations.serial(), 2);
        assert!(pairwise_key(&merchant, &alice).is_err());
    }
}
