//! The carrier's delivery-event pusher: sends each shipment move in its outbox to the order's merchant, retrying while the merchant is down.
//!
//! A move of a shipment (picked up, in transit, delivered, returned) is committed with its
//! delivery event in the carrier's outbox (`warifu_store::CarrierStore::advance_shipment`).
//! The [`Pusher`], a tokio task woken by each move (and polling as a backstop), claims due
//! events with a lease (`claim_pushes`: one shipment's events in order), and sends each in the
//! carrier's authenticated session with the merchant (`POST /v1/delivery-events`,
//! [`crate::protocol::carrier_merchant`]), with the proof of delivery for a delivered parcel
//! (no destination). The merchant's answer ends it (`sent`); its authenticated verdict (an
//! unknown order, a state that can never take the event) is recorded and ends it too
//! (`refused`); an outage, an unauthenticated or transient answer (`order_not_ready`: the
//! order's capture is still being answered) is retried with exponential backoff and jitter,
//! until [`PushOptions::retry_for`] after the first attempt (`failed`; the merchant's slow
//! tracking poll is the safety net). Replicas share the work through the lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use warifu_core::{PartyId, Role};
use warifu_store::{DeliveryPush, PushOutcome, ShipmentStatus};

use super::state::CarrierState;
use crate::attest;
use crate::error::AppResult;
use crate::http::service::store_error;
use crate::protocol::carrier_merchant::{DeliveryEvent, DeliveryEventAck, PATH_DELIVERY_EVENTS};
use crate::protocol::merchant_issuer::ProofOfDelivery;

/// How the pusher paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// How long to sleep when nothing is due (a committed move wakes it at once).
    pub poll_interval: Duration,
    /// How long a claimed event is leased to this pusher (longer than a call).
    pub lease: Duration,
    /// How many events to claim and send at once.
    pub batch: u32,
    /// The first retry delay; it doubles on each attempt…
    pub backoff_base: Duration,
    /// …up to this.
    pub backoff_max: Duration,
    /// How long after its first attempt an event is retried before it is `failed`.
    pub retry_for: Duration,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            batch: 32,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            retry_for: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl PushOptions {
    /// Short delays for tests and demos (retries within a second).
    pub fn fast() -> PushOptions {
        PushOptions {
            poll_interval: Duration::from_millis(20),
            lease: Duration::from_secs(20),
            batch: 32,
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(400),
            retry_for: Duration::from_secs(60),
        }
    }
}

/// A running pusher; [`PusherHandle::stop`] lets the events in hand finish.
#[derive(Debug)]
pub struct PusherHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PusherHandle {
    /// Stops claiming, waits for the events in hand, and returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the delivery-event pusher task failed");
        }
    }
}

/// The carrier's delivery-event pusher (one per replica; replicas share the work safely).
#[derive(Debug)]
pub struct Pusher;

impl Pusher {
    /// Starts pushing for `state` on the current tokio runtime.
    pub fn start(state: Arc<CarrierState>, opts: PushOptions) -> PusherHandle {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(state, opts, rx));
        PusherHandle { stop: tx, task }
    }

    /// Claims the due events once and sends them (for tests and tools); returns how many.
    pub async fn tick(state: &Arc<CarrierState>, opts: &PushOptions) -> AppResult<usize> {
        tick(state, opts).await
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn run(st: Arc<CarrierState>, opts: PushOptions, mut stop: watch::Receiver<bool>) {
    tracing::info!(carrier = %st.id(), "delivery-event pusher started");
    loop {
        if *stop.borrow() {
            break;
        }
        let n = match tick(&st, &opts).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "delivery-event pusher: claiming failed");
                0
            }
        };
        if n > 0 {
            // Sending an event may have released the next one of its shipment: claim again.
            continue;
        }
        // A move committed while claiming left a permit: no wake-up is missed.
        tokio::select! {
            _ = st.wake.notified() => {}
            _ = tokio::time::sleep(opts.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!(carrier = %st.id(), "delivery-event pusher stopped");
}

async fn tick(st: &Arc<CarrierState>, opts: &PushOptions) -> AppResult<usize> {
    let claimed = st
        .store
        .claim_pushes(st.clock().now_ms(), ms(opts.lease), opts.batch.max(1))
        .await
        .map_err(store_error("claiming delivery events"))?;
    let n = claimed.len();
    let mut set = JoinSet::new();
    for p in claimed {
        let (st, opts) = (st.clone(), opts.clone());
        set.spawn(async move { attempt(&st, &opts, p).await });
    }
    while let Some(r) = set.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "a delivery-event task failed");
        }
    }
    Ok(n)
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts − 1)` capped at `max`, with
/// jitter (a uniformly drawn point in its upper half).
fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
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

/// What sending an event came to, before the retry window is applied.
enum Sent {
    Ok,
    Verdict(String),
    Again(String),
}

/// One attempt of one event: send, then record how it ended.
async fn attempt(st: &CarrierState, opts: &PushOptions, p: DeliveryPush) {
    let now = st.clock().now_ms();
    let outcome = match send(st, &p).await {
        Sent::Ok => {
            tracing::info!(order_id = %p.order_id, tracking = %p.tracking_number, status = %p.status, attempts = p.attempts, "delivery event pushed");
            PushOutcome::Sent
        }
        Sent::Verdict(why) => {
            tracing::warn!(order_id = %p.order_id, tracking = %p.tracking_number, status = %p.status, error = %why, "the merchant refused a delivery event; not sent again");
            PushOutcome::Refused(why)
        }
        Sent::Again(why) => {
            let first = p.first_attempt_at_ms.unwrap_or(now);
            if now.saturating_sub(first) >= ms(opts.retry_for) {
                tracing::error!(order_id = %p.order_id, tracking = %p.tracking_number, status = %p.status, attempts = p.attempts, error = %why, "delivery event given up; the merchant's tracking poll remains");
                PushOutcome::GiveUp(why)
            } else {
                let delay = backoff(p.attempts, opts.backoff_base, opts.backoff_max);
                tracing::info!(order_id = %p.order_id, tracking = %p.tracking_number, status = %p.status, attempts = p.attempts, retry_in_ms = ms(delay), error = %why, "delivery event kept for a retry");
                PushOutcome::Retry {
                    at_ms: now.saturating_add(ms(delay)),
                    error: why,
                }
            }
        }
    };
    if let Err(e) = st.store.finish_push(p.id, &outcome, now).await {
        tracing::warn!(order_id = %p.order_id, error = %e, "cannot record a delivery event's attempt; its lease will expire");
    }
}

/// The proof of delivery of a delivered shipment (`None` for one stored without its issuer
/// or header digest: the event goes without it).
fn proof(st: &CarrierState, p: &DeliveryPush, merchant: &PartyId) -> Option<ProofOfDelivery> {
    let (Some(issuer), Some(digest), Some(at)) =
        (p.issuer_id.as_deref(), p.header_digest, p.delivered_at_ms)
    else {
        tracing::warn!(tracking = %p.tracking_number, "shipment stored without its issuer or header digest; no proof");
        return None;
    };
    let issuer = PartyId::parse(issuer).ok()?;
    attest::proof_of_delivery(
        st.keys.as_ref(),
        &issuer,
        merchant,
        &p.order_id,
        &p.tracking_number,
        at,
        &digest,
    )
    .inspect_err(|e| tracing::warn!(tracking = %p.tracking_number, error = %e, "cannot attest a delivery; sent without proof"))
    .ok()
}

async fn send(st: &CarrierState, p: &DeliveryPush) -> Sent {
    let Ok(merchant) = PartyId::parse(&p.merchant_id) else {
        return Sent::Verdict("the stored merchant identifier does not parse".into());
    };
    let Some(peers) = &st.peers else {
        return Sent::Again("no directory: the merchant cannot be found".into());
    };
    let client = match peers.get(&merchant, Role::Merchant) {
        Ok(c) => c,
        Err(e) => return Sent::Again(format!("{merchant} is not listed: {e}")),
    };
    let event = DeliveryEvent {
        event_id: format!("{}-{}", p.tracking_number, p.id),
        order_id: p.order_id.clone(),
        tracking_number: p.tracking_number.clone(),
        status: p.status.as_str().to_owned(),
        at_ms: p.at_ms,
        proof_of_delivery: match p.status {
            ShipmentStatus::Delivered => proof(st, p, &merchant),
            _ => None,
        },
    };
    match client
        .post::<_, DeliveryEventAck>(PATH_DELIVERY_EVENTS, &event)
        .await
    {
        Ok(ack) if ack.order_id == p.order_id => Sent::Ok,
        Ok(_) => Sent::Again("the merchant answered about another order".into()),
        Err(e) if e.is_transient() => Sent::Again(e.to_string()),
        Err(e) => Sent::Verdict(e.to_string()),
    }
}
