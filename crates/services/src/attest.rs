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
//!
//! The carrier attests too: its **proof of delivery** (HMAC-SHA256 under K(carrier, issuer)
//! over the order id, merchant, carrier, issuer, tracking number, the sealed header's digest
//! and the delivery time, no address) lets the merchant show the issuer in a dispute that the
//! parcel was delivered; the merchant relays it but cannot forge it. The digest is not sent:
//! the carrier and the issuer each use the one they recorded for the order, so a proof made
//! for another order (even with the same order id) does not verify.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warifu_core::OrderId;
use warifu_core::codec::Writer;
use warifu_core::keysource::{KeySource, pairwise_key};
use warifu_core::sealed::Header;
use warifu_core::{PartyId, Role};

use crate::protocol::merchant_issuer::{Decision, ProofOfDelivery};

/// Label of the cardholder receipt.
pub const CARDHOLDER_RECEIPT_LABEL: &[u8] = b"warifu/v1/issuer-decision/cardholder";
/// Label of the carrier approval.
pub const CARRIER_APPROVAL_LABEL: &[u8] = b"warifu/v1/issuer-decision/carrier";
/// Label of the carrier's proof of delivery (v2: the MAC covers the header digest).
pub const PROOF_OF_DELIVERY_LABEL: &[u8] = b"warifu/v2/proof-of-delivery";

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

/// The bytes under the proof of delivery: label ‖ order id ‖ merchant ‖ carrier ‖ issuer ‖
/// tracking number ‖ header digest ‖ i64(delivered_at_ms), strings u16-length-prefixed, the
/// time big-endian.
fn delivery_message(p: &ProofOfDelivery, header_digest: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(PROOF_OF_DELIVERY_LABEL)
        .bytes16(p.order_id.as_bytes())
        .bytes16(p.merchant.as_str().as_bytes())
        .bytes16(p.carrier.as_str().as_bytes())
        .bytes16(p.issuer.as_str().as_bytes())
        .bytes16(p.tracking_number.as_bytes())
        .raw(header_digest)
        .raw(&p.delivered_at_ms.to_be_bytes());
    w.finish()
}

/// Carrier: its proof that it delivered `order_id` of `merchant` (tracking number
/// `tracking_number`, sealed header `header_digest`) at `delivered_at_ms`, for the order's
/// `issuer`. Carries no address.
pub fn proof_of_delivery(
    carrier: &dyn KeySource,
    issuer: &PartyId,
    merchant: &PartyId,
    order_id: &OrderId,
    tracking_number: &str,
    delivered_at_ms: i64,
    header_digest: &[u8; 32],
) -> Result<ProofOfDelivery, AttestError> {
    if carrier.owner().role() != Role::Carrier || issuer.role() != Role::Issuer {
        return Err(AttestError::Invalid);
    }
    let key = pairwise_key(carrier, issuer)?;
    let mut p = ProofOfDelivery {
        order_id: order_id.to_owned(),
        merchant: merchant.clone(),
        carrier: carrier.owner().clone(),
        issuer: issuer.clone(),
        tracking_number: tracking_number.to_owned(),
        delivered_at_ms,
        mac: [0; 32],
    };
    p.mac = hmac(key.expose(), &delivery_message(&p, header_digest));
    Ok(p)
}

/// Issuer: checks a proof of delivery addressed to it with its pairwise key with the named
/// carrier, over the header digest it recorded for the order (every field is covered: another
/// order, merchant, header, time or tracking number fails). Which carrier may prove delivery
/// of an order is the caller's check (the one the order names).
pub fn verify_proof_of_delivery(
    issuer: &dyn KeySource,
    p: &ProofOfDelivery,
    header_digest: &[u8; 32],
) -> Result<(), AttestError> {
    if &p.issuer != issuer.owner() || p.carrier.role() != Role::Carrier {
        return Err(AttestError::Invalid);
    }
    let key = pairwise_key(issuer, &p.carrier)?;
    let expected = hmac(key.expose(), &delivery_message(p, header_digest));
    if expected.ct_eq(&p.mac).unwrap_u8() == 0 {
        return Err(AttestError::Invalid);
    }
    Ok(())
}
