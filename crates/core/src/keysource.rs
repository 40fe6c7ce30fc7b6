//! Pairwise keys behind one interface: Blom, keys handed out by a center (【0053】), hybrids.

use std::collections::BTreeMap;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::blom::PersonalKey;
use crate::codec::Writer;
use crate::id::PartyId;
use crate::secret::Key32;
use crate::{Error, Result};

/// The HKDF salt of the pairwise-key derivation.
pub const PAIRWISE_LABEL: &[u8] = b"warifu/v1/pairwise-key";

/// Which key scheme produced a pairwise key; its code appears in key files and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scheme {
    /// Blom's scheme over two lanes of GF(2^127 − 1).
    Blom,
    /// Pairwise keys agreed separately or handed out by a center (【0053】).
    Predistributed,
    /// Several schemes combined: breaking the key needs breaking every one.
    Hybrid,
    /// Sakai–Ohgishi–Kasahara identity-based key agreement on BLS12-381 ([`crate::sok`]).
    Sok,
    /// **Benchmark baseline only**: public "keys" and parts carried in plaintext
    /// (`baseline::PlaintextBaseline`, built only with the `baseline` feature). Never used by
    /// a deployment with real keys; no key file holds it; other builds refuse its orders.
    #[serde(rename = "plaintext_baseline")]
    PlaintextBaseline,
}

impl Scheme {
    /// The one-byte code.
    pub fn code(self) -> u8 {
        match self {
            Scheme::Blom => 1,
            Scheme::Predistributed => 2,
            Scheme::Hybrid => 0x80,
            Scheme::Sok => 3,
            Scheme::PlaintextBaseline => 0x7f,
        }
    }

    /// The scheme for a code.
    pub fn from_code(c: u8) -> Option<Scheme> {
        [
            Scheme::Blom,
            Scheme::Predistributed,
            Scheme::Hybrid,
            Scheme::Sok,
            Scheme::PlaintextBaseline,
        ]
        .into_iter()
        .find(|s| s.code() == c)
    }
}

/// A holder's secret key material that yields a shared secret with any peer it serves.
///
/// Both ends of a pair must compute the same bytes. The bytes are input keying material, not
/// yet a key: [`pairwise_key`] turns them into one.
pub trait KeySource: Send + Sync {
    /// The holder's identifier.
    fn owner(&self) -> &PartyId;
    /// The scheme.
    fn scheme(&self) -> Scheme;
    /// The raw shared secret with `peer`.
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>>;
}

impl<T: KeySource + ?Sized> KeySource for Box<T> {
    fn owner(&self) -> &PartyId {
        (**self).owner()
    }
    fn scheme(&self) -> Scheme {
        (**self).scheme()
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        (**self).shared_secret(peer)
    }
}

impl<T: KeySource + ?Sized> KeySource for std::sync::Arc<T> {
    fn owner(&self) -> &PartyId {
        (**self).owner()
    }
    fn scheme(&self) -> Scheme {
        (**self).scheme()
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        (**self).shared_secret(peer)
    }
}

/// The key two parties share, derived by [`pairwise_key`].
pub type PairwiseKey = Key32;

/// Derives the pairwise key between `source`'s owner and `peer`:
/// `HKDF-SHA256(salt = PAIRWISE_LABEL, ikm = shared secret,
/// info = u8(scheme) ‖ u16-len id_lo ‖ id_lo ‖ u16-len id_hi ‖ id_hi)`, where id_lo < id_hi
/// bytewise. A party has no key with itself.
pub fn pairwise_key(source: &dyn KeySource, peer: &PartyId) -> Result<PairwiseKey> {
    let owner = source.owner();
    if owner == peer {
        return Err(Error::NoPairwiseKey {
            owner: owner.to_string(),
            peer: peer.to_string(),
        });
    }
    let ikm = source.shared_secret(peer)?;
    let (lo, hi) = if owner.as_str() < peer.as_str() {
        (owner, peer)
    } else {
        (peer, owner)
    };
    let mut info = Writer::new();
    info.u8(source.scheme().code())
        .bytes16(lo.as_str().as_bytes())
        .bytes16(hi.as_str().as_bytes());
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(PAIRWISE_LABEL), &ikm)
        .expand(&info.finish(), &mut okm)
        .map_err(|_| Error::Rng)?;
    Ok(Key32::from_bytes(okm))
}

impl KeySource for PersonalKey {
    fn owner(&self) -> &PartyId {
        self.id()
    }
    fn scheme(&self) -> Scheme {
        Scheme::Blom
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.raw_shared_bytes(peer).to_vec()))
    }
}

/// Pairwise keys agreed separately or handed out by a center (【0053】): a table from peer
/// to a 32-byte secret. Serves only the peers it lists.
pub struct Predistributed {
    owner: PartyId,
    keys: BTreeMap<PartyId, Key32>,
}

impl Predistributed {
    /// A table for `owner`.
    pub fn new(owner: PartyId, keys: BTreeMap<PartyId, Key32>) -> Predistributed {
        Predistributed { owner, keys }
    }

    /// The peers this table serves.
    pub fn peers(&self) -> impl Iterator<Item = (&PartyId, &Key32)> {
        self.keys.iter()
    }
}

impl core::fmt::Debug for Predistributed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Predistributed {{ owner: {}, peers: {}, keys: <redacted> }}",
            self.owner,
            self.keys.len()
        )
    }
}

impl KeySource for Predistributed {
    fn owner(&self) -> &PartyId {
        &self.owner
    }
    fn scheme(&self) -> Scheme {
        Scheme::Predistributed
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        self.keys
            .get(peer)
            .map(|k| Zeroizing::new(k.expose().to_vec()))
            .ok_or_else(|| Error::NoPairwiseKey {
                owner: self.owner.to_string(),
                peer: peer.to_string(),
            })
    }
}

/// Several key sources of one owner combined: the shared secret is the concatenation, in the
/// given order, of `u8(scheme) ‖ u16-len secret ‖ secret` for each. An attacker must break
/// every component to learn the pairwise key.
pub struct Hybrid {
    parts: Vec<Box<dyn KeySource>>,
}

impl Hybrid {
    /// Combines sources; all must have the same owner and there must be at least two.
    pub fn new(parts: Vec<Box<dyn KeySource>>) -> Result<Hybrid> {
        let Some(first) = parts.first() else {
            return Err(Error::ParameterMismatch(
                "a hybrid needs key sources".into(),
            ));
        };
        if parts.len() < 2 || parts.iter().any(|p| p.owner() != first.owner()) {
            return Err(Error::ParameterMismatch(
                "a hybrid combines two or more sources of one owner".into(),
            ));
        }
        Ok(Hybrid { parts })
    }
}

impl KeySource for Hybrid {
    fn owner(&self) -> &PartyId {
        self.parts[0].owner()
    }
    fn scheme(&self) -> Scheme {
        Scheme::Hybrid
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::new());
        for part in &self.parts {
            let s = part.shared_secret(peer)?;
            out.push(part.scheme().code());
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(&s);
        }
        Ok(out)
    }
}

/// A key center for the 【0053】 variant: draws one random key per pair and hands each party
/// its table.
pub fn predistribute(
    ids: &[PartyId],
    rng: &mut dyn crate::rand::Randomness,
) -> Result<Vec<Predistributed>> {
    let mut tables: BTreeMap<PartyId, BTreeMap<PartyId, Key32>> = BTreeMap::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let mut k = [0u8; 32];
            rng.fill(&mut k)?;
            tables
                .entry(a.clone())
                .or_default()
                .insert(b.clone(), Key32::from_bytes(k));
            tables
                .entry(b.clone())
                .or_default()
                .insert(a.clone(), Key32::from_bytes(k));
            zeroize::Zeroize::zeroize(&mut k);
        }
    }
    Ok(ids
        .iter()
        .map(|id| Predistributed::new(id.clone(), tables.remove(id).unwrap_or_default()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blom::Master;
    use crate::rand::SeededRandom;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn every_source_agrees_both_ways() {
        let ids = [id("cardholder:a"), id("merchant:m"), id("issuer:i")];
        let master = Master::generate(4, &mut SeededRandom::new(b"k")).expect("master");
        let blom: Vec<_> = ids.iter().map(|i| master.personal_key(i)).collect();
        let pre = predistribute(&ids, &mut SeededRandom::new(b"p")).expect("tables");
        let blom_ab = pairwise_key(&blom[0], &ids[1]).expect("key");
        assert_eq!(blom_ab, pairwise_key(&blom[1], &ids[0]).expect("key"));
        let pre_ab = pairwise_key(&pre[0], &ids[1]).expect("key");
        assert_eq!(pre_ab, pairwise_key(&pre[1], &ids[0]).expect("key"));
        assert_ne!(blom_ab, pre_ab);
        assert!(
            pairwise_key(&blom[0], &ids[0]).is_err(),
            "no key with oneself"
        );
        let stranger = id("carrier:unknown");
        assert!(pairwise_key(&pre[0], &stranger).is_err());
    }

    #[test]
    fn hybrid_combines_and_needs_every_part() {
        let ids = [id("cardholder:a"), id("merchant:m")];
        let master = Master::generate(4, &mut SeededRandom::new(b"k")).expect("master");
        let mut pre = predistribute(&ids, &mut SeededRandom::new(b"p")).expect("tables");
        let pre_b = pre.pop().expect("b");
        let pre_a = pre.pop().expect("a");
        let ha = Hybrid::new(vec![
            Box::new(master.personal_key(&ids[0])),
            Box::new(pre_a),
        ])
        .expect("hybrid");
        let hb = Hybrid::new(vec![
            Box::new(master.personal_key(&ids[1])),
            Box::new(pre_b),
        ])
        .expect("hybrid");
        let k = pairwise_key(&ha, &ids[1]).expect("key");
        assert_eq!(k, pairwise_key(&hb, &ids[0]).expect("key"));
        assert_ne!(
            k,
            pairwise_key(&master.personal_key(&ids[0]), &ids[1]).expect("key")
        );
        assert!(Hybrid::new(vec![Box::new(master.personal_key(&ids[0]))]).is_err());
    }

    #[cfg(feature = "baseline")]
    #[test]
    fn the_baseline_is_public_and_distinct() {
        use crate::baseline::PlaintextBaseline;
        let (a, m) = (id("cardholder:a"), id("merchant:m"));
        let ka = pairwise_key(&PlaintextBaseline::new(a.clone()), &m).expect("key");
        assert_eq!(
            ka,
            pairwise_key(&PlaintextBaseline::new(m.clone()), &a).expect("key")
        );
        let master = Master::generate(4, &mut SeededRandom::new(b"k")).expect("master");
        assert_ne!(ka, pairwise_key(&master.personal_key(&a), &m).expect("key"));
        assert_eq!(
            Scheme::from_code(0x7f),
            Some(Scheme::PlaintextBaseline),
            "its code is reserved"
        );
        assert!(pairwise_key(&PlaintextBaseline::new(a.clone()), &a).is_err());
    }
}
