//! The merchant's outbox worker and the order steps it shares with the request handlers.
//!
//! Every order transition is committed together with the message it causes (the outbox, see
//! `warifu_store::MerchantStore::transition`); a step sends one message to a peer and, on
//! success, applies the compare-and-set transition that completes the message and enqueues
//! the next one, in one transaction. The same step functions run in two places:
//!
//! - inline, in the request that caused them ([`drive`]: the cardholder's submission or
//!   cancellation gets its answer after the synchronous steps). Each step runs on the order
//!   and messages the previous write returned (no read back), writes its facts, answers and
//!   next messages in the one transaction of its transition, and holds its message from the
//!   worker while it runs (`held`: a step outlasting half the worker's grace moves the
//!   message's due time up, so no worker of any replica sends it meanwhile);
//! - in the [`Worker`], a tokio task that claims due messages with a lease
//!   (`claim_outbox`), runs them, and on an outage reschedules them with exponential backoff
//!   and jitter (`retry_outbox`). After a crash it finishes every order the merchant
//!   acknowledged: what was committed is in the outbox, and the peers are idempotent on the
//!   order id (and refund id), so a step run twice acts once.
//!
//! The lifecycle is [`super::machine`] (the full table there and in `docs/LIFECYCLE.md`);
//! what each message's step turns a peer's answer into:
//!
//! | message           | expected in                        | answer → event                                                    |
//! |-------------------|------------------------------------|-------------------------------------------------------------------|
//! | `authorize`       | received, cancelled                | approved / declined / amount mismatch; a refusal → `Refused`      |
//! | `ship`            | shipping_requested                 | accepted (a late one after a cancel → `cancel_shipment`) / refused |
//! | `capture`         | shipped, authorized                | captured / refused                                                |
//! | `void`            | cancelled                          | voided; refused but the issuer captured → captured (then refund) |
//! | `refund`          | cancelled, captured, delivered     | refunded (in full or not) / refused                               |
//! | `cancel_shipment` | cancelling, and after a cancel     | cancelled / returning / refused because delivered                 |
//! | `track`           | captured, returning                | delivered / returned; otherwise polled again with backoff         |
//!
//! `track` is a slow safety net: the carrier pushes each move of the parcel
//! ([`super::delivery`], applied the same way), so the poll is first due
//! [`WorkerOptions::track_first`] after capture.

use std::sync::Arc;
use std::time::Duration;
use warifu_core::OrderId;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use warifu_core::sealed::ForwardedPart;
use warifu_core::{PartyId, Role};
use warifu_store::{
    AppliedTransition, OrderFact, OrderRecord, OrderState, OutboxMessage, Transition,
};

use super::machine::{self, Command, Event, Facts, Kind, REFUND_CANCEL, REFUND_RETURNED};
use super::state::MerchantState;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::service::{peer_error, store_error, to_json};
use crate::protocol::cardholder_carrier::{TrackingView, track_path};
use crate::protocol::merchant_carrier::{
    CancelShipmentRequest, DeliveryRequest, PATH_SHIPMENTS, ShipmentReceipt, ShipmentRequest,
    cancel_path,
};
use crate::protocol::merchant_issuer::{
    AuthorizeRequest, CaptureRequest, Decision, PATH_AUTHORIZATION, PATH_AUTHORIZE, PATH_CAPTURE,
    PATH_REFUNDS, PATH_VOID, PaymentReceipt, RefundRequest, VoidRequest, order_path,
};
use crate::session::client::ClientError;

/// Order fact: the issuer's last `PaymentReceipt`.
pub const FACT_PAYMENT: &str = "payment";
/// Order fact: the carrier's status as last seen.
pub const FACT_DELIVERY: &str = "delivery";
/// Order fact: the carrier's proof of delivery (no address).
pub const FACT_PROOF: &str = "proof";

/// Idempotency scope holding the issuer's decision of an order.
pub(crate) const SCOPE_DECISION: &str = "decision";

/// How the worker paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// How long to sleep when nothing is due.
    pub poll_interval: Duration,
    /// Messages younger than this are left to the request that wrote them (it runs them
    /// inline); the worker takes them after that, e.g. after a crash.
    pub grace: Duration,
    /// How long a claimed message is leased to this worker (longer than a peer call).
    pub lease: Duration,
    /// How many messages to claim and run at once.
    pub batch: u32,
    /// The first retry delay after an outage; it doubles on each attempt…
    pub backoff_base: Duration,
    /// …up to this.
    pub backoff_max: Duration,
    /// How long after capture the first delivery-status poll (`track`) is due. The carrier
    /// pushes its delivery events (`POST /v1/delivery-events`), so polling is only the safety
    /// net for events it could not push.
    pub track_first: Duration,
    /// The first delay between two delivery-status polls; it doubles…
    pub track_base: Duration,
    /// …up to this.
    pub track_max: Duration,
}

impl Default for WorkerOptions {
    fn default() -> WorkerOptions {
        WorkerOptions {
            poll_interval: Duration::from_millis(100),
            grace: Duration::from_secs(2),
            lease: Duration::from_secs(30),
            batch: 32,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            track_first: Duration::from_secs(3600),
            track_base: Duration::from_secs(3600),
            track_max: Duration::from_secs(6 * 3600),
        }
    }
}

impl WorkerOptions {
    /// Short delays for tests and demos (retries within a second; the tracking poll too, so
    /// a delivery the carrier could not push is still learned quickly).
    pub fn fast() -> WorkerOptions {
        WorkerOptions {
            poll_interval: Duration::from_millis(20),
            grace: Duration::from_millis(150),
            lease: Duration::from_secs(20),
            batch: 32,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(400),
            track_first: Duration::from_millis(50),
            track_base: Duration::from_millis(50),
            track_max: Duration::from_millis(400),
        }
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts − 1)` capped at `max`, with
/// jitter (a uniformly drawn point in its upper half), so retries of many orders spread out.
pub fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let mut b = [0u8; 4];
    use warifu_core::rand::Randomness as _;
    let r = match warifu_core::rand::OsRandom.fill(&mut b) {
        Ok(()) => u32::from_le_bytes(b),
        Err(_) => u32::MAX,
    };
    let half = full / 2;
    half + half.mul_f64(f64::from(r) / f64::from(u32::MAX))
}

/// What running one outbox message did.
#[derive(Debug)]
pub(crate) enum Step {
    /// Handled: the transition it causes applied (the order as it now is, with the messages
    /// it enqueued), or the order had already moved on (`None`).
    Advanced(Option<AppliedTransition>),
    /// The peer refused it with an authenticated answer; the failure path is recorded (the
    /// order as it now is, if the refusal moved it).
    Refused(AppError, Option<AppliedTransition>),
    /// The peer is down or could not be authenticated: the message stays, to be retried.
    Retry(AppError),
    /// The carrier has not delivered yet (its status): poll again later.
    Waiting(String),
}

/// Whether a peer's failure is worth retrying (an outage, an unauthenticated or transient
/// answer) rather than a verdict on the order ([`ClientError::is_transient`]).
fn transient(e: &ClientError) -> bool {
    e.is_transient()
}

/// A peer's failure of a step: an outage (or a transient answer) keeps the message for a
/// retry (`Err`); an authenticated verdict on the order is returned (`Ok`) for [`refused`].
// A step's outcome carries the applied row in hand (read once, never re-read): kept unboxed.
#[allow(clippy::result_large_err)]
fn verdict(order_id: &OrderId, what: &str, e: ClientError) -> Result<ClientError, Step> {
    if transient(&e) {
        tracing::warn!(%order_id, error = %e, "{what} not reached; kept for a retry");
        return Err(Step::Retry(peer_error(e)));
    }
    tracing::warn!(%order_id, error = %e, "{what} refused");
    Ok(e)
}

async fn read_order(st: &MerchantState, order_id: &OrderId) -> AppResult<OrderRecord> {
    st.store()
        .get_order(order_id)
        .await
        .map_err(store_error("reading an order"))?
        .ok_or_else(|| AppError::internal("reading an order", &"it vanished"))
}

/// A fact the merchant learns about an order now.
fn fact_now(st: &MerchantState, order_id: &OrderId, kind: &str, body: Vec<u8>) -> OrderFact {
    OrderFact {
        order_id: order_id.to_owned(),
        kind: kind.to_owned(),
        body,
        updated_at_ms: st.clock().now_ms(),
    }
}

/// Stores what the merchant learned about an order.
pub(crate) async fn put_fact(
    st: &MerchantState,
    order_id: &OrderId,
    kind: &str,
    body: Vec<u8>,
) -> AppResult<()> {
    st.store()
        .put_order_fact(&fact_now(st, order_id, kind, body))
        .await
        .map_err(store_error("recording an order fact"))
}

/// Parcel statuses by how far along they are: a status replaces only those of a lower rank.
const PARCEL_RANKS: [(&str, u8); 7] = [
    ("accepted", 0),
    ("picked_up", 1),
    ("in_transit", 2),
    ("returning", 3),
    ("cancelled", 4),
    ("delivered", 4),
    ("returned", 4),
];

/// Records where an order's parcel is (a status learned by the poll or pushed by the carrier)
/// unless the merchant already recorded it or a later one, in one statement, so that a push
/// and a poll racing never step the status back. True if it was recorded.
pub(crate) async fn note_parcel(
    st: &MerchantState,
    order_id: &OrderId,
    status: &str,
) -> AppResult<bool> {
    let rank = |s: &str| PARCEL_RANKS.iter().find(|(n, _)| *n == s).map(|(_, r)| *r);
    let mine = rank(status).unwrap_or(0);
    let earlier: Vec<Vec<u8>> = PARCEL_RANKS
        .iter()
        .filter(|(_, r)| *r < mine)
        .map(|(n, _)| n.as_bytes().to_vec())
        .collect();
    let fact = fact_now(st, order_id, FACT_DELIVERY, status.as_bytes().to_vec());
    st.store()
        .put_order_fact_over(&fact, &earlier)
        .await
        .map_err(store_error("recording a parcel's status"))
}

/// The issuer's last payment receipt for an order, if any.
pub(crate) async fn payment_of(
    st: &MerchantState,
    order_id: &OrderId,
) -> AppResult<Option<PaymentReceipt>> {
    let facts = st
        .store()
        .order_facts(order_id)
        .await
        .map_err(store_error("reading order facts"))?;
    Ok(facts
        .iter()
        .find(|f| f.kind == FACT_PAYMENT)
        .and_then(|f| serde_json::from_slice(&f.body).ok()))
}

/// What is left to refund of an order's capture.
pub(crate) async fn refundable(st: &MerchantState, order: &OrderRecord) -> AppResult<u64> {
    Ok(match payment_of(st, &order.order_id).await? {
        Some(p) if p.captured > 0 => p.captured.saturating_sub(p.refunded),
        _ => order.amount,
    })
}

/// What the merchant knows of an order besides its state: whether it ships, and whether the
/// issuer captured (its last payment receipt).
pub(crate) async fn facts_of(st: &MerchantState, order: &OrderRecord) -> AppResult<Facts> {
    Ok(Facts {
        ships: order.carrier_id.is_some(),
        captured: payment_of(st, &order.order_id)
            .await?
            .is_some_and(|p| p.captured > 0),
    })
}

/// What the lifecycle decides for `event` in the order's state: the facts are read only if
/// the decision depends on them (whether the issuer captured).
async fn decide(
    st: &MerchantState,
    order: &OrderRecord,
    event: &Event,
) -> AppResult<Result<machine::Next, machine::Refused>> {
    let ships = order.carrier_id.is_some();
    let assume = |captured| machine::next(order.state, Facts { ships, captured }, event);
    let (without, with) = (assume(false), assume(true));
    if without == with {
        return Ok(without);
    }
    Ok(machine::next(
        order.state,
        facts_of(st, order).await?,
        event,
    ))
}

/// What applying an event did.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the new row in hand, moved once
pub(crate) enum Applied {
    /// The order is now as given (the commands it causes are in the outbox, and in hand).
    To(AppliedTransition),
    /// The lifecycle does not allow the event in the order's state.
    Refused(machine::Refused),
    /// The order changed meanwhile (only for a request; a peer's answer is re-applied).
    Moved,
}

impl Applied {
    /// The order as the event left it, if it moved it.
    fn applied(self) -> Option<AppliedTransition> {
        match self {
            Applied::To(a) => Some(a),
            Applied::Refused(_) | Applied::Moved => None,
        }
    }
}

/// Applies `event` to `order` as the lifecycle ([`machine::next`]) decides: the new state, its
/// commands, and what `edit` adds (fields, facts, answers to keep) in one compare-and-set
/// transaction, which also completes message `done`. `ship` is the body of a `ship` command.
/// The caller runs the commands inline (`drive`) or leaves them to the worker. A peer's answer (`done` is set) finding the order moved on is applied again
/// from the state it is now in; a request (`done` is `None`) is answered [`Applied::Moved`].
/// Refused by the lifecycle, a peer's answer still keeps the facts and answers it carries.
pub(crate) async fn advance(
    st: &MerchantState,
    order: &OrderRecord,
    event: &Event,
    done: Option<i64>,
    edit: &(dyn Fn(Transition) -> Transition + Sync),
    ship: Option<&[u8]>,
) -> AppResult<Applied> {
    let mut order = order.clone();
    for _ in 0..4 {
        let at = st.clock().now_ms();
        let next = match decide(st, &order, event).await? {
            Ok(n) => n,
            Err(r) => {
                tracing::warn!(order_id = %order.order_id, state = %order.state, ?event, reason = r.message, "event refused by the lifecycle");
                if let Some(id) = done {
                    keep_learned(
                        st,
                        &edit(Transition::new(
                            &order.order_id,
                            order.state,
                            order.state,
                            at,
                        )),
                    )
                    .await?;
                    st.store()
                        .complete_outbox(id)
                        .await
                        .map_err(store_error("completing a message"))?;
                }
                return Ok(Applied::Refused(r));
            }
        };
        let mut t = Transition::new(&order.order_id, order.state, next.to, at);
        for c in &next.send {
            let body = match c {
                Command::Ship => Some(
                    ship.ok_or_else(|| {
                        AppError::internal("requesting delivery", &"no shipment request")
                    })?
                    .to_vec(),
                ),
                _ => None,
            };
            let m = c.message(body);
            t.outbox.push(match c {
                // The carrier pushes delivery events; the poll is a slow safety net.
                Command::Track => m.due_in(ms(st.track_first())),
                _ => m,
            });
        }
        if let Some(id) = done {
            t = t.complete(id);
        }
        let t = edit(t);
        match st
            .store()
            .apply_transition(&t)
            .await
            .map_err(store_error("recording a transition"))?
        {
            Some(applied) => {
                if order.state != next.to {
                    tracing::info!(order_id = %order.order_id, from = %order.state, to = %next.to, ?event, "order transition");
                }
                return Ok(Applied::To(applied));
            }
            None => {
                tracing::debug!(order_id = %t.order_id, to = %t.to, "another worker moved the order first");
            }
        }
        if done.is_none() {
            return Ok(Applied::Moved);
        }
        order = read_order(st, &order.order_id).await?;
    }
    Err(AppError::new(
        ErrorCode::Busy,
        "the order keeps changing; try again",
    ))
}

/// Stores the facts and answers a transition carries without applying it (a peer's answer
/// the lifecycle refuses is still what the peer did).
async fn keep_learned(st: &MerchantState, t: &Transition) -> AppResult<()> {
    for f in &t.facts {
        put_fact(st, &f.order_id, &f.kind, f.body.clone()).await?;
    }
    for (scope, key, response) in &t.records {
        st.store()
            .idempotency_put(scope, key, response)
            .await
            .map_err(store_error("recording an answer"))?;
    }
    Ok(())
}

/// Runs one outbox message: the step for its command, from the order's current state.
pub(crate) async fn run_step(st: &MerchantState, msg: &OutboxMessage) -> AppResult<Step> {
    let order = read_order(st, &msg.order_id).await?;
    run_step_on(st, &order, msg).await
}

/// Runs one outbox message on `order` as the caller holds it (the compare-and-set of its
/// transition catches an order that moved meanwhile).
async fn run_step_on(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let command = match Command::decode(&msg.kind, &msg.payload) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(order_id = %msg.order_id, kind = %msg.kind, error = %e.0, "undecodable outbox message abandoned");
            st.store()
                .complete_outbox(msg.id)
                .await
                .map_err(store_error("completing a message"))?;
            return Ok(Step::Advanced(None));
        }
    };
    if !machine::expected(command.kind()).contains(&order.state) {
        // The order moved on (a cancellation, or another worker): nothing left to send.
        tracing::debug!(order_id = %order.order_id, kind = %msg.kind, state = %order.state, "stale message completed");
        st.store()
            .complete_outbox(msg.id)
            .await
            .map_err(store_error("completing a message"))?;
        return Ok(Step::Advanced(None));
    }
    match command {
        Command::Authorize => step_authorize(st, order, msg).await,
        Command::Ship => step_ship(st, order, msg).await,
        Command::Capture => step_capture(st, order, msg).await,
        Command::Void => step_void(st, order, msg).await,
        Command::Refund { refund_id, amount } => {
            step_refund(st, order, msg, RefundRequest { refund_id, amount }).await
        }
        Command::CancelShipment => step_cancel_shipment(st, order, msg).await,
        Command::Track => step_track(st, order, msg).await,
    }
}

fn payload<T: serde::de::DeserializeOwned>(msg: &OutboxMessage) -> AppResult<T> {
    serde_json::from_slice(&msg.payload)
        .map_err(|e| AppError::internal("reading an outbox message", &e))
}

fn issuer_of(order: &OrderRecord) -> AppResult<PartyId> {
    PartyId::parse(&order.issuer_id)
        .map_err(|e| AppError::internal("reading an order's issuer", &e))
}

fn carrier_of(order: &OrderRecord) -> AppResult<PartyId> {
    let c = order
        .carrier_id
        .as_deref()
        .ok_or_else(|| AppError::internal("reading an order's carrier", &"it has none"))?;
    PartyId::parse(c).map_err(|e| AppError::internal("reading an order's carrier", &e))
}

/// A peer listed in the directory, or a retryable error (it may be listed again later).
#[allow(clippy::result_large_err)]
fn peer_or_retry(
    st: &MerchantState,
    id: &PartyId,
    role: Role,
) -> Result<Arc<crate::session::client::PeerClient>, Step> {
    st.peer(id, role).map_err(Step::Retry)
}

fn same(t: Transition) -> Transition {
    t
}

/// Advances with `event` on a peer's answer to `msg` (completing it) and reports the step.
async fn answered(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
    event: &Event,
    edit: &(dyn Fn(Transition) -> Transition + Sync),
    ship: Option<&[u8]>,
) -> AppResult<Step> {
    let applied = advance(st, order, event, Some(msg.id), edit, ship).await?;
    Ok(Step::Advanced(applied.applied()))
}

/// An answer to keep: status 200 and `body`.
fn kept(body: Vec<u8>, at: i64) -> warifu_store::StoredResponse {
    warifu_store::StoredResponse {
        status: 200,
        body,
        fingerprint: Vec::new(),
        created_at_ms: at,
    }
}

async fn step_authorize(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let order_id = &order.order_id;
    let req: AuthorizeRequest = payload(msg)?;
    let header = &req.forwarded.header;
    let issuer = match peer_or_retry(st, &header.issuer, Role::Issuer) {
        Ok(c) => c,
        Err(s) => return Ok(s),
    };
    let decision: Decision = match issuer.post(PATH_AUTHORIZE, &req).await {
        Ok(d) => d,
        Err(e) => return peer_failed(st, order, msg, Kind::Authorize, "authorization", e).await,
    };
    let consistent = decision.order_id == order_id
        && &decision.merchant == st.id()
        && decision.issuer == header.issuer
        && decision.cardholder == header.cardholder
        && decision.header_digest == header.digest()
        && decision.approved() == decision.reason.is_none();
    if !consistent {
        return Ok(Step::Retry(AppError::new(
            ErrorCode::PeerError,
            "the issuer's decision is not about this order",
        )));
    }
    let at = st.clock().now_ms();
    if decision.amount != order.amount || decision.currency != order.currency {
        tracing::error!(%order_id, "the issuer decided on another amount than the merchant's view");
        let edit = |t: Transition| {
            t.decline_code(ErrorCode::AmountMismatch.as_str())
                .clear_carrier_part()
        };
        let ev = Event::AmountMismatch {
            approved: decision.approved(),
        };
        let applied = advance(st, order, &ev, Some(msg.id), &edit, None).await?;
        return Ok(Step::Refused(
            AppError::new(
                ErrorCode::AmountMismatch,
                "the issuer's decision is for another amount than this order's",
            ),
            applied.applied(),
        ));
    }
    // The decision is kept with the transition it causes (one write).
    let record = kept(to_json(&decision)?, at);
    let keep = move |t: Transition| t.record(SCOPE_DECISION, order_id, record.clone());
    if let Some(reason) = &decision.reason {
        tracing::info!(%order_id, %reason, "declined by the issuer");
        let code = reason.as_str().to_owned();
        let edit = move |t: Transition| keep(t).decline_code(code.clone()).clear_carrier_part();
        return answered(st, order, msg, &Event::Declined, &edit, None).await;
    }
    let authorization_id = decision.authorization_id.clone().unwrap_or_default();
    let ship = match (&header.carrier, order.state) {
        (Some(_), OrderState::Received) => {
            let part = order.carrier_part.as_deref().ok_or_else(|| {
                AppError::internal("requesting delivery", &"the carrier part is missing")
            })?;
            let forwarded = ForwardedPart::decode(part)
                .map_err(|e| AppError::internal("reading the stored carrier part", &e))?;
            let Some(approval) = decision.carrier_approval else {
                return Ok(Step::Retry(AppError::new(
                    ErrorCode::PeerError,
                    "the issuer approved without an approval for the carrier",
                )));
            };
            Some(to_json(&ShipmentRequest {
                forwarded,
                policy: req.policy.clone(),
                approval,
                delivery: DeliveryRequest {
                    parcel: st.config().parcel.clone(),
                    pickup: st.config().pickup.clone(),
                },
            })?)
        }
        _ => None,
    };
    tracing::info!(%order_id, state = %order.state, ships = ship.is_some(), "authorized");
    let cancelled = order.state != OrderState::Received;
    let edit = move |t: Transition| {
        let t = keep(t).authorization_id(authorization_id.clone());
        if cancelled { t.clear_carrier_part() } else { t }
    };
    answered(st, order, msg, &Event::Approved, &edit, ship.as_deref()).await
}

async fn step_ship(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let order_id = &order.order_id;
    let req: ShipmentRequest = payload(msg)?;
    let carrier = match peer_or_retry(st, &carrier_of(order)?, Role::Carrier) {
        Ok(c) => c,
        Err(s) => return Ok(s),
    };
    let receipt: ShipmentReceipt = match carrier.post(PATH_SHIPMENTS, &req).await {
        Ok(r) => r,
        // The carrier refuses: release the hold (void), the order ends voided.
        Err(e) => return peer_failed(st, order, msg, Kind::Ship, "delivery request", e).await,
    };
    if receipt.order_id != order_id {
        return Ok(Step::Retry(AppError::new(
            ErrorCode::PeerError,
            "the carrier's receipt is not about this order",
        )));
    }
    tracing::info!(%order_id, tracking = %receipt.tracking_number, "shipment accepted");
    let tracking = receipt.tracking_number;
    let edit = move |t: Transition| t.tracking_number(tracking.clone()).clear_carrier_part();
    // A cancellation that came meanwhile makes this a late answer: the carrier is told to
    // stop the parcel (`cancel_shipment`).
    answered(st, order, msg, &Event::ShipAccepted, &edit, None).await
}

/// Calls the issuer's payment route `template` for the order with `body`.
async fn payment_call<T: serde::Serialize>(
    st: &MerchantState,
    order: &OrderRecord,
    template: &str,
    body: Option<&T>,
) -> Result<PaymentReceipt, Step> {
    let issuer = issuer_of(order).map_err(Step::Retry)?;
    let client = peer_or_retry(st, &issuer, Role::Issuer)?;
    let method = match body {
        Some(_) => reqwest::Method::POST,
        None => reqwest::Method::GET,
    };
    match client
        .call::<T, PaymentReceipt>(method, &order_path(template, &order.order_id), body)
        .await
    {
        Ok(r) if r.order_id == order.order_id => Ok(r),
        Ok(_) => Err(Step::Retry(AppError::new(
            ErrorCode::PeerError,
            "the issuer's receipt is not about this order",
        ))),
        Err(e) => {
            let e = verdict(&order.order_id, "payment call", e)?;
            Err(Step::Refused(refusal(e), None))
        }
    }
}

/// A peer's authenticated refusal as this service's answer (an `invalid_transition` stays one).
fn refusal(e: ClientError) -> AppError {
    if e.code() == Some(ErrorCode::InvalidTransition.as_str()) {
        return AppError::new(ErrorCode::InvalidTransition, e.to_string());
    }
    peer_error(e)
}

/// A peer's failure of the `kind` step of `msg`: an outage is kept for a retry; a verdict is
/// recorded as [`refused`], with the peer's own code as the decline code.
async fn peer_failed(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
    kind: Kind,
    what: &str,
    e: ClientError,
) -> AppResult<Step> {
    match verdict(&order.order_id, what, e) {
        Err(step) => Ok(step),
        Ok(e) => {
            let code = e.code().unwrap_or("peer_error").to_owned();
            refused(st, order, msg, kind, &code, peer_error(e)).await
        }
    }
}

/// Records a refused step of `kind` (`Event::Refused(kind)`): the lifecycle decides (the order
/// fails, or stays). `code` is the decline code of a failed order; a refused authorization or
/// delivery request also records it and erases the carrier part (nothing will be shipped).
async fn refused(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
    kind: Kind,
    code: &str,
    e: AppError,
) -> AppResult<Step> {
    let ends_delivery = matches!(kind, Kind::Authorize | Kind::Ship);
    let code = code.to_owned();
    let edit = move |t: Transition| {
        let t = if ends_delivery {
            t.clear_carrier_part()
        } else {
            t
        };
        if ends_delivery || t.to == OrderState::Failed {
            t.decline_code(code.clone())
        } else {
            t
        }
    };
    let applied = advance(st, order, &Event::Refused(kind), Some(msg.id), &edit, None).await?;
    Ok(Step::Refused(e, applied.applied()))
}

/// A payment step's refusal by the issuer, recorded with the refusal's code.
async fn payment_refused(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
    kind: Kind,
    e: AppError,
) -> AppResult<Step> {
    let code = e.code.as_str();
    refused(st, order, msg, kind, code, e).await
}

/// The issuer's receipt kept as the order's payment fact, with the transition it causes.
fn with_receipt(receipt: &PaymentReceipt) -> AppResult<impl Fn(Transition) -> Transition + Sync> {
    let body = to_json(receipt)?;
    Ok(move |t: Transition| t.fact(FACT_PAYMENT, body.clone()))
}

async fn step_capture(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let req: CaptureRequest = payload(msg)?;
    let receipt = match payment_call(st, order, PATH_CAPTURE, Some(&req)).await {
        Ok(r) => r,
        Err(Step::Refused(e, _)) => return payment_refused(st, order, msg, Kind::Capture, e).await,
        Err(s) => return Ok(s),
    };
    tracing::info!(order_id = %order.order_id, captured = receipt.captured, "captured");
    answered(
        st,
        order,
        msg,
        &Event::Captured,
        &with_receipt(&receipt)?,
        None,
    )
    .await
}

async fn step_void(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let receipt = match payment_call(st, order, PATH_VOID, Some(&VoidRequest {})).await {
        Ok(r) => r,
        Err(Step::Refused(e, _)) => {
            // A capture that was in flight when the order was cancelled may have won: then
            // the capture is refunded instead.
            match payment_call::<()>(st, order, PATH_AUTHORIZATION, None).await {
                Ok(r) if r.captured > 0 => {
                    tracing::warn!(order_id = %order.order_id, "void refused: the issuer captured; refunding instead");
                    let edit = with_receipt(&r)?;
                    return answered(st, order, msg, &Event::Captured, &edit, None).await;
                }
                Ok(r) if r.state == "voided" => r,
                Ok(_) | Err(Step::Refused(..)) => {
                    return payment_refused(st, order, msg, Kind::Void, e).await;
                }
                Err(s) => return Ok(s),
            }
        }
        Err(s) => return Ok(s),
    };
    tracing::info!(order_id = %order.order_id, "authorization voided");
    answered(
        st,
        order,
        msg,
        &Event::Voided,
        &with_receipt(&receipt)?,
        None,
    )
    .await
}

async fn step_refund(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
    mut req: RefundRequest,
) -> AppResult<Step> {
    let mut done = None;
    if req.amount == 0 {
        // "The rest": what is left of the capture as the issuer says now (so a partial refund
        // that raced this one is not refunded twice, and a retry after success refunds 0).
        match payment_call::<()>(st, order, PATH_AUTHORIZATION, None).await {
            Ok(r) if r.captured > r.refunded => req.amount = r.captured - r.refunded,
            Ok(r) => done = Some(r),
            Err(Step::Refused(e, _)) => return refund_refused(st, order, msg, &req, e).await,
            Err(s) => return Ok(s),
        }
    }
    let paid = match done {
        Some(r) => Ok(r),
        None => payment_call(st, order, PATH_REFUNDS, Some(&req)).await,
    };
    let receipt = match paid {
        Ok(r) => r,
        Err(Step::Refused(e, _)) => return refund_refused(st, order, msg, &req, e).await,
        Err(s) => return Ok(s),
    };
    let full = receipt.captured > 0 && receipt.refunded >= receipt.captured;
    tracing::info!(
        order_id = %order.order_id,
        refund_id = %req.refund_id,
        amount = req.amount,
        full,
        "refunded"
    );
    let event = Event::Refunded { full };
    answered(st, order, msg, &event, &with_receipt(&receipt)?, None).await
}

/// A refund the issuer refused: the order's own (after a cancel or a return) goes by the
/// lifecycle (a cancelled order fails); an operator's leaves the order as it is.
async fn refund_refused(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
    req: &RefundRequest,
    e: AppError,
) -> AppResult<Step> {
    if matches!(req.refund_id.as_str(), REFUND_CANCEL | REFUND_RETURNED) {
        return payment_refused(st, order, msg, Kind::Refund, e).await;
    }
    tracing::warn!(order_id = %order.order_id, refund_id = %req.refund_id, error = %e.message, "the issuer refused an operator's refund");
    let event = Event::OperatorRefundRefused;
    let applied = advance(st, order, &event, Some(msg.id), &same, None).await?;
    Ok(Step::Refused(e, applied.applied()))
}

async fn step_cancel_shipment(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let order_id = &order.order_id;
    let carrier = match peer_or_retry(st, &carrier_of(order)?, Role::Carrier) {
        Ok(c) => c,
        Err(s) => return Ok(s),
    };
    let answer: Result<ShipmentReceipt, ClientError> = carrier
        .post(&cancel_path(order_id), &CancelShipmentRequest {})
        .await;
    let event = match answer {
        Ok(r) if r.order_id != order_id => {
            return Ok(Step::Retry(AppError::new(
                ErrorCode::PeerError,
                "the carrier's receipt is not about this order",
            )));
        }
        Ok(r) => match r.status.as_str() {
            "cancelled" => Event::ShipmentCancelled,
            "returning" | "returned" => Event::ShipmentReturning,
            other => {
                return Ok(Step::Retry(AppError::new(
                    ErrorCode::PeerError,
                    format!("the carrier answered a cancellation with status {other:?}"),
                )));
            }
        },
        Err(e) => match verdict(order_id, "shipment cancellation", e) {
            Err(step) => return Ok(step),
            Ok(e) if e.code() == Some(ErrorCode::InvalidTransition.as_str()) => {
                tracing::warn!(%order_id, error = %e, "the carrier refuses the cancellation: the parcel was delivered");
                Event::ShipmentDelivered
            }
            Ok(e) => {
                // Any other verdict is not an answer the lifecycle knows: keep asking (and alert).
                tracing::error!(%order_id, error = %e, "the carrier refuses the shipment's cancellation");
                return Ok(Step::Retry(peer_error(e)));
            }
        },
    };
    tracing::info!(%order_id, ?event, "the carrier answered the cancellation");
    if event == Event::ShipmentDelivered && order.state != OrderState::Cancelling {
        tracing::error!(%order_id, state = %order.state, "the parcel of a cancelled order was delivered");
    }
    let applied = advance(st, order, &event, Some(msg.id), &same, None).await?;
    if event == Event::ShipmentDelivered && order.state == OrderState::Cancelling {
        return Ok(Step::Refused(
            AppError::new(
                ErrorCode::InvalidTransition,
                "the parcel was already delivered: the order cannot be cancelled",
            ),
            applied.applied(),
        ));
    }
    Ok(Step::Advanced(applied.applied()))
}

async fn step_track(
    st: &MerchantState,
    order: &OrderRecord,
    msg: &OutboxMessage,
) -> AppResult<Step> {
    let order_id = &order.order_id;
    let carrier = match peer_or_retry(st, &carrier_of(order)?, Role::Carrier) {
        Ok(c) => c,
        Err(s) => return Ok(s),
    };
    let view: TrackingView = match carrier.get(&track_path(st.id().as_str(), order_id)).await {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(%order_id, error = %e, "tracking not available; polling again later");
            return Ok(Step::Retry(peer_error(e)));
        }
    };
    if view.order_id != order_id {
        return Ok(Step::Retry(AppError::new(
            ErrorCode::PeerError,
            "the carrier's tracking is not about this order",
        )));
    }
    let event = match view.status.as_str() {
        "delivered" => Event::TrackDelivered,
        // The parcel came back: the cardholder is refunded in full.
        "returned" => Event::TrackReturned,
        other => {
            note_parcel(st, order_id, other).await?;
            return Ok(Step::Waiting(other.to_owned()));
        }
    };
    let status = view.status.clone();
    let returned = event == Event::TrackReturned;
    let proof = view.proof_of_delivery.as_ref().map(to_json).transpose()?;
    let edit = move |t: Transition| {
        let mut t = t.fact(FACT_DELIVERY, status.clone().into_bytes());
        if let Some(p) = &proof {
            t = t.fact(FACT_PROOF, p.clone());
        }
        if returned {
            t = t.decline_code(REFUND_RETURNED);
        }
        t
    };
    tracing::info!(%order_id, status = %view.status, "tracking");
    match advance(st, order, &event, Some(msg.id), &edit, None).await? {
        Applied::Refused(r) => Ok(Step::Refused(
            AppError::new(ErrorCode::PeerError, r.message),
            None,
        )),
        a => Ok(Step::Advanced(a.applied())),
    }
}

/// Runs an order's pending steps inline until it rests (nothing left but tracking), a peer
/// is down, or a peer refused. Returns the order as it then is; a refusal or an outage is
/// returned as the error to answer (the order is kept, and the worker resumes it).
pub(crate) async fn drive(st: &MerchantState, order_id: &OrderId) -> AppResult<OrderRecord> {
    let order = read_order(st, order_id).await?;
    let pending = st
        .store()
        .outbox_for_order(order_id)
        .await
        .map_err(store_error("reading the outbox"))?;
    drive_from(
        st,
        AppliedTransition {
            order,
            outbox: pending,
        },
    )
    .await
}

/// [`drive`] from what the last write left: the order and the messages it enqueued, run
/// inline without reading them back (each step's transition hands over the next ones), each
/// held from the worker while it runs ([`held`]).
pub(crate) async fn drive_from(
    st: &MerchantState,
    from: AppliedTransition,
) -> AppResult<OrderRecord> {
    let AppliedTransition { mut order, outbox } = from;
    let mut pending: Vec<OutboxMessage> = outbox;
    let mut refused = None;
    for _ in 0..8 {
        pending.retain(|m| !m.done && m.kind != Kind::Track.as_str());
        if pending.is_empty() {
            break;
        }
        let msg = pending.remove(0);
        let (moved, stop) = match held(st, msg.id, run_step_on(st, &order, &msg)).await? {
            Step::Advanced(a) => (a, None),
            Step::Waiting(_) => (None, None),
            Step::Refused(e, a) => {
                refused = Some(e);
                (a, None)
            }
            // The message stays due: the worker takes it after its grace.
            Step::Retry(e) => (None, Some(e)),
        };
        match moved {
            Some(a) => {
                order = a.order;
                pending.extend(a.outbox);
            }
            None => order = read_order(st, &order.order_id).await?,
        }
        match stop {
            // Telling an unreachable carrier of a cancellation is the worker's: the order
            // is answered as it is (cancelled, voided, refunded, or cancelling).
            Some(_) if msg.kind == Kind::CancelShipment.as_str() => break,
            Some(e) => return Err(e),
            None => {}
        }
    }
    match refused {
        Some(e) => Err(e),
        None => Ok(order),
    }
}

/// Runs `step`, the inline run of message `id`, holding the message from the worker (of
/// this replica or another) while it lasts: the worker leaves a message alone for its grace
/// after it is due, so a step that outlasts half the grace moves the due time up to now,
/// again every half grace. A step shorter than that writes nothing. Without grace (a worker
/// that takes every due message at once) there is nothing to hold.
async fn held<F: std::future::Future>(st: &MerchantState, id: i64, step: F) -> F::Output {
    let grace = st.worker_grace();
    if grace.is_zero() {
        return step.await;
    }
    let mut step = std::pin::pin!(step);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + grace / 2, grace / 2);
    loop {
        tokio::select! {
            out = &mut step => return out,
            _ = beat.tick() => {
                if let Err(e) = st.store().hold_outbox(id, st.clock().now_ms()).await {
                    tracing::warn!(id, error = %e, "cannot hold a message being sent; the worker may send it too");
                }
            }
        }
    }
}

/// A running worker; [`WorkerHandle::stop`] lets the messages in hand finish.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming, waits for the messages in hand, and returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the outbox worker task failed");
        }
    }
}

/// The merchant's outbox worker.
#[derive(Debug)]
pub struct Worker;

impl Worker {
    /// Starts the worker for `state` on the current tokio runtime.
    pub fn start(state: Arc<MerchantState>, opts: WorkerOptions) -> WorkerHandle {
        state.set_worker_options(&opts);
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(state, opts, rx));
        WorkerHandle { stop: tx, task }
    }

    /// Claims the due messages once and runs them (for tests and tools); returns how many.
    pub async fn tick(state: &Arc<MerchantState>, opts: &WorkerOptions) -> AppResult<usize> {
        tick(state, opts).await
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn tick(st: &Arc<MerchantState>, opts: &WorkerOptions) -> AppResult<usize> {
    st.set_worker_options(opts);
    let grace = ms(opts.grace);
    let claimed = st
        .store()
        .claim_outbox(
            st.clock().now_ms().saturating_sub(grace),
            ms(opts.lease).saturating_add(grace),
            opts.batch.max(1),
        )
        .await
        .map_err(store_error("claiming outbox messages"))?;
    let n = claimed.len();
    let mut set = JoinSet::new();
    for msg in claimed {
        let (st, opts) = (st.clone(), opts.clone());
        set.spawn(async move { handle(&st, &opts, msg).await });
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "an outbox message task failed");
        }
    }
    Ok(n)
}

async fn handle(st: &MerchantState, opts: &WorkerOptions, msg: OutboxMessage) {
    let (delay, note) = match run_step(st, &msg).await {
        Ok(Step::Advanced(_)) | Ok(Step::Refused(..)) => return,
        Ok(Step::Waiting(status)) => (
            backoff(msg.attempts, opts.track_base, opts.track_max),
            format!("waiting: {status}"),
        ),
        Ok(Step::Retry(e)) | Err(e) => {
            let delay = backoff(msg.attempts, opts.backoff_base, opts.backoff_max);
            tracing::info!(
                order_id = %msg.order_id,
                kind = %msg.kind,
                attempts = msg.attempts,
                retry_in_ms = ms(delay),
                code = e.code.as_str(),
                "outbox message kept for a retry"
            );
            (delay, format!("{}: {}", e.code.as_str(), e.message))
        }
    };
    let next = st.clock().now_ms().saturating_add(ms(delay));
    if let Err(e) = st.store().retry_outbox(msg.id, next, &note).await {
        tracing::warn!(order_id = %msg.order_id, error = %e, "cannot reschedule a message; its lease will expire");
    }
}

async fn run(st: Arc<MerchantState>, opts: WorkerOptions, mut stop: watch::Receiver<bool>) {
    tracing::info!(merchant = %st.id(), "outbox worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        let n = match tick(&st, &opts).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "outbox worker: claiming failed");
                0
            }
        };
        if n >= opts.batch.max(1) as usize {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!(merchant = %st.id(), "outbox worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let (base, max) = (Duration::from_millis(200), Duration::from_secs(30));
        for attempts in 1..40 {
            let full = base.saturating_mul(1 << (attempts - 1).min(30)).min(max);
            let d = backoff(attempts, base, max);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d:?} vs {full:?}");
        }
        assert!(backoff(20, base, max) <= max);
        assert!(backoff(0, base, max) <= base);
    }

    #[test]
    fn outage_is_transient_and_verdicts_are_not() {
        let peer = PartyId::parse("issuer:bank.example").unwrap_or_else(|_| unreachable!());
        let refused = |code: &str, verified| ClientError::Refused {
            peer: peer.clone(),
            status: 409,
            code: code.into(),
            message: String::new(),
            verified,
        };
        assert!(transient(&ClientError::Unavailable {
            peer: peer.clone(),
            endpoint: "http://127.0.0.1:1".into(),
            detail: "refused".into(),
        }));
        assert!(transient(&refused("invalid_transition", false)));
        assert!(transient(&refused("busy", true)));
        assert!(!transient(&refused("invalid_transition", true)));
        assert!(!transient(&refused("sealed_part_invalid", true)));
        // The merchant's own revocation list refuses the peer: a verdict, with its code.
        let revoked = ClientError::Key {
            peer: peer.clone(),
            source: warifu_core::Error::Revoked(peer.to_string()),
        };
        assert!(!transient(&revoked));
        assert_eq!(revoked.code(), Some("identity_revoked"));
        assert!(transient(&ClientError::Key {
            peer: peer.clone(),
            source: warifu_core::Error::Rng,
        }));
    }
}
