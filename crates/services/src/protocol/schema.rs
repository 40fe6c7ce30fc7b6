//! OpenAPI schemas of the core types that the wire bodies carry (opaque where the format is
//! binary, field by field where it is JSON).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

macro_rules! opaque_schema {
    ($ty:ident, $name:literal, $desc:literal) => {
        #[doc = $desc]
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .description(Some($desc))
                        .build(),
                ))
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

opaque_schema!(
    SealedOrder,
    "SealedOrder",
    "A sealed order (warifu_core::sealed::SealedOrder): the clear header (order id, merchant, issuer, carrier, cardholder, key scheme, policy digest) and one AEAD-sealed part per party, each readable only by its party. Format: docs/PROTOCOL.md."
);

opaque_schema!(
    ForwardedPart,
    "ForwardedPart",
    "One party's sealed part as the merchant forwards it (warifu_core::sealed::ForwardedPart): the clear header, that party's sealed part and the other parts' commitments. Format: docs/PROTOCOL.md."
);

opaque_schema!(
    KemPublicKey,
    "KemPublicKey",
    "A party's KEM public key of one epoch (warifu_core::kem::KemPublicKey): {\"kem\": \"x25519-hkdf-sha256\", \"epoch\": u32, \"public_key\": unpadded base64url}. Format: docs/PROTOCOL.md §19."
);

opaque_schema!(
    Policy,
    "Policy",
    "The disclosure policy (warifu_core::policy::Policy): which party receives which order field; its digest is sealed in the order's header. Format: docs/PROTOCOL.md."
);

opaque_schema!(
    Hello,
    "Hello",
    "Handshake message 1 of mutual confirmation (warifu_core::session::Hello): version, initiator and responder identifiers, time, nonce. Format: docs/PROTOCOL.md."
);

opaque_schema!(
    Challenge,
    "Challenge",
    "Handshake message 2 (warifu_core::session::Challenge): the responder's nonce and proof. Format: docs/PROTOCOL.md."
);

opaque_schema!(
    Confirm,
    "Confirm",
    "Handshake message 3 (warifu_core::session::Confirm): the initiator's proof. Format: docs/PROTOCOL.md."
);

/// One product of a merchant's catalog (`warifu_core::order::CatalogItem`).
#[derive(Debug, Clone, ToSchema)]
#[schema(as = CatalogItem)]
#[allow(dead_code)]
pub struct CatalogItemDoc {
    /// The product number.
    product_number: String,
    /// The product name.
    name: String,
    /// Unit price in minor units of the form's currency.
    unit_price: u64,
    /// Whether the item is shipped (default true; written only when false): an order holding
    /// one needs a form with a carrier.
    ships: Option<bool>,
}

/// A delivery destination (`warifu_core::order::Destination`); only the carrier and the
/// cardholder who sealed it ever see one.
#[derive(Debug, Clone, ToSchema)]
#[schema(as = Destination)]
#[allow(dead_code)]
pub struct DestinationDoc {
    /// Who receives the parcel.
    addressee: String,
    /// The delivery address.
    address: String,
}

/// The order form a merchant hands a cardholder (`warifu_core::order::OrderForm`).
#[derive(Debug, Clone, ToSchema)]
#[schema(as = OrderForm)]
#[allow(dead_code)]
pub struct OrderFormDoc {
    /// The order id the merchant assigned (also the order's nonce).
    order_id: String,
    /// The merchant's identifier.
    merchant: String,
    /// The carrier the merchant designates (none: digital goods).
    carrier: Option<String>,
    /// Issuers whose cards the merchant accepts.
    accepted_issuers: Vec<String>,
    /// ISO 4217 currency.
    currency: String,
    /// What can be bought.
    catalog: Vec<CatalogItemDoc>,
    /// When the form stops being valid, Unix seconds.
    expires_at: u64,
    /// Which party receives which field.
    policy: Policy,
}
