//! The carrier pushes its shipments' moves to the order's merchant (`POST /v1/delivery-events`,
//! issue 14), on SQLite and PostgreSQL: a delivered order reaches `delivered` at once with no
//! tracking poll; with the merchant down the event is retried and applied when it is back; the
//! same event twice acts once; an event from another carrier, for an unknown order, from a
//! cardholder or for an order that can never take it is refused (and the carrier records the
//! verdict instead of retrying); a returned parcel is refunded in full; with the merchant
//! down past the retry window the carrier gives its events up and the merchant's tracking poll
//! still brings the order to `delivered`.

mod common;

use std::time::{Duration, Instant};

use common::{Db, Fill};
use warifu_core::OrderId;
use warifu_services::carrier::push::PushOptions;
use warifu_services::directory::{Directory, Entry};
use warifu_services::protocol::cardholder_carrier::TrackingView;
use warifu_services::protocol::carrier_merchant::{
    DeliveryEvent, DeliveryEventAck, PATH_DELIVERY_EVENTS,
};
use warifu_services::protocol::operator::advance_path;
use warifu_services::session::client::{ClientError, PeerClient, http_client};
use warifu_store::{
    AuthorizationStatus, DeliveryPush, OrderRecord, OrderState, OutboxMessage, PushState,
};

/// The amount of `Fill::default()` with a carrier: 2 × 1200 + 3500.
const AMOUNT: u64 = 5_900;

/// Buys `Fill::default()` with the carrier: the order id and tracking number, captured.
async fn buy(env: &common::Env) -> (OrderId, String) {
    let p = env.buy(false, &Fill::default()).await;
    assert_eq!(p.outcome.state, "captured", "{:?}", p.outcome);
    let tracking = p.outcome.tracking_number.clone().expect("tracking number");
    (p.form.order_id, tracking)
}

/// The carrier's operator moves a shipment to `to`; its tracking view.
async fn advance(env: &common::Env, tracking: &str, to: &str) -> TrackingView {
    let endpoint = env
        .local
        .endpoint(&env.carrier())
        .expect("carrier endpoint");
    let resp = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{endpoint}{}", advance_path(tracking)))
        .json(&serde_json::json!({ "to": to }))
        .send()
        .await
        .expect("advance");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    assert_eq!(
        status,
        200,
        "advance to {to}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).expect("tracking view")
}

async fn order(env: &common::Env, order_id: &OrderId) -> OrderRecord {
    env.local
        .merchant
        .store()
        .get_order(order_id)
        .await
        .expect("read")
        .expect("order")
}

/// Waits (at most `secs`) until the order is in `state`; how long it took.
async fn wait_state(
    env: &common::Env,
    order_id: &OrderId,
    state: OrderState,
    secs: u64,
) -> Duration {
    let started = Instant::now();
    loop {
        let o = order(env, order_id).await;
        if o.state == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "order {order_id} still {} after {secs} s (waiting for {state})",
            o.state
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The order's `track` poll messages.
async fn polls(env: &common::Env, order_id: &OrderId) -> Vec<OutboxMessage> {
    env.local
        .merchant
        .store()
        .outbox_for_order(order_id)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|m| m.kind == "track")
        .collect()
}

/// The carrier's delivery events of a shipment.
async fn pushes(env: &common::Env, tracking: &str) -> Vec<DeliveryPush> {
    env.local
        .carrier
        .store()
        .pushes_for(tracking)
        .await
        .expect("pushes")
}

/// Waits (at most `secs`) until every delivery event of the shipment is no longer pending.
async fn wait_pushed(env: &common::Env, tracking: &str, secs: u64) -> Vec<DeliveryPush> {
    let started = Instant::now();
    loop {
        let p = pushes(env, tracking).await;
        if p.iter().all(|p| p.state != PushState::Pending) {
            return p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "delivery events still pending: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn fact(env: &common::Env, order_id: &OrderId, kind: &str) -> Option<Vec<u8>> {
    env.local
        .merchant
        .store()
        .order_facts(order_id)
        .await
        .expect("facts")
        .into_iter()
        .find(|f| f.kind == kind)
        .map(|f| f.body)
}

/// A session client of the merchant acting as `id` (with keys the key center issues it).
fn client_as(env: &common::Env, id: &warifu_core::PartyId) -> PeerClient {
    PeerClient::new(
        http_client(),
        env.local.issue(id).expect("keys"),
        env.merchant(),
        &env.local
            .endpoint(&env.merchant())
            .expect("merchant endpoint"),
    )
}

fn event(order_id: &OrderId, tracking: &str, status: &str) -> DeliveryEvent {
    DeliveryEvent {
        event_id: format!("{tracking}-test-{status}"),
        order_id: order_id.clone(),
        tracking_number: tracking.to_owned(),
        status: status.to_owned(),
        at_ms: 1,
        proof_of_delivery: None,
    }
}

/// A verified refusal's status and code.
fn refused(r: Result<DeliveryEventAck, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Refused {
            status,
            code,
            verified: true,
            ..
        }) => (status, code),
        other => panic!("not a verified refusal: {other:?}"),
    }
}

/// A delivered parcel reaches `delivered` at the merchant as the carrier pushes it, while the
/// merchant's tracking poll is not due for an hour: it never ran (no tracking GET), and the
/// move completes it. The proof of delivery is kept, without the address.
async fn delivered_without_polling(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let (order_id, tracking) = buy(&env).await;
    let now = env.local.merchant.clock().now_ms();
    let track = polls(&env, &order_id).await;
    assert_eq!(track.len(), 1, "{track:?}");
    assert!(!track[0].done && track[0].attempts == 0);
    assert!(
        track[0].next_attempt_at_ms >= now + 55 * 60 * 1000,
        "the poll is a slow safety net: due at {} (now {now})",
        track[0].next_attempt_at_ms
    );

    advance(&env, &tracking, "picked_up").await;
    advance(&env, &tracking, "in_transit").await;
    let started = Instant::now();
    let view = advance(&env, &tracking, "delivered").await;
    wait_state(&env, &order_id, OrderState::Delivered, 10).await;
    let latency = started.elapsed();
    eprintln!("delivered at the merchant {latency:?} after the carrier's move");
    assert!(latency < Duration::from_secs(3), "{latency:?}");

    // The poll never ran and is done; the carrier sent each move once, in order.
    let track = polls(&env, &order_id).await;
    assert!(track[0].done && track[0].attempts == 0, "{track:?}");
    let sent = wait_pushed(&env, &tracking, 10).await;
    let statuses: Vec<&str> = sent.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["picked_up", "in_transit", "delivered"]);
    assert!(sent.iter().all(|p| p.state == PushState::Sent), "{sent:?}");
    assert_eq!(
        fact(&env, &order_id, "delivery").await.as_deref(),
        Some(&b"delivered"[..])
    );
    let proof = fact(&env, &order_id, "proof").await.expect("proof kept");
    assert!(!common::contains(&proof, common::ADDRESS.as_bytes()));
    assert!(!common::contains(&proof, common::ADDRESSEE.as_bytes()));
    let kept: warifu_services::protocol::merchant_issuer::ProofOfDelivery =
        serde_json::from_slice(&proof).expect("proof");
    assert_eq!(Some(kept), view.proof_of_delivery);
    // Nothing is left to send for the order; the cardholder sees it delivered.
    assert!(
        env.local
            .merchant
            .store()
            .outbox_for_order(&order_id)
            .await
            .expect("outbox")
            .iter()
            .all(|m| m.done)
    );
    let seen = env
        .alice
        .order_status(&env.merchant(), &order_id)
        .await
        .expect("status");
    assert_eq!(
        (seen.state.as_str(), seen.delivery.as_deref()),
        ("delivered", Some("delivered"))
    );
    common::finish(env).await;
}

common::on_both_databases!(
    delivered_without_polling: delivered_without_polling_on_sqlite,
    delivered_without_polling_on_postgres
);

/// Points `id` at a port nobody listens on; the directory as it was.
fn take_down(env: &common::Env, id: &warifu_core::PartyId) -> Directory {
    let original: Directory = (*env.local.directory.get()).clone();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let mut down = original.clone();
    down.insert(Entry::new(id.clone(), &dead).expect("entry"));
    env.local.directory.replace(down).expect("replace");
    original
}

/// With the merchant unreachable, the carrier keeps its delivery events and retries them with
/// backoff; once the merchant is back they are applied, in order.
async fn merchant_down_then_back(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    env.local.start_pusher(PushOptions::fast()).await;
    let (order_id, tracking) = buy(&env).await;
    let original = take_down(&env, &env.merchant());
    advance(&env, &tracking, "picked_up").await;
    advance(&env, &tracking, "in_transit").await;
    advance(&env, &tracking, "delivered").await;
    let started = Instant::now();
    loop {
        let p = pushes(&env, &tracking).await;
        if p[0].attempts >= 3 {
            assert!(p.iter().all(|p| p.state == PushState::Pending), "{p:?}");
            assert!(
                p[0].last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("unreachable")),
                "{p:?}"
            );
            // Later events of the shipment wait for the first.
            assert!(p[1..].iter().all(|p| p.attempts == 0), "{p:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{p:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(order(&env, &order_id).await.state, OrderState::Captured);
    env.local.directory.replace(original).expect("restore");
    wait_state(&env, &order_id, OrderState::Delivered, 10).await;
    let sent = wait_pushed(&env, &tracking, 10).await;
    assert!(sent.iter().all(|p| p.state == PushState::Sent), "{sent:?}");
    let track = polls(&env, &order_id).await;
    assert!(track[0].done && track[0].attempts == 0, "{track:?}");
    common::finish(env).await;
}

common::on_both_databases!(
    merchant_down_then_back: merchant_down_then_back_on_sqlite,
    merchant_down_then_back_on_postgres
);

/// With the merchant unreachable for longer than the carrier's retry window, every delivery
/// event of the shipment ends `failed` (retried, then given up, none sent), and nothing is
/// lost: the merchant's tracking poll, the safety net, brings the order to `delivered`.
async fn merchant_down_past_the_retry_window(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    env.local
        .start_pusher(PushOptions {
            retry_for: Duration::from_millis(300),
            ..PushOptions::fast()
        })
        .await;
    // The merchant's worker polls the carrier (whose address it still has) from soon after
    // capture, every 400 ms at most.
    env.local
        .start_worker(warifu_services::merchant::worker::WorkerOptions::fast())
        .await;
    let (order_id, tracking) = buy(&env).await;
    let original = take_down(&env, &env.merchant());
    advance(&env, &tracking, "picked_up").await;
    advance(&env, &tracking, "in_transit").await;
    advance(&env, &tracking, "delivered").await;
    let given_up = wait_pushed(&env, &tracking, 15).await;
    assert_eq!(given_up.len(), 3, "{given_up:?}");
    assert!(
        given_up
            .iter()
            .all(|p| p.state == PushState::Failed && p.attempts >= 1),
        "{given_up:?}"
    );
    wait_state(&env, &order_id, OrderState::Delivered, 15).await;
    assert!(
        pushes(&env, &tracking)
            .await
            .iter()
            .all(|p| p.state == PushState::Failed),
        "a given-up event was sent after all"
    );
    env.local.directory.replace(original).expect("restore");
    common::finish(env).await;
}

common::on_both_databases!(
    merchant_down_past_the_retry_window: merchant_down_past_the_retry_window_on_sqlite,
    merchant_down_past_the_retry_window_on_postgres
);

/// Sent by hand in the carrier's session: the same event twice acts once; a returned event
/// for a delivered order is `invalid_transition`; another carrier, an unknown order, a
/// cardholder and a status that is not a move are refused. The carrier's own pushes of moves
/// the merchant already knows are answered `applied: false`.
async fn once_and_refusals(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    env.local.stop_pusher().await;
    let (order_id, tracking) = buy(&env).await;
    advance(&env, &tracking, "picked_up").await;
    advance(&env, &tracking, "in_transit").await;
    let view = advance(&env, &tracking, "delivered").await;
    let carrier = client_as(&env, &env.carrier());
    let mut delivered = event(&order_id, &tracking, "delivered");
    delivered.proof_of_delivery = view.proof_of_delivery.clone();
    assert!(delivered.proof_of_delivery.is_some());

    // A proof of another order is refused, and changes nothing.
    let mut wrong = delivered.clone();
    if let Some(p) = wrong.proof_of_delivery.as_mut() {
        p.tracking_number = "WRF-OTHER".into();
    }
    let r = carrier.post(PATH_DELIVERY_EVENTS, &wrong).await;
    assert_eq!(refused(r), (400, "malformed_request".into()));
    assert_eq!(order(&env, &order_id).await.state, OrderState::Captured);

    let first: DeliveryEventAck = carrier
        .post(PATH_DELIVERY_EVENTS, &delivered)
        .await
        .expect("first");
    assert_eq!((first.state.as_str(), first.applied), ("delivered", true));
    let version = order(&env, &order_id).await.version;
    let again: DeliveryEventAck = carrier
        .post(PATH_DELIVERY_EVENTS, &delivered)
        .await
        .expect("again");
    assert_eq!((again.state.as_str(), again.applied), ("delivered", false));
    assert_eq!(
        order(&env, &order_id).await.version,
        version,
        "applied twice"
    );
    // An earlier move arriving late changes nothing either.
    let late: DeliveryEventAck = carrier
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&order_id, &tracking, "in_transit"),
        )
        .await
        .expect("late");
    assert!(!late.applied);
    assert_eq!(
        fact(&env, &order_id, "delivery").await.as_deref(),
        Some(&b"delivered"[..])
    );

    // A delivered order cannot be returned: a clear verdict, not a 5xx.
    let r = carrier
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&order_id, &tracking, "returned"),
        )
        .await;
    assert_eq!(refused(r), (409, "invalid_transition".into()));
    // An unknown order; another shipment of the order.
    let r = carrier
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&OrderId::from("no-such-order"), &tracking, "delivered"),
        )
        .await;
    assert_eq!(refused(r), (404, "unknown_order".into()));
    let r = carrier
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&order_id, "WRF-OTHER", "delivered"),
        )
        .await;
    assert_eq!(refused(r), (404, "unknown_order".into()));
    // Not a move the carrier pushes.
    let r = carrier
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&order_id, &tracking, "accepted"),
        )
        .await;
    assert_eq!(refused(r), (400, "malformed_request".into()));
    // Another carrier may not tell of this order's parcel; a cardholder may not either.
    let other = client_as(&env, &common::id("carrier:other.example"));
    let r = other
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&order_id, &tracking, "returned"),
        )
        .await;
    assert_eq!(refused(r), (404, "unknown_order".into()));
    let holder = client_as(&env, &env.alice_id);
    let r = holder
        .post(
            PATH_DELIVERY_EVENTS,
            &event(&order_id, &tracking, "returned"),
        )
        .await;
    assert_eq!(refused(r), (403, "forbidden".into()));
    assert_eq!(order(&env, &order_id).await.state, OrderState::Delivered);

    // The carrier's own pushes of the three moves: known already, each answered once.
    env.local.start_pusher(PushOptions::fast()).await;
    let sent = wait_pushed(&env, &tracking, 10).await;
    assert!(sent.iter().all(|p| p.state == PushState::Sent), "{sent:?}");
    assert_eq!(order(&env, &order_id).await.version, version);

    // An order refunded in full before its parcel arrives cannot take the delivery: the
    // merchant's verdict is recorded by the carrier, which does not send it again.
    let (second, second_tracking) = buy(&env).await;
    let endpoint = env.local.endpoint(&env.merchant()).expect("merchant");
    let resp = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{endpoint}/v1/admin/orders/{second}/refund"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("refund");
    assert_eq!(resp.status().as_u16(), 200);
    wait_state(&env, &second, OrderState::Refunded, 10).await;
    advance(&env, &second_tracking, "picked_up").await;
    advance(&env, &second_tracking, "in_transit").await;
    advance(&env, &second_tracking, "delivered").await;
    let done = wait_pushed(&env, &second_tracking, 10).await;
    let states: Vec<PushState> = done.iter().map(|p| p.state).collect();
    assert_eq!(
        states,
        [PushState::Sent, PushState::Sent, PushState::Refused],
        "{done:?}"
    );
    let verdict = done[2].last_error.clone().unwrap_or_default();
    assert!(verdict.contains("invalid_transition"), "{verdict}");
    assert_eq!(done[2].attempts, 1, "a verdict is not retried");
    assert_eq!(order(&env, &second).await.state, OrderState::Refunded);
    common::finish(env).await;
}

common::on_both_databases!(
    once_and_refusals: once_and_refusals_on_sqlite,
    once_and_refusals_on_postgres
);

/// A parcel the carrier returns (picked up, then returned) is pushed, and the order ends
/// refunded in full at the merchant and the issuer, the card back to its limit; no poll ran.
async fn returned_refunded_in_full(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    env.local
        .start_worker(warifu_services::merchant::worker::WorkerOptions {
            track_first: Duration::from_secs(3600),
            ..warifu_services::merchant::worker::WorkerOptions::fast()
        })
        .await;
    let before = env.available().await;
    let (order_id, tracking) = buy(&env).await;
    assert_eq!(env.available().await, before - AMOUNT);
    advance(&env, &tracking, "picked_up").await;
    advance(&env, &tracking, "returned").await;
    wait_state(&env, &order_id, OrderState::Refunded, 15).await;
    let o = order(&env, &order_id).await;
    assert_eq!(o.decline_code.as_deref(), Some("returned"));
    let auth = env
        .local
        .issuer
        .store()
        .get_authorization(env.merchant().as_str(), &order_id)
        .await
        .expect("read")
        .expect("authorization");
    assert_eq!(
        (auth.status, auth.captured, auth.refunded),
        (AuthorizationStatus::Refunded, AMOUNT, AMOUNT)
    );
    assert_eq!(env.available().await, before);
    let track = polls(&env, &order_id).await;
    assert!(track[0].done && track[0].attempts == 0, "{track:?}");
    let sent = wait_pushed(&env, &tracking, 10).await;
    assert!(sent.iter().all(|p| p.state == PushState::Sent), "{sent:?}");
    common::finish(env).await;
}

common::on_both_databases!(
    returned_refunded_in_full: returned_refunded_in_full_on_sqlite,
    returned_refunded_in_full_on_postgres
);
