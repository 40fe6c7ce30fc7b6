//! Purpose keys: one subkey of a pairwise key K per use, so that no two uses share a key.
//!
//! `purpose_key(K, p) = HKDF-Expand(prk = K, info = lp("warifu/v2/purpose") ‖ lp(p), 32)`,
//! where `lp(x) = u16(len x) ‖ x`. The length prefixes make the info strings prefix-free by
//! construction, whatever the purpose names (issue 19.6).

use hkdf::Hkdf;
use sha2::Sha256;

use crate::codec::Writer;
use crate::keysource::PairwiseKey;
use crate::secret::Key32;
use crate::{Error, Result};

/// The label in front of every purpose name.
pub const PURPOSE_LABEL: &[u8] = b"warifu/v2/purpose";

/// What a subkey of K is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sealing the parts of an order (§8.3, format version 2).
    Seal,
    /// The pre-shared key of a version-3 part's HPKE context (§19).
    KemPsk,
    /// The mutual-confirmation handshake and its session keys (§12).
    Handshake,
    /// The issuer's receipt of its decision, for the cardholder.
    Receipt,
    /// The issuer's approval of a shipment, for the carrier.
    Approval,
    /// The carrier's proof of delivery, for the issuer.
    ProofOfDelivery,
}

impl Purpose {
    /// The purpose's name in the derivation.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Seal => "seal",
            Purpose::KemPsk => "kem-psk",
            Purpose::Handshake => "handshake",
            Purpose::Receipt => "receipt",
            Purpose::Approval => "approval",
            Purpose::ProofOfDelivery => "proof-of-delivery",
        }
    }
}

/// `HKDF-Expand(prk = k, info = lp(label) ‖ lp(name), 32)`.
fn expand(k: &[u8; 32], label: &[u8], name: &[u8]) -> Result<Key32> {
    let hk = Hkdf::<Sha256>::from_prk(k).map_err(|_| Error::Rng)?;
    let mut info = Writer::new();
    info.bytes16(label).bytes16(name);
    let mut out = [0u8; 32];
    hk.expand(&info.finish(), &mut out)
        .map_err(|_| Error::Rng)?;
    Ok(Key32::from_bytes(out))
}

/// The subkey of `k` for `purpose`.
pub fn purpose_key(k: &PairwiseKey, purpose: Purpose) -> Result<Key32> {
    expand(k.expose(), PURPOSE_LABEL, purpose.name().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purpose_has_its_own_key() {
        let k = Key32::from_bytes([7; 32]);
        let all = [
            Purpose::Seal,
            Purpose::KemPsk,
            Purpose::Handshake,
            Purpose::Receipt,
            Purpose::Approval,
            Purpose::ProofOfDelivery,
        ];
        let keys: Vec<[u8; 32]> = all
            .iter()
            .map(|p| *purpose_key(&k, *p).expect("key").expose())
            .collect();
        for (i, a) in keys.iter().enumerate() {
            assert_ne!(a, k.expose());
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Length prefixes: ("ab", "c") and ("a", "bc") give different infos.
        let x = expand(&[1; 32], b"ab", b"c").expect("x");
        let y = expand(&[1; 32], b"a", b"bc").expect("y");
        assert_ne!(x.expose(), y.expose());
    }
}
