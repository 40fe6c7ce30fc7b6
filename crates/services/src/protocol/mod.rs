//! The protocol between the parties: every path and JSON body, grouped by the link that
//! carries it. The parties meet here: no party's folder imports another party's.
//!
//! - [`handshake`]: the session headers and the handshake paths (every link).
//! - [`cardholder_merchant`]: the catalog, order forms, the sealed submission, the order's
//!   outcome and its cancellation.
//! - [`merchant_issuer`]: authorization and the issuer's decision, capture, void, refunds,
//!   and disputes answered with the carrier's proof of delivery.
//! - [`merchant_carrier`]: the shipment request and its receipt, and its cancellation.
//! - [`cardholder_carrier`]: tracking (the merchant reads it too, without the destination).
//! - [`cardholder_issuer`]: the cardholder's statement.
//! - [`carrier_merchant`]: the delivery events the carrier pushes to the order's merchant.
//! - [`carrier_issuer`]: whether an order's authorization still stands (asked before a
//!   shipment is accepted).
//! - [`kem`]: any recipient's current KEM public key (sealed format version 3).
//! - [`operator`]: the bodies and paths of the people who run a party (order list and refunds,
//!   shipment list and moves).
//! - [`webhooks`]: merchant → the shop's backend: the event body and its signature.
//! - [`schema`]: OpenAPI schemas of the core types the bodies carry.
//! - [`b64_array`], [`b64_opt`]: serde for MACs and digests.
//!
//! Binary values (MACs, digests) are unpadded base64url strings. Every request type refuses
//! unknown fields, so a typo is an error rather than a silently ignored option.

pub mod cardholder_carrier;
pub mod cardholder_issuer;
pub mod cardholder_merchant;
pub mod carrier_issuer;
pub mod carrier_merchant;
pub mod handshake;
pub mod kem;
pub mod merchant_carrier;
pub mod merchant_issuer;
pub mod operator;
pub mod schema;
pub mod webhooks;

/// Serde for `[u8; N]` as unpadded base64url.
pub mod b64_array {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serializes.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    /// Deserializes, refusing a wrong length.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let v = B64
            .decode(s.as_bytes())
            .map_err(|_| D::Error::custom("not unpadded base64url"))?;
        v.try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes")))
    }
}

/// Serde for `Option<[u8; N]>` as unpadded base64url or absent.
pub mod b64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes.
    pub fn serialize<S: Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::b64_array::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        #[derive(Deserialize)]
        struct W<const M: usize>(#[serde(with = "super::b64_array")] [u8; M]);
        Ok(Option::<W<N>>::deserialize(d)?.map(|w| w.0))
    }
}
