//! The issuer's attestations: MACs under its pairwise keys with the cardholder and the carrier,
//! so that neither has to take the merchant's word for the issuer's decision.
//!
//! - The **cardholder receipt** lets the cardholder check the decision the merchant relays
//!   (approved or declined, the amount, the reason): HMAC-SHA256 under K(issuer, cardholder).
//! - The **carrier approval** lets the carrier refuse a shipment the issuer did not approve:
//!   HMAC-SHA256 under K(issuer, carrier). The merchant cannot forge either (it holds neither
//!   key); the carrier learns nothing about the amount from it.
//!
//! Both MACs cover a versioned label, both identities and the sealed order's header digest.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warifu_core::codec::Writer;
use warifu_core::keysource::{KeySource, pairwise_key};
use warifu_core::sealed::Header;
use warifu_core::{PartyId, Role};

use crate::wire::Decision;

/// Label of the cardholder receipt.
pub const CARDHOLDER_RECEIPT_LABEL: &[u8] = b"warifu/v1/issuer-decision/cardholder";
/// Label of the carrier approval.
pub const CARRIER_APPROVAL_LABEL: &[u8] = b"warifu/v1/issuer-decision/carrier";

/// An attestation that does not verify, or a key that cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// The MAC is wrong (forged, or for another order or decision).
    #[error("the issuer's attestation does not verify")]
    Invalid,
    /// The pairwise key could not be derived.
    #[error("cannot derive the pairwise key: {0}")]
    Key(#[from] warifu_core::Error),
}

fn hmac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// The bytes under the cardholder receipt: label ‖ issuer ‖ cardholder ‖ merchant ‖ order id ‖
/// header digest ‖ u8(outcome) ‖ reason ‖ u64(amount) ‖ currency ‖ authorization id, strings
/// u16-length-prefixed (absent ones empty).
fn receipt_message(d: &Decision) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(CARDHOLDER_RECEIPT_LABEL)
        .bytes16(d.issuer.as_str().as_bytes())
        .bytes16(d.cardholder.as_str().as_bytes())
        .bytes16(d.merchant.as_str().as_bytes())
        .bytes16(d.order_id.as_bytes())
        .raw(&d.header_digest)
        .u8(d.outcome.code())
        .bytes16(d.reason.map(|r| r.as_str()).unwrap_or("").as_bytes())
        .u64(d.amount)
        .bytes16(d.currency.as_bytes())
        .bytes16(d.authorization_id.as_deref().unwrap_or("").as_bytes());
    w.finish()
}

/// The bytes under the carrier approval: label ‖ issuer ‖ carrier ‖ header digest.
fn approval_message(issuer: &PartyId, carrier: &PartyId, header_digest: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(CARRIER_APPROVAL_LABEL)
        .bytes16(issuer.as_str().as_bytes())
        .bytes16(carrier.as_str().as_bytes())
        .raw(header_digest);
    w.finish()
}

/// Issuer: the cardholder receipt of `decision` (every field but the two MACs is covered).
pub fn cardholder_receipt(issuer: &dyn KeySource, d: &Decision) -> Result<[u8; 32], AttestError> {
    let key = pairwise_key(issuer, &d.cardholder)?;
    Ok(hmac(key.expose(), &receipt_message(d)))
}

/// Cardholder: checks the receipt of a relayed decision with its own key.
pub fn verify_cardholder_receipt(
    cardholder: &dyn KeySource,
    d: &Decision,
) -> Result<(), AttestError> {
    if &d.cardholder != cardholder.owner() || d.issuer.role() != Role::Issuer {
        return Err(AttestError::Invalid);
    }
    let key = pairwise_key(cardholder, &d.issuer)?;
    let expected = hmac(key.expose(), &receipt_message(d));
    if expected.ct_eq(&d.cardholder_receipt).unwrap_u8() == 0 {
        return Err(AttestError::Invalid);
    }
    Ok(())
}

/// Issuer: the carrier approval for an approved order with a carrier.
pub fn carrier_approval(issuer: &dyn KeySource, header: &Header) -> Result<[u8; 32], AttestError> {
    let carrier = header.carrier.as_ref().ok_or(AttestError::Invalid)?;
    let key = pairwise_key(issuer, carrier)?;
    Ok(hmac(
        key.expose(),
        &approval_message(issuer.owner(), carrier, &header.digest()),
    ))
}

/// Carrier: checks that the header's issuer approved this order for this carrier.
pub fn verify_carrier_approval(
    carrier: &dyn KeySource,
    header: &Header,
    approval: &[u8; 32],
) -> Result<(), AttestError> {
    if header.carrier.as_ref() != Some(carrier.owner()) {
        return Err(AttestError::Invalid);
    }
    let key = pairwise_key(carrier, &header.issuer)?;
    let expected = hmac(
        key.expose(),
        &approval_message(&header.issuer, carrier.owner(), &header.digest()),
    );
    if expected.ct_eq(approval).unwrap_u8() == 0 {
        return Err(AttestError::Invalid);
    }
    Ok(())
}
