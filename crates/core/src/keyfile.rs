//! Key files: a versioned binary format for the master and for personal keys, optionally
//! sealed under a passphrase (the [`crate::envelope`]: Argon2id + XChaCha20-Poly1305).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::blom::{LANES, Master, PersonalKey};
use crate::codec::{Reader, Writer};
use crate::field::Fe;
use crate::id::PartyId;
use crate::keysource::{Predistributed, Scheme};
use crate::rand::Randomness;
use crate::secret::{Key32, Secret};
use crate::sok::{G1_BYTES, G2_BYTES, SCALAR_BYTES, SokKey, SokMaster};
use crate::{Error, Result};

/// The first four bytes of every key file.
pub const MAGIC: &[u8; 4] = b"WRFK";
/// The key-file format version this build writes and reads.
pub const VERSION: u8 = 1;

pub use crate::envelope::KdfParams;

/// The contents of a key file.
#[derive(Debug)]
pub enum KeyFile {
    /// A key center's master.
    Master(Master),
    /// A party's Blom personal key.
    Personal(PersonalKey),
    /// A party's table of predistributed pairwise keys (【0053】).
    Predistributed(Predistributed),
}

impl KeyFile {
    fn kind(&self) -> u8 {
        match self {
            KeyFile::Master(_) => 1,
            KeyFile::Personal(_) => 2,
            KeyFile::Predistributed(_) => 3,
        }
    }

    /// A short name of the kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            KeyFile::Master(_) => "master",
            KeyFile::Personal(_) => "personal key",
            KeyFile::Predistributed(_) => "predistributed keys",
        }
    }

    fn body(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut w = Writer::new();
        let entries = |w: &mut Writer, fes: &mut dyn Iterator<Item = Fe>| {
            for fe in fes {
                w.raw(&fe.to_bytes());
            }
        };
        match self {
            KeyFile::Master(m) => {
                w.u8(Scheme::Blom.code()).u32(m.k()).u8(LANES as u8);
                entries(&mut w, &mut m.upper().into_iter());
            }
            KeyFile::Personal(p) => return Ok(personal_body(p)),
            KeyFile::Predistributed(t) => {
                let peers: Vec<_> = t.peers().collect();
                let count = u16::try_from(peers.len()).map_err(|_| {
                    Error::malformed("peer count", "a key file holds at most 65535 peers")
                })?;
                w.bytes16(crate::keysource::KeySource::owner(t).as_str().as_bytes())
                    .u16(count);
                for (peer, key) in peers {
                    w.bytes16(peer.as_str().as_bytes()).raw(key.expose());
                }
            }
        }
        Ok(Zeroizing::new(w.finish()))
    }

    fn parse_body(kind: u8, body: &[u8]) -> Result<KeyFile> {
        let mut r = Reader::new(body);
        let file = match kind {
            1 => {
                scheme(&mut r)?;
                let k = checked_k(r.u32("k")?)?;
                lanes(&mut r)?;
                let n = k as usize + 1;
                let upper = fes(&mut r, LANES * n * (n + 1) / 2, k)?;
                KeyFile::Master(Master::from_upper(k, &upper)?)
            }
            2 => {
                scheme(&mut r)?;
                let id = PartyId::parse(r.str16("identifier")?)?;
                let k = checked_k(r.u32("k")?)?;
                lanes(&mut r)?;
                let all = fes(&mut r, LANES * (k as usize + 1), k)?;
                let mut chunks = all.chunks_exact(k as usize + 1);
                let lanes =
                    core::array::from_fn(|_| chunks.next().map(<[Fe]>::to_vec).unwrap_or_default());
                KeyFile::Personal(PersonalKey::from_parts(id, k, lanes)?)
            }
            3 => {
                let owner = PartyId::parse(r.str16("owner")?)?;
                let count = r.u16("peer count")?;
                let mut keys = BTreeMap::new();
                for _ in 0..count {
                    let peer = PartyId::parse(r.str16("peer")?)?;
                    if keys
                        .insert(peer, Key32::from_bytes(r.array("pairwise key")?))
                        .is_some()
                    {
                        return Err(Error::malformed("peer", "listed twice"));
                    }
                }
                KeyFile::Predistributed(Predistributed::new(owner, keys))
            }
            other => return Err(Error::malformed("kind", format!("unknown kind {other}"))),
        };
        r.finish("key file body")?;
        Ok(file)
    }

    /// Encodes the file, sealed under `passphrase` when one is given.
    pub fn encode(
        &self,
        passphrase: Option<(&Secret, KdfParams)>,
        rng: &mut dyn Randomness,
    ) -> Result<Vec<u8>> {
        seal_envelope(self.kind(), &self.body()?, passphrase, rng)
    }

    /// Decodes a file; `passphrase` is needed when the file is sealed.
    pub fn decode(bytes: &[u8], passphrase: Option<&Secret>) -> Result<KeyFile> {
        let (kind, body) = open_envelope(bytes, passphrase)?;
        if SokKeyFile::KINDS.contains(&kind) {
            return Err(Error::malformed(
                "kind",
                "a SOK or hybrid key file; read it with SokKeyFile::decode or sok::PartyKeys",
            ));
        }
        KeyFile::parse_body(kind, &body)
    }

    /// Whether the encoded file is sealed under a passphrase (without decoding the rest).
    pub fn is_sealed(bytes: &[u8]) -> bool {
        bytes.len() > 6 && &bytes[..4] == MAGIC && bytes[6] == 1
    }
}

/// The body of a Blom personal key (kind 2): `u8(scheme) ‖ u16-len id ‖ u32 k ‖ u8 lanes ‖
/// elements`.
fn personal_body(p: &PersonalKey) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::new();
    w.u8(Scheme::Blom.code())
        .bytes16(p.id().as_str().as_bytes())
        .u32(p.k())
        .u8(LANES as u8);
    for fe in (0..LANES).flat_map(|l| p.lane(l).iter().copied()) {
        w.raw(&fe.to_bytes());
    }
    Zeroizing::new(w.finish())
}

/// Key files of the SOK scheme and of the hybrid (kinds 4–6), in the same envelope as
/// [`KeyFile`] (so sealing under a passphrase works alike). Kept apart from [`KeyFile`] so
/// that existing matches over its kinds stay exhaustive.
#[derive(Debug)]
pub enum SokKeyFile {
    /// Kind 4: a SOK key center's master: `u8(3) ‖ s[32]` (big-endian scalar, 0 < s < r).
    Master(SokMaster),
    /// Kind 5: a SOK personal key: `u8(3) ‖ u16-len id ‖ s·H1(id)[48] ‖ s·H2(id)[96]`
    /// (compressed points).
    Personal(SokKey),
    /// Kind 6: a hybrid personal key bundling both halves of one owner (each issued by its own
    /// key center): `u8(0x80) ‖ u32-len Blom body (kind 2) ‖ u32-len SOK body (kind 5)`.
    Hybrid(PersonalKey, SokKey),
}

impl SokKeyFile {
    /// The kind codes of these files.
    pub const KINDS: [u8; 3] = [4, 5, 6];

    fn kind(&self) -> u8 {
        match self {
            SokKeyFile::Master(_) => 4,
            SokKeyFile::Personal(_) => 5,
            SokKeyFile::Hybrid(..) => 6,
        }
    }

    /// A short name of the kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            SokKeyFile::Master(_) => "SOK master",
            SokKeyFile::Personal(_) => "SOK personal key",
            SokKeyFile::Hybrid(..) => "hybrid personal key",
        }
    }

    /// Whether the encoded file's kind is one of [`SokKeyFile::KINDS`] (without decoding it).
    pub fn is_sok_kind(bytes: &[u8]) -> bool {
        bytes.len() > 5 && &bytes[..4] == MAGIC && SokKeyFile::KINDS.contains(&bytes[5])
    }

    fn body(&self) -> Zeroizing<Vec<u8>> {
        let sok_body = |k: &SokKey| {
            let mut w = Writer::new();
            w.u8(Scheme::Sok.code())
                .bytes16(k.id().as_str().as_bytes())
                .raw(&k.g1_bytes())
                .raw(&k.g2_bytes());
            Zeroizing::new(w.finish())
        };
        let mut w = Writer::new();
        match self {
            SokKeyFile::Master(m) => {
                w.u8(Scheme::Sok.code()).raw(&m.to_bytes()[..]);
            }
            SokKeyFile::Personal(k) => return sok_body(k),
            SokKeyFile::Hybrid(b, s) => {
                w.u8(Scheme::Hybrid.code())
                    .bytes32(&personal_body(b))
                    .bytes32(&sok_body(s));
            }
        }
        Zeroizing::new(w.finish())
    }

    fn parse_body(kind: u8, body: &[u8]) -> Result<SokKeyFile> {
        let mut r = Reader::new(body);
        let expect = |r: &mut Reader<'_>, s: Scheme| match r.u8("scheme")? {
            c if c == s.code() => Ok(()),
            other => Err(Error::malformed(
                "scheme",
                format!("expected code {}, found {other}", s.code()),
            )),
        };
        let sok_key = |r: &mut Reader<'_>| -> Result<SokKey> {
            expect(r, Scheme::Sok)?;
            let id = PartyId::parse(r.str16("identifier")?)?;
            let g1: [u8; G1_BYTES] = r.array("SOK G1 key")?;
            let g2: [u8; G2_BYTES] = r.array("SOK G2 key")?;
            SokKey::from_parts(id, &g1, &g2)
        };
        let file = match kind {
            4 => {
                expect(&mut r, Scheme::Sok)?;
                let s = Zeroizing::new(r.array::<SCALAR_BYTES>("SOK master")?);
                SokKeyFile::Master(SokMaster::from_bytes(&s)?)
            }
            5 => SokKeyFile::Personal(sok_key(&mut r)?),
            6 => {
                expect(&mut r, Scheme::Hybrid)?;
                let KeyFile::Personal(blom) = KeyFile::parse_body(2, r.bytes32("Blom half")?)?
                else {
                    return Err(Error::malformed("Blom half", "not a Blom personal key"));
                };
                let mut sr = Reader::new(r.bytes32("SOK half")?);
                let sok = sok_key(&mut sr)?;
                sr.finish("SOK half")?;
                if blom.id() != sok.id() {
                    return Err(Error::malformed(
                        "hybrid personal key",
                        "the Blom and SOK halves belong to different identifiers",
                    ));
                }
                SokKeyFile::Hybrid(blom, sok)
            }
            other => return Err(Error::malformed("kind", format!("unknown kind {other}"))),
        };
        r.finish("key file body")?;
        Ok(file)
    }

    /// Encodes the file, sealed under `passphrase` when one is given.
    pub fn encode(
        &self,
        passphrase: Option<(&Secret, KdfParams)>,
        rng: &mut dyn Randomness,
    ) -> Result<Vec<u8>> {
        seal_envelope(self.kind(), &self.body(), passphrase, rng)
    }

    /// Decodes a file; `passphrase` is needed when the file is sealed. A SOK personal key is
    /// checked (subgroup membership and the consistency of its two halves: two pairings).
    pub fn decode(bytes: &[u8], passphrase: Option<&Secret>) -> Result<SokKeyFile> {
        let (kind, body) = open_envelope(bytes, passphrase)?;
        if !SokKeyFile::KINDS.contains(&kind) {
            return Err(Error::malformed(
                "kind",
                "not a SOK or hybrid key file; read it with KeyFile::decode",
            ));
        }
        SokKeyFile::parse_body(kind, &body)
    }
}

/// The envelope of every key file: `MAGIC ‖ u8(VERSION) ‖ u8(kind) ‖ u8(protection)` then
/// either `u32-len body` (protection 0) or, sealed under a passphrase (protection 1),
/// `salt[16] ‖ u32 m ‖ u32 t ‖ u32 p ‖ nonce[24] ‖ u32-len XChaCha20-Poly1305(body)` with the
/// bytes before the ciphertext as associated data.
pub(crate) fn seal_envelope(
    kind: u8,
    body: &[u8],
    passphrase: Option<(&Secret, KdfParams)>,
    rng: &mut dyn Randomness,
) -> Result<Vec<u8>> {
    let mut w = Writer::new();
    w.raw(MAGIC).u8(VERSION).u8(kind);
    match passphrase {
        None => {
            w.u8(0).bytes32(body);
            let checksum = plain_checksum(w.as_bytes());
            w.raw(&checksum);
        }
        Some((pass, params)) => {
            w.u8(1);
            let prefix = w.finish();
            return crate::envelope::SealingKey::new(pass, params, rng)?.seal(
                &prefix,
                body,
                rng,
                |out, ct| {
                    let mut framed = Writer::new();
                    framed.bytes32(ct);
                    out.extend_from_slice(&framed.finish());
                },
            );
        }
    }
    Ok(w.finish())
}

/// The label hashed in front of a plain key file's bytes to give its trailing checksum.
pub const CHECKSUM_LABEL: &[u8] = b"warifu/v1/keyfile-checksum";

/// SHA-256(CHECKSUM_LABEL ‖ every byte before the checksum): a plain file has no AEAD tag, so
/// this is what turns a corrupted byte into a clear error instead of a silently different key.
fn plain_checksum(covered: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::new()
        .chain_update(CHECKSUM_LABEL)
        .chain_update(covered)
        .finalize()
        .into()
}

/// Opens the envelope: the kind and the (decrypted) body.
pub(crate) fn open_envelope(
    bytes: &[u8],
    passphrase: Option<&Secret>,
) -> Result<(u8, Zeroizing<Vec<u8>>)> {
    let mut r = Reader::new(bytes);
    if r.take(4, "magic")? != MAGIC {
        return Err(Error::malformed("magic", "not a Warifu key file"));
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            what: "key file",
            found: version,
            supported: VERSION,
        });
    }
    let kind = r.u8("kind")?;
    match r.u8("protection")? {
        0 => {
            let body = r.bytes32("body")?;
            let covered = bytes.len() - r.remaining();
            let checksum: [u8; 32] = r.array("checksum")?;
            r.finish("key file")?;
            if plain_checksum(&bytes[..covered]) != checksum {
                return Err(Error::malformed("checksum", "the key file is corrupted"));
            }
            Ok((kind, Zeroizing::new(body.to_vec())))
        }
        1 => {
            let header = crate::envelope::Header::read(&mut r)?;
            let aad_len = bytes.len() - r.remaining();
            let ct = r.bytes32("sealed body")?;
            r.finish("key file")?;
            let pass = passphrase.ok_or(Error::PassphraseRequired)?;
            let (_, body) =
                crate::envelope::SealingKey::open(pass, &header, &bytes[..aad_len], ct)?;
            Ok((kind, body))
        }
        other => Err(Error::malformed(
            "protection",
            format!("unknown code {other}"),
        )),
    }
}

/// Refuses a k outside 1..=MAX_K before any size is computed from it.
fn checked_k(k: u32) -> Result<u32> {
    if k == 0 || k > crate::blom::MAX_K {
        return Err(Error::malformed(
            "k",
            format!("must be in 1..={}", crate::blom::MAX_K),
        ));
    }
    Ok(k)
}

fn scheme(r: &mut Reader<'_>) -> Result<()> {
    match r.u8("scheme")? {
        1 => Ok(()),
        other => Err(Error::malformed(
            "scheme",
            format!("unsupported scheme code {other}"),
        )),
    }
}

fn lanes(r: &mut Reader<'_>) -> Result<()> {
    match r.u8("lanes")? {
        l if l as usize == LANES => Ok(()),
        other => Err(Error::malformed(
            "lanes",
            format!("expected {LANES}, found {other}"),
        )),
    }
}

fn fes(r: &mut Reader<'_>, count: usize, k: u32) -> Result<Vec<Fe>> {
    if k == 0 || k > crate::blom::MAX_K || r.remaining() < count * 16 {
        return Err(Error::Truncated("key elements"));
    }
    (0..count)
        .map(|_| {
            Fe::from_bytes(&r.array("key element")?)
                .ok_or_else(|| Error::malformed("key element", "not a field element"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::{KeySource, pairwise_key};
    use crate::rand::SeededRandom;

    const FAST: KdfParams = KdfParams::FAST_FOR_TESTS;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn round_trips_plain_and_sealed() {
        let mut rng = SeededRandom::new(b"kf");
        let master = Master::generate(6, &mut rng).expect("master");
        let key = master.personal_key(&id("merchant:m"));
        let peer = id("issuer:i");
        let expected = pairwise_key(&key, &peer).expect("key");
        let pass = Secret::new("correct horse");
        for protection in [None, Some((&pass, FAST))] {
            let bytes = KeyFile::Personal(master.personal_key(&id("merchant:m")))
                .encode(protection, &mut rng)
                .expect("encode");
            assert_eq!(KeyFile::is_sealed(&bytes), protection.is_some());
            let Ok(KeyFile::Personal(back)) = KeyFile::decode(&bytes, Some(&pass)) else {
                panic!("decode failed");
            };
            assert_eq!(pairwise_key(&back, &peer).expect("key"), expected);
            assert_eq!(back.owner(), key.owner());
        }
        let bytes = KeyFile::Master(master)
            .encode(None, &mut rng)
            .expect("encode");
        assert!(matches!(
            KeyFile::decode(&bytes, None),
            Ok(KeyFile::Master(_))
        ));
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let mut rng = SeededRandom::new(b"kf");
        let master = Master::generate(3, &mut rng).expect("master");
        let file = KeyFile::Personal(master.personal_key(&id("carrier:c")));
        let pass = Secret::new("pw");
        let sealed = file.encode(Some((&pass, FAST)), &mut rng).expect("encode");
        let plain = file.encode(None, &mut rng).expect("encode");
        assert_eq!(
            KeyFile::decode(&sealed, Some(&Secret::new("nope"))).err(),
            Some(Error::WrongPassphrase)
        );
        assert_eq!(
            KeyFile::decode(&sealed, None).err(),
            Some(Error::PassphraseRequired)
        );
        for cut in 0..plain.len() {
            assert!(
                KeyFile::decode(&plain[..cut], None).is_err(),
                "truncated at {cut}"
            );
        }
        for cut in 0..sealed.len() {
            assert!(
                KeyFile::decode(&sealed[..cut], Some(&pass)).is_err(),
                "truncated at {cut}"
            );
        }
        for file in [&sealed, &plain] {
            for i in 0..file.len() {
                let mut bad = file.clone();
                bad[i] ^= 0x01;
                assert!(KeyFile::decode(&bad, Some(&pass)).is_err(), "flip at {i}");
            }
        }
        let mut v2 = plain.clone();
        v2[4] = 2;
        assert!(matches!(
            KeyFile::decode(&v2, None),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        let mut huge = sealed.clone();
        huge[23..27].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            KeyFile::decode(&huge, Some(&pass)).is_err(),
            "hostile memory cost"
        );
    }
}
