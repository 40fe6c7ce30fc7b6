//! Merchant → the shop's own backend: the webhook event body, its signature
//! (`Warifu-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, as
//! Stripe does it) and its verification, as docs/WEBHOOKS.md describes them.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use warifu_core::OrderId;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Warifu-Signature";
/// The header carrying the event id (the same on every retry and replay of an event).
pub const EVENT_ID_HEADER: &str = "Warifu-Event-Id";
/// The header carrying the event type.
pub const EVENT_TYPE_HEADER: &str = "Warifu-Event-Type";
/// How far a signature's time may be from the receiver's clock (seconds) by default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The body POSTed to an endpoint: one event, the merchant's view of the order after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookEventBody {
    /// `evt_` and 32 hex digits: the same on every retry and replay; deduplicate on it.
    pub id: String,
    /// `order.authorized`, `order.declined`, `order.shipped`, `order.captured`,
    /// `order.delivered`, `order.cancelled`, `order.refunded` or `order.failed`; a receiver
    /// answers 2xx to a type it does not know (new types may be added).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the order's state change was committed, Unix milliseconds.
    pub created_at_ms: i64,
    /// The order as the merchant holds it right after the change.
    pub data: WebhookOrder,
}

/// The merchant's view of an order in an event: never a card number or a destination (the
/// merchant holds neither).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookOrder {
    /// The merchant's order id.
    #[schema(value_type = String)]
    pub order_id: OrderId,
    /// The merchant's state of the order after the change (docs/LIFECYCLE.md).
    pub state: String,
    /// The state before, when known.
    pub previous_state: Option<String>,
    /// The cardholder's identifier.
    pub cardholder: String,
    /// The order's total, minor units.
    pub amount: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Captured so far, minor units (the issuer's last receipt).
    pub captured: u64,
    /// Refunded so far, minor units.
    pub refunded: u64,
    /// Why the order was declined, failed or cancelled by a peer, if so.
    pub decline_code: Option<String>,
    /// The issuer's authorization id, once authorized.
    pub authorization_id: Option<String>,
    /// The carrier's tracking number, once shipped.
    pub tracking_number: Option<String>,
}

impl From<&warifu_store::WebhookEvent> for WebhookEventBody {
    fn from(e: &warifu_store::WebhookEvent) -> WebhookEventBody {
        WebhookEventBody {
            id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            created_at_ms: e.created_at_ms,
            data: WebhookOrder {
                order_id: e.order_id.clone(),
                state: e.state.clone(),
                previous_state: e.previous_state.clone(),
                cardholder: e.cardholder_id.clone(),
                amount: e.amount,
                currency: e.currency.clone(),
                captured: e.captured,
                refunded: e.refunded,
                decline_code: e.decline_code.clone(),
                authorization_id: e.authorization_id.clone(),
                tracking_number: e.tracking_number.clone(),
            },
        }
    }
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `Warifu-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Why a webhook does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` in the header.
    #[error("the signature header is malformed")]
    Malformed,
    /// No `v1` signature matches the body under the secret.
    #[error("the signature does not match")]
    Mismatch,
    /// The signed time is further than the tolerance from now (a replay, or a bad clock).
    #[error("the signature's time is outside the tolerance")]
    Stale,
}

/// Verifies a `Warifu-Signature` header over the raw `body` at `now` (Unix seconds): some
/// `v1` matches HMAC-SHA256(secret, "t.body") (compared in constant time) and |now − t| ≤
/// `tolerance_secs`. Deduplicate accepted events on their `id` as well.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = sigs.iter().any(|s| {
        let Some(bytes) = unhex(s) else { return false };
        mac(secret, t, body).verify_slice(&bytes).is_ok()
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Adds the webhooks to the merchant's OpenAPI document: the body schemas, and the OpenAPI
/// 3.1 `webhooks` entry (the request the merchant sends, its signature headers, the answers
/// it expects).
pub fn document(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::{PartialSchema, ToSchema};
    let components = api.components.get_or_insert_with(Default::default);
    let mut schemas = Vec::new();
    <WebhookEventBody as ToSchema>::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components.schemas.insert(
        <WebhookEventBody as ToSchema>::name().into_owned(),
        WebhookEventBody::schema(),
    );
    let header = |name: &str, description: &str| {
        serde_json::json!({"name": name, "in": "header", "required": true,
            "schema": {"type": "string"}, "description": description})
    };
    let item = serde_json::json!({"post": {
        "operationId": "orderEvent",
        "summary": "An order event, POSTed by the merchant to each of the shop's endpoints",
        "description": "Sent when an order's state changes (docs/WEBHOOKS.md): `order.authorized`,             `order.declined`, `order.shipped`, `order.captured`, `order.delivered`,             `order.cancelled`, `order.refunded`, `order.failed`. Verify `Warifu-Signature`:             HMAC-SHA256 under the endpoint's secret (`whsec_…`, its UTF-8 bytes) over             `<t>.<raw body>`, as lowercase hex in `v1`; refuse it (400) if no `v1` matches or             `t` is more than 300 s from your clock (a replayed request). Deduplicate on the             event `id` (the same on every retry and replay). Answer 2xx within 10 s, also to             an event type you do not know; anything else is retried with exponential             backoff for 3 days, then the delivery is `failed` until the operator replays it.             An order's events arrive in order: the next is sent after the previous was             acknowledged.",
        "parameters": [
            header(SIGNATURE_HEADER, "`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>`"),
            header(EVENT_ID_HEADER, "The event id, as the body's `id`"),
            header(EVENT_TYPE_HEADER, "The event type, as the body's `type`"),
        ],
        "requestBody": {"required": true, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/WebhookEventBody"}}}},
        "responses": {
            "200": {"description": "Received (any 2xx): the delivery is done"},
            "400": {"description": "Not verified (wrong signature, replayed time): retried, then failed"}
        }
    }});
    api.extensions
        .get_or_insert_with(Default::default)
        .insert("webhooks".into(), serde_json::json!({ "orderEvent": item }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let h = sign("whsec_test", 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify("whsec_test", &h, body, 1_700_000_100, 300), Ok(()));
        assert_eq!(
            verify("whsec_test", &h, body, 1_700_000_400, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("whsec_other", &h, body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_test", &h, b"{}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_test", "v1=00", body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
        // A rotated secret: several v1 values, one matches.
        let two = format!("{h},v1={}", "00".repeat(32));
        assert_eq!(verify("whsec_test", &two, body, 1_700_000_000, 300), Ok(()));
        // The known answer (also checked by examples/shop_backend.py's recipe).
        let kat = sign("whsec_test", 1, b"x");
        assert_eq!(kat.len(), "t=1,v1=".len() + 64);
    }
}
