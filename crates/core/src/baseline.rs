//! **Benchmark baseline only** (the `baseline` feature, on for `warifu bench` and the tests,
//! off in a production build): a key source whose "keys" are public and orders whose parts
//! travel in plaintext, so that the bench can price privacy against the identical flow.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::codec::Writer;
use crate::id::{PartyId, Role};
use crate::keysource::{KeySource, PairwiseKey, Scheme, pairwise_key};
use crate::order::{Order, OrderForm};
use crate::sealed::{
    Disclosed, Header, MAX_PART, SealedOrder, SealedPart, baseline_mismatch, role_name,
};
use crate::{Error, Result};

/// Prefix of a part's commitment under the plaintext benchmark baseline (an unkeyed hash).
pub const BASELINE_COMMIT_LABEL: &[u8] = b"warifu/v1/baseline-commit";

/// The prefix of the plaintext baseline's public shared secret.
pub const BASELINE_LABEL: &[u8] = b"warifu/v1/plaintext-baseline";

/// **Benchmark baseline only.** A key source whose shared secret with a peer is a *public*
/// function of the two identifiers (`BASELINE_LABEL ‖ u16-len id_lo ‖ id_lo ‖ u16-len id_hi ‖
/// id_hi`), so that handshakes, session MACs and the issuer's attestation MACs run exactly as
/// usual but protect nothing, and orders sealed with it ([`Scheme::PlaintextBaseline`]) carry
/// their parts in plaintext. It exists so that `warifu bench` can measure the cost of privacy
/// as a ratio against the identical flow. There is no key file for it and no service option
/// loads it; a party with real keys refuses its orders (another scheme).
#[derive(Debug, Clone)]
pub struct PlaintextBaseline {
    owner: PartyId,
}

impl PlaintextBaseline {
    /// The baseline "key" of `owner` (there is nothing secret in it).
    pub fn new(owner: PartyId) -> PlaintextBaseline {
        PlaintextBaseline { owner }
    }

    /// The public shared secret of `a` and `b` (symmetric in the two).
    pub fn public_secret(a: &PartyId, b: &PartyId) -> Vec<u8> {
        let (lo, hi) = if a.as_str() < b.as_str() {
            (a, b)
        } else {
            (b, a)
        };
        let mut w = Writer::new();
        w.raw(BASELINE_LABEL)
            .bytes16(lo.as_str().as_bytes())
            .bytes16(hi.as_str().as_bytes());
        w.finish()
    }
}

impl KeySource for PlaintextBaseline {
    fn owner(&self) -> &PartyId {
        &self.owner
    }
    fn scheme(&self) -> Scheme {
        Scheme::PlaintextBaseline
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(PlaintextBaseline::public_secret(
            &self.owner,
            peer,
        )))
    }
}

/// **Benchmark baseline only**: the part's plaintext, carried as is. The key must be the
/// baseline's public pairwise key of the recipient and the cardholder, so that a party
/// holding real keys never takes a plaintext part for a sealed one.
pub(crate) fn open_part(
    header: &Header,
    part: &SealedPart,
    role: Role,
    key: &PairwiseKey,
) -> Result<Zeroizing<Vec<u8>>> {
    let me = header
        .party(role)
        .ok_or(Error::MissingPart(role_name(role)))?;
    let expected = pairwise_key(&PlaintextBaseline::new(me.clone()), &header.cardholder)?;
    if expected.expose().ct_eq(key.expose()).unwrap_u8() == 0 {
        return Err(baseline_mismatch());
    }
    let plaintext = Zeroizing::new(part.ciphertext.clone());
    if commitment(role, header, &plaintext) != part.commitment {
        return Err(Error::Decrypt);
    }
    Ok(plaintext)
}

/// Under the plaintext baseline: `SHA-256(BASELINE_COMMIT_LABEL ‖ u8(role) ‖ header digest ‖
/// plaintext)`, an unkeyed checksum that keeps the bundle's commitment structure.
fn commitment(role: Role, header: &Header, plaintext: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(BASELINE_COMMIT_LABEL);
    h.update([role.code()]);
    h.update(header.digest());
    h.update(plaintext);
    h.finalize().into()
}

/// **Benchmark baseline only**: the parts in plaintext (padded with JSON whitespace to the
/// 16-byte minimum), zero nonces, unkeyed commitments.
pub(crate) fn seal(form: &OrderForm, order: &Order, header: Header) -> Result<SealedOrder> {
    let mut parts = Vec::new();
    for role in header.recipients() {
        let mut plaintext = serde_json::to_vec(&Disclosed::from_order(order, &form.policy, role))
            .map_err(|e| Error::InvalidOrder(e.to_string()))?;
        if plaintext.len() < 16 {
            plaintext.resize(16, b' ');
        }
        if plaintext.len() > MAX_PART {
            return Err(Error::InvalidOrder("the order is too large to seal".into()));
        }
        parts.push(SealedPart {
            recipient: role,
            nonce: Some([0; 24]),
            kem: None,
            commitment: commitment(role, &header, &plaintext),
            ciphertext: plaintext,
        });
    }
    Ok(SealedOrder { header, parts })
}
