//! Sakai–Ohgishi–Kasahara identity-based non-interactive key agreement on BLS12-381, and
//! the hybrid of it with Blom that removes Blom's collusion bound.
//!
//! A SOK key center holds a secret scalar s. The personal key of an identifier is the pair
//! (s·H1(id) ∈ G1, s·H2(id) ∈ G2), where H1 and H2 are the RFC 9380 random-oracle hashes
//! to G1 and G2 under [`DST_G1`] and [`DST_G2`]. Two parties order their identifiers
//! bytewise, lo < hi, and share the pairing value
//! e(H1(lo), H2(hi))^s = e(s·H1(lo), H2(hi)) = e(H1(lo), s·H2(hi)):
//! the lo party pairs its G1 key with H2(hi), the hi party pairs H1(lo) with its G2 key.
//! Unlike Blom, no number of colluding key holders recovers s (that would solve the
//! discrete logarithm in G1 or G2); an adversary must break the pairing problem or hold the
//! master.
//!
//! The hybrid ([`KeyScheme::Hybrid`], the default) feeds both shared secrets into one HKDF
//! ([`crate::keysource::Hybrid`]): breaking it needs k+1 colluding Blom key holders (or the
//! Blom master) **and** a break of SOK (or the SOK master). The two masters live in two key
//! files and can be held by two separate key centers.

use blst::{BLST_ERROR, blst_fp, blst_fp12, blst_p1_affine, blst_p2_affine, min_pk, min_sig};
use zeroize::{Zeroize, Zeroizing};

use crate::blom::PersonalKey;
use crate::id::PartyId;
use crate::keyfile::{KeyFile, SokKeyFile};
use crate::keysource::{Hybrid, KeySource, Scheme};
use crate::rand::Randomness;
use crate::secret::Secret;
use crate::{Error, Result};

/// RFC 9380 domain separation tag of the identifier hash to G1 (suite
/// `BLS12381G1_XMD:SHA-256_SSWU_RO_`).
pub const DST_G1: &[u8] = b"WARIFU-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// RFC 9380 domain separation tag of the identifier hash to G2 (suite
/// `BLS12381G2_XMD:SHA-256_SSWU_RO_`).
pub const DST_G2: &[u8] = b"WARIFU-V01-CS01-with-BLS12381G2_XMD:SHA-256_SSWU_RO_";
/// Bytes of the master scalar (big-endian).
pub const SCALAR_BYTES: usize = 32;
/// Bytes of a compressed G1 point (the ZCash / IETF BLS encoding).
pub const G1_BYTES: usize = 48;
/// Bytes of a compressed G2 point.
pub const G2_BYTES: usize = 96;
/// Bytes of the shared secret: the GT element as 12 big-endian Fp coefficients.
pub const GT_BYTES: usize = 576;

fn bls_error(field: &'static str, e: BLST_ERROR) -> Error {
    let why = match e {
        BLST_ERROR::BLST_BAD_ENCODING => "bad encoding",
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => "point not on the curve",
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => "point not in the prime-order subgroup",
        BLST_ERROR::BLST_PK_IS_INFINITY => "point at infinity",
        BLST_ERROR::BLST_BAD_SCALAR => "scalar out of range",
        _ => "rejected by the pairing library",
    };
    Error::malformed(field, why)
}

/// The SOK key center's master secret: a scalar s with 0 < s < r.
pub struct SokMaster {
    g1: min_sig::SecretKey,
    g2: min_pk::SecretKey,
}

impl SokMaster {
    /// Draws a fresh master from `rng` (the OS CSPRNG in production): 32 bytes with the top
    /// bit cleared, read big-endian, redrawn until 0 < s < r (uniform in 1..r).
    pub fn generate(rng: &mut dyn Randomness) -> Result<SokMaster> {
        loop {
            let mut b = Zeroizing::new([0u8; SCALAR_BYTES]);
            rng.fill(&mut b[..])?;
            b[0] &= 0x7f;
            if let Ok(m) = SokMaster::from_bytes(&b) {
                return Ok(m);
            }
        }
    }

    /// The master from its 32-byte big-endian encoding; refuses 0 and values ≥ r.
    pub fn from_bytes(bytes: &[u8; SCALAR_BYTES]) -> Result<SokMaster> {
        let g2 = min_pk::SecretKey::from_bytes(bytes).map_err(|e| bls_error("SOK master", e))?;
        let g1 = min_sig::SecretKey::from_bytes(bytes).map_err(|e| bls_error("SOK master", e))?;
        Ok(SokMaster { g1, g2 })
    }

    /// The 32-byte big-endian encoding (the key-file body).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_BYTES]> {
        Zeroizing::new(self.g2.to_bytes())
    }

    /// The master's public key s·P1 (P1 the G1 generator), compressed. Public like any BLS
    /// public key: recovering s from it is the discrete logarithm in G1. The protocol needs
    /// it nowhere; it names the master (`keycenter show` prints its fingerprint) and checks
    /// a key's G2 half came from it, e(P1, s·H2(id)) = e(s·P1, H2(id)).
    pub fn public_key(&self) -> [u8; G1_BYTES] {
        self.g2.sk_to_pk().compress()
    }

    /// Issues the personal key of `id`: (s·H1(id), s·H2(id)). Constant time in s.
    pub fn personal_key(&self, id: &PartyId) -> SokKey {
        let msg = id.as_str().as_bytes();
        let g1: blst_p1_affine = self.g1.sign(msg, DST_G1, &[]).into();
        let g2: blst_p2_affine = self.g2.sign(msg, DST_G2, &[]).into();
        SokKey {
            id: id.clone(),
            g1,
            g2,
        }
    }
}

impl core::fmt::Debug for SokMaster {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SokMaster { s: <redacted> }")
    }
}

/// A party's SOK personal key: s·H1(id) ∈ G1 and s·H2(id) ∈ G2. Zeroized on drop.
#[derive(Clone)]
pub struct SokKey {
    id: PartyId,
    g1: blst_p1_affine,
    g2: blst_p2_affine,
}

impl SokKey {
    /// Rebuilds a key from its compressed points (as read from a key file). Refuses
    /// non-canonical encodings, points off the curve or outside the prime-order subgroup,
    /// the point at infinity, and halves that were not issued for `id` under one master
    /// (checked as e(s·H1(id), H2(id)) = e(H1(id), s·H2(id)), two pairings).
    pub fn from_parts(id: PartyId, g1: &[u8; G1_BYTES], g2: &[u8; G2_BYTES]) -> Result<SokKey> {
        let p1 =
            min_sig::Signature::sig_validate(g1, true).map_err(|e| bls_error("SOK G1 key", e))?;
        if p1.compress() != *g1 {
            return Err(Error::malformed("SOK G1 key", "non-canonical encoding"));
        }
        let p2 =
            min_pk::Signature::sig_validate(g2, true).map_err(|e| bls_error("SOK G2 key", e))?;
        if p2.compress() != *g2 {
            return Err(Error::malformed("SOK G2 key", "non-canonical encoding"));
        }
        let key = SokKey {
            id,
            g1: p1.into(),
            g2: p2.into(),
        };
        let mine = key.id.as_str().as_bytes();
        let left = miller_g1_key(&key.g1, mine)?;
        let right = miller_g2_key(&key.g2, mine)?;
        if !blst_fp12::finalverify(&left, &right) {
            return Err(Error::malformed(
                "SOK personal key",
                "its G1 and G2 halves do not belong to one master and this identifier",
            ));
        }
        Ok(key)
    }

    /// The holder's identifier.
    pub fn id(&self) -> &PartyId {
        &self.id
    }

    /// s·H1(id), compressed (48 bytes).
    pub fn g1_bytes(&self) -> [u8; G1_BYTES] {
        min_sig::Signature::from(self.g1).compress()
    }

    /// s·H2(id), compressed (96 bytes).
    pub fn g2_bytes(&self) -> [u8; G2_BYTES] {
        min_pk::Signature::from(self.g2).compress()
    }

    /// The shared pairing value with `peer`, e(H1(lo), H2(hi))^s, as [`GT_BYTES`] bytes
    /// (see [`gt_bytes`]). One hash to G2 or G1 and one pairing. With its own identifier it
    /// is e(H1(id), H2(id))^s.
    pub fn shared_gt(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        let mine = self.id.as_str().as_bytes();
        let theirs = peer.as_str().as_bytes();
        let mut ml = match mine.cmp(theirs) {
            // I am lo: e(s·H1(me), H2(peer)).
            core::cmp::Ordering::Less => miller_g1_key(&self.g1, theirs)?,
            // I am hi: e(H1(peer), s·H2(me)).
            core::cmp::Ordering::Greater => miller_g2_key(&self.g2, theirs)?,
            // Its own identifier: e(s·H1(me), H2(me)), which only this holder and the center
            // compute; the stateless responder's secret (PROTOCOL.md §12.5). `pairwise_key`
            // still refuses a key with oneself.
            core::cmp::Ordering::Equal => miller_g1_key(&self.g1, theirs)?,
        };
        let mut gt = ml.final_exp();
        wipe_fp12(&mut ml);
        let out = gt_bytes(&gt);
        wipe_fp12(&mut gt);
        Ok(out)
    }
}

/// The Miller loop of e(key, H2(msg)) for a G1 key.
fn miller_g1_key(key: &blst_p1_affine, msg: &[u8]) -> Result<blst_fp12> {
    let mut ctx = blst::Pairing::new(true, DST_G2);
    match ctx.aggregate(key, false, &(), false, msg, &[]) {
        BLST_ERROR::BLST_SUCCESS => Ok(ctx.as_fp12()),
        e => Err(bls_error("SOK G1 key", e)),
    }
}

/// The Miller loop of e(H1(msg), key) for a G2 key.
fn miller_g2_key(key: &blst_p2_affine, msg: &[u8]) -> Result<blst_fp12> {
    let mut ctx = blst::Pairing::new(true, DST_G1);
    match ctx.aggregate(key, false, &(), false, msg, &[]) {
        BLST_ERROR::BLST_SUCCESS => Ok(ctx.as_fp12()),
        e => Err(bls_error("SOK G2 key", e)),
    }
}

/// The canonical encoding of a GT element: its six Fp2 coefficients of 1, w, w², w³, w⁴, w⁵
/// in Fp12 = Fp2[w]/(w⁶ − (u + 1)), Fp2 = Fp[u]/(u² + 1), each as c0 then c1 (the real then
/// the u part), each Fp value fully reduced, 48 bytes big-endian: 12 × 48 = 576 bytes.
/// (In the tower Fp12 = Fp6[w]/(w² − v), Fp6 = Fp2[v]/(v³ − (u + 1)) this is
/// c0.c0, c1.c0, c0.c1, c1.c1, c0.c2, c1.c2, blst's `blst_bendian_from_fp12`.)
pub fn gt_bytes(gt: &blst_fp12) -> Zeroizing<Vec<u8>> {
    let mut raw = gt.to_bendian();
    let out = Zeroizing::new(raw.to_vec());
    raw.zeroize();
    out
}

fn wipe_fp(fp: &mut blst_fp) {
    fp.l.zeroize();
}

fn wipe_fp12(x: &mut blst_fp12) {
    for fp6 in &mut x.fp6 {
        for fp2 in &mut fp6.fp2 {
            fp2.fp.iter_mut().for_each(wipe_fp);
        }
    }
}

impl Drop for SokKey {
    fn drop(&mut self) {
        wipe_fp(&mut self.g1.x);
        wipe_fp(&mut self.g1.y);
        self.g2.x.fp.iter_mut().for_each(wipe_fp);
        self.g2.y.fp.iter_mut().for_each(wipe_fp);
    }
}

impl core::fmt::Debug for SokKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SokKey {{ id: {}, points: <redacted> }}", self.id)
    }
}

impl KeySource for SokKey {
    fn owner(&self) -> &PartyId {
        &self.id
    }
    fn scheme(&self) -> Scheme {
        Scheme::Sok
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        self.shared_gt(peer)
    }
}

/// Which key scheme a deployment uses to derive pairwise keys. `hybrid` is the default.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyScheme {
    /// Blom alone: fast, but k+1 colluding key holders recover the master.
    Blom,
    /// SOK alone: no collusion bound, one pairing per new counterparty.
    Sok,
    /// Blom and SOK combined (the default): breaking a key needs breaking both.
    #[default]
    Hybrid,
}

impl KeyScheme {
    /// Every choice, in order.
    pub const ALL: [KeyScheme; 3] = [KeyScheme::Blom, KeyScheme::Sok, KeyScheme::Hybrid];

    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScheme::Blom => "blom",
            KeyScheme::Sok => "sok",
            KeyScheme::Hybrid => "hybrid",
        }
    }

    /// The scheme code that appears in sealed-order headers.
    pub fn scheme(self) -> Scheme {
        match self {
            KeyScheme::Blom => Scheme::Blom,
            KeyScheme::Sok => Scheme::Sok,
            KeyScheme::Hybrid => Scheme::Hybrid,
        }
    }
}

impl core::fmt::Display for KeyScheme {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for KeyScheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<KeyScheme> {
        KeyScheme::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::ParameterMismatch(format!(
                    "unknown key scheme {:?}: expected blom, sok or hybrid",
                    s.chars().take(32).collect::<String>()
                ))
            })
    }
}

/// Builds the hybrid key source of one party: Blom first, SOK second. Its shared secret is
/// `0x01 ‖ u16(32) ‖ Blom bytes ‖ 0x03 ‖ u16(576) ‖ SOK pairing value` and its header
/// scheme is [`Scheme::Hybrid`] (see [`crate::keysource::Hybrid`]).
pub fn hybrid(blom: PersonalKey, sok: SokKey) -> Result<Hybrid> {
    if blom.id() != sok.id() {
        return Err(Error::ParameterMismatch(format!(
            "the Blom key is for {} but the SOK key is for {}",
            blom.id(),
            sok.id()
        )));
    }
    Hybrid::new(vec![Box::new(blom), Box::new(sok)])
}

/// A party's personal keys as collected from its key files: the Blom half (from the Blom
/// key center), the SOK half (from the SOK key center), or both.
#[derive(Debug, Default)]
pub struct PartyKeys {
    blom: Option<PersonalKey>,
    sok: Option<SokKey>,
}

impl PartyKeys {
    /// No keys yet.
    pub fn new() -> PartyKeys {
        PartyKeys::default()
    }

    /// Adds the keys of one encoded key file: a Blom personal key, a SOK personal key or a
    /// hybrid personal key (both halves). Masters and other kinds are refused, as is a
    /// second key of one half or a key of another owner.
    pub fn add_file(&mut self, bytes: &[u8], passphrase: Option<&Secret>) -> Result<()> {
        if SokKeyFile::is_sok_kind(bytes) {
            match SokKeyFile::decode(bytes, passphrase)? {
                SokKeyFile::Personal(k) => self.add_sok(k),
                SokKeyFile::Hybrid(b, s) => {
                    self.add_blom(b)?;
                    self.add_sok(s)
                }
                SokKeyFile::Master(_) => Err(not_a_party_key("a SOK key center's master")),
            }
        } else {
            match KeyFile::decode(bytes, passphrase)? {
                KeyFile::Personal(k) => self.add_blom(k),
                other => Err(not_a_party_key(other.kind_name())),
            }
        }
    }

    /// Adds the Blom half.
    pub fn add_blom(&mut self, key: PersonalKey) -> Result<()> {
        self.check_owner(key.id())?;
        if self.blom.is_some() {
            return Err(Error::ParameterMismatch("two Blom personal keys".into()));
        }
        self.blom = Some(key);
        Ok(())
    }

    /// Adds the SOK half.
    pub fn add_sok(&mut self, key: SokKey) -> Result<()> {
        self.check_owner(key.id())?;
        if self.sok.is_some() {
            return Err(Error::ParameterMismatch("two SOK personal keys".into()));
        }
        self.sok = Some(key);
        Ok(())
    }

    fn check_owner(&self, id: &PartyId) -> Result<()> {
        match self.owner() {
            Some(owner) if owner != id => Err(Error::ParameterMismatch(format!(
                "keys of two owners: {owner} and {id}"
            ))),
            _ => Ok(()),
        }
    }

    /// Whose keys these are, once any is added.
    pub fn owner(&self) -> Option<&PartyId> {
        self.blom
            .as_ref()
            .map(PersonalKey::id)
            .or(self.sok.as_ref().map(SokKey::id))
    }

    /// The schemes these keys can serve.
    pub fn available(&self) -> Vec<KeyScheme> {
        let mut v = Vec::new();
        if self.blom.is_some() {
            v.push(KeyScheme::Blom);
        }
        if self.sok.is_some() {
            v.push(KeyScheme::Sok);
        }
        if self.blom.is_some() && self.sok.is_some() {
            v.push(KeyScheme::Hybrid);
        }
        v
    }

    /// The key source for `scheme`, consuming the keys; a half the scheme does not use is
    /// dropped (and zeroized).
    pub fn key_source(self, scheme: KeyScheme) -> Result<Box<dyn KeySource>> {
        let missing = |what: &str| {
            Error::ParameterMismatch(format!(
                "the {scheme} scheme needs {what}; add its key file"
            ))
        };
        match scheme {
            KeyScheme::Blom => Ok(Box::new(
                self.blom.ok_or_else(|| missing("a Blom personal key"))?,
            )),
            KeyScheme::Sok => Ok(Box::new(
                self.sok.ok_or_else(|| missing("a SOK personal key"))?,
            )),
            KeyScheme::Hybrid => {
                let blom = self
                    .blom
                    .ok_or_else(|| missing("a Blom personal key (from the Blom key center)"))?;
                let sok = self
                    .sok
                    .ok_or_else(|| missing("a SOK personal key (from the SOK key center)"))?;
                Ok(Box::new(hybrid(blom, sok)?))
            }
        }
    }
}

fn not_a_party_key(what: &str) -> Error {
    Error::ParameterMismatch(format!(
        "the key file holds {what}, not a party's personal key"
    ))
}

/// Builds a party's key source for `scheme` from its encoded key files (each with its
/// passphrase if sealed): e.g. a Blom personal key file and a SOK personal key file, or one
/// hybrid personal key file.
pub fn load_key_source(
    scheme: KeyScheme,
    files: &[(&[u8], Option<&Secret>)],
) -> Result<Box<dyn KeySource>> {
    let mut keys = PartyKeys::new();
    for (bytes, pass) in files {
        keys.add_file(bytes, *pass)?;
    }
    keys.key_source(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::pairwise_key;
    use crate::rand::SeededRandom;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn the_public_key_is_s_times_the_generator() {
        let mut one = [0u8; SCALAR_BYTES];
        one[SCALAR_BYTES - 1] = 1;
        let g1 = "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb";
        let pk = SokMaster::from_bytes(&one).expect("s = 1").public_key();
        let hex: String = pk.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, g1);
        let m = SokMaster::generate(&mut SeededRandom::new(b"pk")).expect("master");
        assert_ne!(m.public_key(), pk);
    }

    #[test]
    fn both_ends_agree_and_pairs_differ() {
        let m = SokMaster::generate(&mut SeededRandom::new(b"sok")).expect("master");
        let ids = [id("cardholder:a"), id("merchant:m"), id("issuer:i")];
        let keys: Vec<_> = ids.iter().map(|i| m.personal_key(i)).collect();
        let ab = keys[0].shared_gt(&ids[1]).expect("gt");
        assert_eq!(ab.len(), GT_BYTES);
        assert_eq!(ab, keys[1].shared_gt(&ids[0]).expect("gt"));
        assert_ne!(ab, keys[0].shared_gt(&ids[2]).expect("gt"));
        let own = keys[0].shared_gt(&ids[0]).expect("own value");
        assert_ne!(own, ab);
        assert_ne!(own, keys[1].shared_gt(&ids[1]).expect("own value"));
        assert_eq!(
            pairwise_key(&keys[2], &ids[1]).expect("k"),
            pairwise_key(&keys[1], &ids[2]).expect("k")
        );
    }

    #[test]
    fn key_round_trips_and_rejects_mixed_halves() {
        let m1 = SokMaster::generate(&mut SeededRandom::new(b"one")).expect("master");
        let m2 = SokMaster::generate(&mut SeededRandom::new(b"two")).expect("master");
        let a = id("merchant:m");
        let k1 = m1.personal_key(&a);
        let k2 = m2.personal_key(&a);
        let back = SokKey::from_parts(a.clone(), &k1.g1_bytes(), &k1.g2_bytes()).expect("ok");
        assert_eq!(back.g2_bytes(), k1.g2_bytes());
        assert!(SokKey::from_parts(a.clone(), &k1.g1_bytes(), &k2.g2_bytes()).is_err());
        assert!(SokKey::from_parts(id("merchant:n"), &k1.g1_bytes(), &k1.g2_bytes()).is_err());
        let again = SokMaster::from_bytes(&m1.to_bytes()).expect("master");
        assert_eq!(again.personal_key(&a).g1_bytes(), k1.g1_bytes());
        assert!(SokMaster::from_bytes(&[0u8; 32]).is_err());
        assert!(SokMaster::from_bytes(&[0xff; 32]).is_err());
    }

    #[test]
    fn scheme_names_parse() {
        for s in KeyScheme::ALL {
            assert_eq!(s.as_str().parse::<KeyScheme>().ok(), Some(s));
        }
        assert_eq!(KeyScheme::default(), KeyScheme::Hybrid);
        assert!("rsa".parse::<KeyScheme>().is_err());
    }
}
