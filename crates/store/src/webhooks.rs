//! The merchant's webhooks: which order state changes are events (one table, [`event_type`]),
//! the records of endpoints, events, deliveries and attempts, and [`WebhookStore`].
//!
//! An event is recorded in the transaction of the order's state change (so none is lost and
//! none is invented), with one pending delivery per enabled endpoint subscribed to its type.
//! A delivery is claimable only when every earlier delivery of the same order to the same
//! endpoint was delivered: events of one order reach an endpoint in order, even across
//! replicas. Nothing is ever deleted; a delivery that gave up is `failed` and can be replayed.

use async_trait::async_trait;
use warifu_core::OrderId;

use crate::error::Result;
use crate::impls::dispatch;
use crate::open::Store;
use crate::types::OrderState;

/// The event types, as sent in `type`.
pub const EVENT_TYPES: [&str; 8] = [
    "order.authorized",
    "order.declined",
    "order.shipped",
    "order.captured",
    "order.delivered",
    "order.cancelled",
    "order.refunded",
    "order.failed",
];

/// The event of an order's state change from `from` (if known) to `to`, or `None` when the
/// change is not one the shop's backend is told of. The one place that maps states to events:
///
/// | to | event |
/// |---|---|
/// | authorized, shipping_requested | `order.authorized` (the issuer approved) |
/// | declined | `order.declined` |
/// | shipped | `order.shipped` (not from cancelling: a cancellation the carrier refused) |
/// | captured | `order.captured` (not from cancelling) |
/// | delivered | `order.delivered` |
/// | cancelled | `order.cancelled` |
/// | refunded | `order.refunded` (also a partial refund: the state stays, see the store) |
/// | failed | `order.failed` |
/// | received, cancelling, returning, voided | none (voided follows cancelled: the hold released) |
pub fn event_type(from: Option<OrderState>, to: OrderState) -> Option<&'static str> {
    use OrderState as S;
    if from == Some(to) {
        return None;
    }
    Some(match to {
        S::Authorized | S::ShippingRequested => "order.authorized",
        S::Declined => "order.declined",
        S::Shipped | S::Captured if from == Some(S::Cancelling) => return None,
        S::Shipped => "order.shipped",
        S::Captured => "order.captured",
        S::Delivered => "order.delivered",
        S::Cancelled => "order.cancelled",
        S::Refunded => "order.refunded",
        S::Failed => "order.failed",
        _ => return None,
    })
}

/// Whether `s` is a known event type.
pub fn is_event_type(s: &str) -> bool {
    EVENT_TYPES.contains(&s)
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not yet acknowledged; retried with backoff.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Gave up after the retry window; replayable.
    Failed,
}

impl DeliveryStatus {
    /// The stable text.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses the stable text.
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// An endpoint of the shop's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// The operator's name for it (1–64 of a–z, 0–9, `-`, `_`).
    pub endpoint_id: String,
    /// Where events are POSTed (`http://` or `https://`).
    pub url: String,
    /// The event types it receives (empty: every type).
    pub events: Vec<String>,
    /// The salt its signing secret is derived with (never the secret itself).
    pub secret_salt: Vec<u8>,
    /// Whether events are recorded for it and sent.
    pub enabled: bool,
    /// When it was added.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
}

/// A change to an endpoint (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChange {
    /// A new URL.
    pub url: Option<String>,
    /// New event types (empty: every type).
    pub events: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// A new secret salt (rotates the secret).
    pub secret_salt: Option<Vec<u8>>,
}

/// A recorded event: the merchant's view of the order right after the change (no card, no
/// destination: the merchant holds neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Its order among all events.
    pub seq: i64,
    /// `evt_` and 32 hex digits; the same on every retry and replay.
    pub event_id: String,
    /// One of [`EVENT_TYPES`].
    pub event_type: String,
    /// The order.
    pub order_id: OrderId,
    /// The state before, if known.
    pub previous_state: Option<String>,
    /// The state after.
    pub state: String,
    /// The cardholder's identifier.
    pub cardholder_id: String,
    /// The order's total, minor units.
    pub amount: u64,
    /// ISO 4217.
    pub currency: String,
    /// Captured so far (the issuer's last receipt).
    pub captured: u64,
    /// Refunded so far.
    pub refunded: u64,
    /// Why it was declined or failed, if so.
    pub decline_code: Option<String>,
    /// The issuer's authorization id, once authorized.
    pub authorization_id: Option<String>,
    /// The carrier's tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// When the change was committed.
    pub created_at_ms: i64,
}

/// One event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// Its id.
    pub delivery_id: i64,
    /// The event.
    pub event: WebhookEvent,
    /// The endpoint.
    pub endpoint_id: String,
    /// The endpoint's URL (now).
    pub url: String,
    /// The endpoint's secret salt (now).
    pub secret_salt: Vec<u8>,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts so far (since the last replay).
    pub attempts: u32,
    /// Not tried again before this.
    pub next_attempt_at_ms: i64,
    /// The first attempt (since the last replay): the retry window counts from it.
    pub first_attempt_at_ms: Option<i64>,
    /// The HTTP status of the last attempt, if one was answered.
    pub last_status: Option<u16>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it was acknowledged.
    pub delivered_at_ms: Option<i64>,
    /// When it was recorded.
    pub created_at_ms: i64,
}

/// What an attempt did to its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Acknowledged (2xx).
    Delivered,
    /// Failed; try again at this time.
    Retry(i64),
    /// Failed, and the retry window is over: the delivery is `failed`.
    GiveUp,
}

/// One attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    /// The delivery.
    pub delivery_id: i64,
    /// Its number (1 = first since the last replay).
    pub attempt: u32,
    /// When it started.
    pub at_ms: i64,
    /// The HTTP status, if the endpoint answered.
    pub http_status: Option<u16>,
    /// How long it took.
    pub latency_ms: i64,
    /// Why it failed, if it did (never a secret).
    pub error: Option<String>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this order's.
    pub order_id: Option<OrderId>,
    /// Only to this endpoint.
    pub endpoint_id: Option<String>,
    /// Only in this status.
    pub status: Option<DeliveryStatus>,
    /// Only of this event.
    pub event_id: Option<String>,
    /// At most this many (default 100), newest first.
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// The merchant's webhook records (every [`crate::MerchantStore`] has them).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Adds an endpoint; [`crate::StoreError::Conflict`] if the id is taken.
    async fn add_webhook_endpoint(&self, e: &WebhookEndpoint) -> Result<()>;

    /// Changes an endpoint; whether it exists.
    async fn change_webhook_endpoint(
        &self,
        endpoint_id: &str,
        change: &EndpointChange,
        now_ms: i64,
    ) -> Result<bool>;

    /// Every endpoint, by id.
    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>>;

    /// Claims up to `limit` due deliveries to enabled endpoints whose earlier deliveries of
    /// the same order to the same endpoint are all delivered; each one's attempts grow by one
    /// and it is leased until `now_ms + lease_ms`.
    async fn claim_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>>;

    /// Logs an attempt and applies its outcome to the delivery, in one transaction.
    async fn record_webhook_attempt(
        &self,
        attempt: &WebhookAttempt,
        outcome: AttemptOutcome,
    ) -> Result<()>;

    /// Deliveries matching `filter`, newest first.
    async fn webhook_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<WebhookDelivery>>;

    /// A delivery's attempts, oldest first.
    async fn webhook_attempts(&self, delivery_id: i64) -> Result<Vec<WebhookAttempt>>;

    /// Sends the deliveries matching `filter` again from now (a fresh retry window): with an
    /// `event_id`, whatever their status (a resend, same event id); otherwise only `failed`
    /// ones. Returns how many.
    async fn replay_webhooks(&self, filter: &DeliveryFilter, now_ms: i64) -> Result<u64>;

    /// How many deliveries are in each status.
    async fn count_webhooks_by_status(&self) -> Result<Vec<(DeliveryStatus, u64)>>;
}

#[async_trait]
impl WebhookStore for Store {
    async fn add_webhook_endpoint(&self, e: &WebhookEndpoint) -> Result<()> {
        dispatch!(self, add_webhook_endpoint(e))
    }
    async fn change_webhook_endpoint(
        &self,
        endpoint_id: &str,
        change: &EndpointChange,
        now_ms: i64,
    ) -> Result<bool> {
        dispatch!(self, change_webhook_endpoint(endpoint_id, change, now_ms))
    }
    async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        dispatch!(self, webhook_endpoints())
    }
    async fn claim_webhooks(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        dispatch!(self, claim_webhooks(now_ms, lease_ms, limit))
    }
    async fn record_webhook_attempt(
        &self,
        attempt: &WebhookAttempt,
        outcome: AttemptOutcome,
    ) -> Result<()> {
        dispatch!(self, record_webhook_attempt(attempt, outcome))
    }
    async fn webhook_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<WebhookDelivery>> {
        dispatch!(self, webhook_deliveries(filter))
    }
    async fn webhook_attempts(&self, delivery_id: i64) -> Result<Vec<WebhookAttempt>> {
        dispatch!(self, webhook_attempts(delivery_id))
    }
    async fn replay_webhooks(&self, filter: &DeliveryFilter, now_ms: i64) -> Result<u64> {
        dispatch!(self, replay_webhooks(filter, now_ms))
    }
    async fn count_webhooks_by_status(&self) -> Result<Vec<(DeliveryStatus, u64)>> {
        dispatch!(self, count_webhooks_by_status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state pair: an event only on a change, every event type reachable, no event for
    /// a cancellation the carrier refused.
    #[test]
    fn state_changes_map_to_events() {
        let mut seen = std::collections::BTreeSet::new();
        for &from in OrderState::ALL {
            for &to in OrderState::ALL {
                let e = event_type(Some(from), to);
                if from == to {
                    assert_eq!(e, None);
                }
                if let Some(e) = e {
                    assert!(is_event_type(e));
                    seen.insert(e);
                }
            }
        }
        assert_eq!(seen.len(), EVENT_TYPES.len());
        use OrderState as S;
        assert_eq!(
            event_type(Some(S::Received), S::ShippingRequested),
            Some("order.authorized")
        );
        assert_eq!(event_type(Some(S::Cancelling), S::Captured), None);
        assert_eq!(event_type(Some(S::Cancelling), S::Shipped), None);
        assert_eq!(event_type(Some(S::Cancelled), S::Voided), None);
        assert_eq!(
            event_type(Some(S::Cancelled), S::Refunded),
            Some("order.refunded")
        );
        assert_eq!(event_type(None, S::Captured), Some("order.captured"));
    }
}
