//! The merchant's order lifecycle driven by its outbox worker, over real HTTP, on SQLite and
//! (when reachable) PostgreSQL: capture on shipment, delivery learned from the carrier (pushed,
//! or polled),
//! a carrier outage and a restart finished by the worker with backoff, a carrier refusal and a
//! cancellation before shipping ending voided, a cancellation after capture ending refunded,
//! operator refunds, first answers to retried POSTs, and never a second hold or capture.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};
use warifu_core::OrderId;

use common::{Db, Fill};
use warifu_core::PartyId;
use warifu_core::sealed::SealedOrder;
use warifu_services::cardholder::{CancelFate, CardholderError};
use warifu_services::dev::local::Local;
use warifu_services::directory::{Directory, Entry};
use warifu_services::merchant::worker::{Worker, WorkerOptions};
use warifu_services::merchant::{self, MerchantConfig, MerchantState};
use warifu_services::protocol::cardholder_merchant::OrderOutcome;
use warifu_services::protocol::operator::AdminOrderList;
use warifu_services::session::client::ClientError;
use warifu_store::{AuthorizationStatus, MerchantStore, OrderState, Party, ShipmentStatus, Store};

/// The amount of `Fill::default()` with a carrier: 2 × 1200 + 3500.
const AMOUNT: u64 = 5_900;

async fn start(db: Db) -> Option<common::Env> {
    let mut env = common::start(db).await?;
    env.local.start_worker(WorkerOptions::fast()).await;
    Some(env)
}

/// Waits (at most `secs`) until the merchant's order is in `state`.
async fn wait_state(store: &dyn MerchantStore, order_id: &str, state: OrderState, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let o = store
            .get_order(&OrderId::from(order_id))
            .await
            .expect("read")
            .expect("order");
        if o.state == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "order {order_id} still {} after {secs} s (waiting for {state})",
            o.state
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn state_of(env: &common::Env, order_id: &str) -> OrderState {
    env.local
        .merchant
        .store()
        .get_order(&OrderId::from(order_id))
        .await
        .expect("read")
        .expect("order")
        .state
}

/// A sealed bundle for a fresh form at `merchant` (not yet submitted).
async fn sealed(env: &common::Env, merchant: &PartyId, digital: bool) -> SealedOrder {
    env.sealed_at(merchant, digital).await.2
}

fn refusal(e: CardholderError) -> (u16, String) {
    match e {
        CardholderError::Client(ClientError::Refused { status, code, .. }) => (status, code),
        other => panic!("not a refusal: {other}"),
    }
}

/// Points `id` at a port nobody listens on.
fn take_down(env: &common::Env, id: &PartyId) -> Directory {
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

/// The issuer never held or captured twice: one authorization per order, each capture
/// movement once, and the books balance.
async fn assert_books(env: &common::Env, captures: usize) {
    let issuer = env.local.issuer.store();
    let audit = issuer.audit().await.expect("audit");
    assert!(audit.is_clean(), "{audit:?}");
    let entries = issuer
        .ledger_entries(&format!("merchant:{}", env.merchant()))
        .await
        .expect("entries");
    let mut movements: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == "capture")
        .map(|e| e.movement_id.as_str())
        .collect();
    movements.dedup();
    assert_eq!(movements.len(), captures, "capture movements: {entries:?}");
}

/// Moves a shipment on at the carrier: by its operator route, or in its store if the route
/// is not there.
async fn advance(env: &common::Env, tracking: &str, from: ShipmentStatus, to: ShipmentStatus) {
    let endpoint = env
        .local
        .endpoint(&env.carrier())
        .expect("carrier endpoint");
    let resp = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!(
            "{endpoint}{}",
            warifu_services::protocol::operator::advance_path(tracking)
        ))
        .json(&serde_json::json!({ "to": to.as_str(), "note": "test" }))
        .send()
        .await
        .expect("advance");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    if status == 404 && common::error_code(&body) == "not_found" {
        let moved = env
            .local
            .carrier
            .store()
            .advance_shipment(
                tracking,
                from,
                to,
                Some("test"),
                warifu_services::clock::Clock::system().now_ms(),
            )
            .await
            .expect("advance in the store");
        assert!(moved, "{from} → {to}");
    } else {
        assert_eq!(
            status,
            200,
            "advance {from} → {to}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

async fn admin(
    env: &common::Env,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, Vec<u8>) {
    let endpoint = env
        .local
        .endpoint(&env.merchant())
        .expect("merchant endpoint");
    let mut req = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .request(method, format!("{endpoint}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin call");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// Approved → captured at once (digital, and with a carrier on acceptance) → delivered once
/// the carrier delivers; first answers to retries; cancel after capture → refunded; operator
/// refunds; one capture per order.
async fn captured_delivered_refunded(db: Db) {
    let Some(env) = start(db).await else {
        return;
    };
    let store = env.local.merchant.store().clone();
    let issuer_store = env.local.issuer.store().clone();
    let merchant_id = env.merchant();

    // With a carrier: the answer comes after authorize, ship and capture.
    let bundle = sealed(&env, &merchant_id, false).await;
    let order_id = bundle.header.order_id.clone();
    let first = env.alice.submit(&bundle).await.expect("submit");
    assert_eq!(first.state, "captured", "{first:?}");
    let pay = first.payment.clone().expect("payment receipt");
    assert_eq!((pay.state.as_str(), pay.captured), ("captured", AMOUNT));
    assert_eq!(first.delivery.as_deref(), Some("accepted"));
    let tracking = first.tracking_number.clone().expect("tracking");
    let auth = issuer_store
        .get_authorization(merchant_id.as_str(), &order_id)
        .await
        .expect("read")
        .expect("authorization");
    assert_eq!(
        (auth.status, auth.captured, auth.held),
        (AuthorizationStatus::Captured, AMOUNT, 0)
    );

    // The cardholder's view: merchant, payment and delivery (with its own destination).
    let view = env
        .alice
        .order_view(&merchant_id, &order_id)
        .await
        .expect("view");
    assert_eq!(view.merchant_state(), "captured");
    assert_eq!(view.payment_state().as_deref(), Some("captured"));
    assert_eq!(view.payment_method(), Some("installments(3)"));
    assert_eq!(view.delivery_state(), Some("accepted"));
    assert_eq!(
        view.instalments(),
        Some(&[1968, 1966, 1966][..]),
        "{view:?}"
    );
    let t = view.tracking.as_ref().expect("tracking view");
    assert_eq!(
        t.destination
            .as_ref()
            .map(|d| d.address.expose().to_owned()),
        Some(common::ADDRESS.to_owned())
    );

    // The carrier moves the parcel; the merchant learns of the delivery (pushed, or polled).
    advance(
        &env,
        &tracking,
        ShipmentStatus::Accepted,
        ShipmentStatus::PickedUp,
    )
    .await;
    advance(
        &env,
        &tracking,
        ShipmentStatus::PickedUp,
        ShipmentStatus::InTransit,
    )
    .await;
    advance(
        &env,
        &tracking,
        ShipmentStatus::InTransit,
        ShipmentStatus::Delivered,
    )
    .await;
    wait_state(&*store, &order_id, OrderState::Delivered, 10).await;
    let done = env
        .alice
        .order_status(&merchant_id, &order_id)
        .await
        .expect("status");
    assert_eq!(
        (done.state.as_str(), done.delivery.as_deref()),
        ("delivered", Some("delivered"))
    );
    let facts = store.order_facts(&order_id).await.expect("facts");
    let tracked = env
        .alice
        .tracking(&env.carrier(), &merchant_id, &order_id)
        .await
        .expect("tracking");
    assert!(tracked.proof_of_delivery.is_some(), "{tracked:?}");
    let proof = facts
        .iter()
        .find(|f| f.kind == "proof")
        .expect("proof kept");
    assert!(!common::contains(&proof.body, common::ADDRESS.as_bytes()));
    // The merchant shows the proof to the issuer in a dispute; the issuer checks it.
    let (status, body) = admin(
        &env,
        reqwest::Method::POST,
        &format!("/v1/admin/orders/{order_id}/dispute"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: warifu_services::protocol::merchant_issuer::DisputeAnswer =
        serde_json::from_slice(&body).expect("dispute answer");
    assert!(answer.proof_valid && answer.order_id == order_id);
    // Nothing is left to send for it.
    assert!(
        store
            .outbox_for_order(&order_id)
            .await
            .expect("outbox")
            .iter()
            .all(|m| m.done)
    );
    // A retried submission gets the first answer, and acts no more.
    assert_eq!(env.alice.submit(&bundle).await.expect("again"), first);

    // Digital goods: captured right after authorization; nothing to track.
    let digital = sealed(&env, &merchant_id, true).await;
    let d = env.alice.submit(&digital).await.expect("digital");
    assert_eq!(d.state, "captured", "{d:?}");
    assert_eq!(d.payment.as_ref().map(|p| p.captured), Some(800));
    assert!(d.delivery.is_none() && d.tracking_number.is_none());

    // Cancel after capture: refunded in full; a retry answers the same.
    let c = env
        .alice
        .cancel(&merchant_id, &d.order_id)
        .await
        .expect("cancel");
    assert_eq!(c.state, "refunded", "{c:?}");
    let p = c.payment.clone().expect("receipt");
    assert_eq!((p.state.as_str(), p.refunded), ("refunded", 800));
    assert_eq!(
        env.alice
            .cancel(&merchant_id, &d.order_id)
            .await
            .expect("again"),
        c
    );
    // A third order, captured, refunded by the operator in two parts.
    let third = env
        .alice
        .submit(&sealed(&env, &merchant_id, false).await)
        .await
        .expect("third");
    assert_eq!(third.state, "captured");
    let path = format!("/v1/admin/orders/{}/refund", third.order_id);
    let part = serde_json::json!({ "amount": 1000, "refund_id": "r-1" });
    let (status, body) = admin(&env, reqwest::Method::POST, &path, Some(part.clone())).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let o: OrderOutcome = serde_json::from_slice(&body).expect("outcome");
    assert_eq!(o.state, "captured");
    let p = o.payment.clone().expect("receipt");
    assert_eq!((p.state.as_str(), p.refunded), ("partially_refunded", 1000));
    let (status, again) = admin(&env, reqwest::Method::POST, &path, Some(part)).await;
    assert_eq!(
        (status, &again),
        (200, &body),
        "a retried refund answers the first answer"
    );
    let (status, body) = admin(
        &env,
        reqwest::Method::POST,
        &path,
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let o: OrderOutcome = serde_json::from_slice(&body).expect("outcome");
    assert_eq!(o.state, "refunded");
    assert_eq!(o.payment.map(|p| p.refunded), Some(AMOUNT));
    // Refunding more is an invalid transition.
    let (status, body) = admin(
        &env,
        reqwest::Method::POST,
        &format!("/v1/admin/orders/{order_id}/refund"),
        Some(serde_json::json!({ "amount": AMOUNT + 1 })),
    )
    .await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (409, "invalid_transition")
    );
    // The operator's list.
    let (status, body) = admin(
        &env,
        reqwest::Method::GET,
        "/v1/admin/orders?limit=10",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let list: AdminOrderList = serde_json::from_slice(&body).expect("list");
    assert_eq!(list.orders.len(), 3);
    assert!(!common::contains(&body, common::CARD.as_bytes()));
    assert!(!common::contains(&body, common::ADDRESS.as_bytes()));

    // A parcel the carrier returns: the worker refunds the order in full.
    let fourth = env
        .alice
        .submit(&sealed(&env, &merchant_id, false).await)
        .await
        .expect("fourth");
    let tracking = fourth.tracking_number.clone().expect("tracking");
    advance(
        &env,
        &tracking,
        ShipmentStatus::Accepted,
        ShipmentStatus::Returned,
    )
    .await;
    wait_state(&*store, &fourth.order_id, OrderState::Refunded, 10).await;
    let o = env
        .alice
        .order_status(&merchant_id, &fourth.order_id)
        .await
        .expect("status");
    assert_eq!(o.delivery.as_deref(), Some("returned"));
    assert_eq!(
        o.payment.map(|p| (p.state, p.refunded)),
        Some(("refunded".to_owned(), AMOUNT))
    );

    // Four captures, one each; the card is back to its limit less the delivered order.
    assert_books(&env, 4).await;
    let card = issuer_store
        .get_card("card-1")
        .await
        .expect("r")
        .expect("card");
    assert_eq!(card.available, 100_000 - AMOUNT);
    common::finish(env).await;
}

/// The carrier is down: the order waits in `shipping_requested` while the worker retries with
/// backoff; a cancellation then voids it. Another order waits, the merchant restarts, the
/// carrier comes back, and the restarted worker finishes it.
async fn outage_cancel_and_restart(db: Db) {
    let Some(env) = start(db).await else {
        return;
    };
    let merchant_id = env.merchant();
    let original = take_down(&env, &env.carrier());
    // Order A: 502, kept; the worker keeps trying.
    let a = sealed(&env, &merchant_id, false).await;
    let a_id = a.header.order_id.clone();
    let (status, code) = refusal(env.alice.submit(&a).await.expect_err("carrier down"));
    assert_eq!((status, code.as_str()), (502, "peer_unavailable"));
    assert_eq!(state_of(&env, &a_id).await, OrderState::ShippingRequested);
    let store = env.local.merchant.store().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ship = store
            .outbox_for_order(&a_id)
            .await
            .expect("outbox")
            .into_iter()
            .find(|m| m.kind == "ship")
            .expect("ship message");
        if ship.attempts >= 3 {
            assert!(!ship.done);
            assert!(
                ship.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("peer_unavailable")),
                "{:?}",
                ship.last_error
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker does not retry: {ship:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state_of(&env, &a_id).await, OrderState::ShippingRequested);
    // Cancelled before shipping: voided, the hold released.
    let c = env.alice.cancel(&merchant_id, &a_id).await.expect("cancel");
    assert_eq!(c.state, "voided", "{c:?}");
    assert_eq!(c.payment.as_ref().map(|p| p.state.as_str()), Some("voided"));
    let auth = env
        .local
        .issuer
        .store()
        .get_authorization(merchant_id.as_str(), &a_id)
        .await
        .expect("read")
        .expect("authorization");
    assert_eq!((auth.status, auth.held), (AuthorizationStatus::Voided, 0));
    // A retried cancellation answers the first answer.
    assert_eq!(
        env.alice.cancel(&merchant_id, &a_id).await.expect("again"),
        c
    );

    // Order B waits too; then the whole deployment stops (as after a crash, with the
    // message still in the outbox) and starts again with the carrier up.
    let b = sealed(&env, &merchant_id, false).await;
    let b_id = b.header.order_id.clone();
    let (status, _) = refusal(env.alice.submit(&b).await.expect_err("carrier down"));
    assert_eq!(status, 502);
    assert_eq!(state_of(&env, &b_id).await, OrderState::ShippingRequested);
    // Order C finds the issuer down as well: it waits in `received`. Cancelled there, it is
    // cancelled at once; the issuer is still to be asked (502: the worker finishes it), and
    // its approval is then voided.
    let carrier_down = take_down(&env, &env.issuer());
    let c = sealed(&env, &merchant_id, false).await;
    let c_id = c.header.order_id.clone();
    let (status, _) = refusal(env.alice.submit(&c).await.expect_err("issuer down"));
    assert_eq!(status, 502);
    assert_eq!(state_of(&env, &c_id).await, OrderState::Received);
    let (status, code) = refusal(
        env.alice
            .cancel(&merchant_id, &c_id)
            .await
            .expect_err("cancel while authorizing"),
    );
    assert_eq!((status, code.as_str()), (502, "peer_unavailable"));
    assert_eq!(state_of(&env, &c_id).await, OrderState::Cancelled);
    // The issuer comes back: the running worker authorizes C by itself (no resubmission)
    // and voids the hold.
    env.local
        .directory
        .replace(carrier_down)
        .expect("issuer up");
    wait_state(&*store, &c_id, OrderState::Voided, 10).await;
    // The merchant goes down with B still in the outbox, and comes back with the
    // carrier up: the restarted worker finishes both.
    let common::Env {
        local,
        tmp,
        db,
        schema_prefix,
        ..
    } = env;
    let mut local = local;
    local.stop_worker().await;
    for id in [&b_id] {
        let o = store.get_order(id).await.expect("read").expect("order");
        assert_eq!(
            o.state,
            OrderState::ShippingRequested,
            "work left for the restart"
        );
    }
    local.directory.replace(original).expect("restore");
    local.stop().await;
    let mut opts = common::options(tmp.path(), schema_prefix.as_deref());
    opts.worker = Some(WorkerOptions::fast());
    let local = Local::start(opts).await.expect("restart");
    let env = common::Env::with_local(local, tmp, db, schema_prefix);
    wait_state(
        &**env.local.merchant.store(),
        &b_id,
        OrderState::Captured,
        10,
    )
    .await;
    let shipments = env.shipments().await;
    // A's cancellation reached the carrier once it was back: at most a tombstone.
    let shipped: Vec<&str> = shipments
        .iter()
        .filter(|s| s.status != ShipmentStatus::Cancelled)
        .map(|s| s.order_id.as_str())
        .collect();
    assert_eq!(
        shipped,
        [b_id.as_str()],
        "A was cancelled before shipping, C before authorization, B shipped once"
    );
    // The cardholder's retry after the outage gets the finished order.
    let done = env.alice.submit(&b).await.expect("resubmit");
    assert_eq!(done.state, "captured");
    assert_books(&env, 1).await;
    assert_eq!(env.available().await, 100_000 - AMOUNT);
    common::finish(env).await;
}

/// A merchant whose delivery requests the carrier refuses (its parcel description is longer
/// than the carrier accepts): the authorization is voided and the order ends `voided`.
async fn carrier_refuses(db: Db) {
    let Some(env) = start(db).await else {
        return;
    };
    let refused = common::id("merchant:oversize.example");
    let mut config = MerchantConfig::example(env.issuer(), Some(env.carrier()));
    config.parcel = "x".repeat(2000);
    let store: Arc<dyn MerchantStore> = Arc::new(
        Store::open_party(&env.tmp.path().join("oversize"), Party::Merchant)
            .await
            .expect("store"),
    );
    let state = MerchantState::new(
        env.local.issue(&refused).expect("key"),
        config,
        store.clone(),
        env.local.directory.clone(),
        warifu_services::clock::Clock::system(),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let mut d = (*env.local.directory.get()).clone();
    d.insert(Entry::new(refused.clone(), &url).expect("entry"));
    env.local.directory.replace(d).expect("directory");
    tokio::spawn(merchant::run(l, state.clone(), std::future::pending()));
    let worker = Worker::start(state.clone(), WorkerOptions::fast());

    let bundle = sealed(&env, &refused, false).await;
    let order_id = bundle.header.order_id.clone();
    let (status, code) = refusal(env.alice.submit(&bundle).await.expect_err("refused"));
    assert_eq!((status, code.as_str()), (502, "peer_error"));
    wait_state(&*store, &order_id, OrderState::Voided, 10).await;
    let order = store.get_order(&order_id).await.expect("r").expect("order");
    assert_eq!(order.decline_code.as_deref(), Some("malformed_request"));
    assert!(order.carrier_part.is_none());
    let issuer_store = env.local.issuer.store();
    let auth = issuer_store
        .get_authorization(refused.as_str(), &order_id)
        .await
        .expect("read")
        .expect("authorization");
    assert_eq!(
        (auth.status, auth.held, auth.captured),
        (AuthorizationStatus::Voided, 0, 0)
    );
    let card = issuer_store
        .get_card("card-1")
        .await
        .expect("r")
        .expect("card");
    assert_eq!(card.available, 100_000, "the hold is released");
    assert!(issuer_store.audit().await.expect("audit").is_clean());
    // The cardholder sees it voided; a resubmission answers the same, and nothing is sent.
    let status = env
        .alice
        .order_status(&refused, &order_id)
        .await
        .expect("status");
    assert_eq!(status.state, "voided");
    assert_eq!(
        env.alice.submit(&bundle).await.expect("again").state,
        "voided"
    );
    // A voided order cannot be cancelled into anything else: it answers its state.
    assert_eq!(
        env.alice
            .cancel(&refused, &order_id)
            .await
            .expect("cancel")
            .state,
        "voided"
    );
    worker.stop().await;
    common::finish(env).await;
}

common::on_both_databases!(
    captured_delivered_refunded:
    captured_delivered_refunded_on_sqlite,
    captured_delivered_refunded_on_postgres
);

common::on_both_databases!(
    outage_cancel_and_restart:
    outage_cancel_and_restart_on_sqlite,
    outage_cancel_and_restart_on_postgres
);

common::on_both_databases!(carrier_refuses: carrier_refuses_on_sqlite, carrier_refuses_on_postgres);

/// The merchant's order state, waiting (at most 10 s) until it is `state`.
async fn wait_for(env: &common::Env, order_id: &str, state: OrderState) {
    wait_state(&**env.local.merchant.store(), order_id, state, 10).await;
}

/// Issue 12, defects 1–4, as regressions: refund ids scoped to the order; a cancellation
/// after the carrier accepted tells the carrier (not picked up → cancelled and refunded;
/// picked up → returning, refunded once returned) and the parcel can no longer be delivered;
/// a delivered order cannot be cancelled; physical goods need a carrier.
async fn issue12(db: Db) {
    let Some(env) = start(db).await else {
        return;
    };
    let merchant_id = env.merchant();
    let issuer_store = env.local.issuer.store().clone();
    let payment = |o: &OrderOutcome| {
        o.payment
            .as_ref()
            .map(|p| (p.state.clone(), p.captured, p.refunded))
    };

    // 1. Two orders cancelled after capture are both refunded (one refund id per order).
    for _ in 0..2 {
        let d = env
            .alice
            .submit(&sealed(&env, &merchant_id, true).await)
            .await
            .expect("digital");
        assert_eq!(d.state, "captured", "{d:?}");
        let c = env
            .alice
            .cancel(&merchant_id, &d.order_id)
            .await
            .expect("cancel");
        assert_eq!(c.state, "refunded", "{c:?}");
        assert_eq!(payment(&c), Some(("refunded".into(), 800, 800)));
    }
    // …and two equal partial operator refunds on one order are two refunds; a keyed one
    // is refunded once however often it is sent.
    let o = env
        .alice
        .submit(&sealed(&env, &merchant_id, false).await)
        .await
        .expect("order");
    let path = format!("/v1/admin/orders/{}/refund", o.order_id);
    for refunded in [1000, 2000] {
        let (status, body) = admin(
            &env,
            reqwest::Method::POST,
            &path,
            Some(serde_json::json!({ "amount": 1000 })),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let r: OrderOutcome = serde_json::from_slice(&body).expect("outcome");
        assert_eq!(
            payment(&r),
            Some(("partially_refunded".into(), AMOUNT, refunded))
        );
    }
    let keyed = |key: &'static str| {
        let endpoint = env.local.endpoint(&merchant_id).expect("endpoint");
        let path = path.clone();
        async move {
            let resp = warifu_services::http::tls::client(|b| b)
                .expect("http client")
                .post(format!("{endpoint}{path}"))
                .header("Idempotency-Key", key)
                .json(&serde_json::json!({ "amount": 500 }))
                .send()
                .await
                .expect("refund");
            (resp.status().as_u16(), resp.bytes().await.expect("body"))
        }
    };
    let (s1, b1) = keyed("k-1").await;
    let (s2, b2) = keyed("k-1").await;
    assert_eq!((s1, s2), (200, 200), "{}", String::from_utf8_lossy(&b1));
    assert_eq!(b1, b2);
    let r: OrderOutcome = serde_json::from_slice(&b1).expect("outcome");
    assert_eq!(payment(&r).map(|p| p.2), Some(2500));

    // 2a. Cancelled after the carrier accepted, before pick-up: the carrier cancels the
    // shipment, the capture is refunded, and the parcel can no longer be delivered.
    let o = env
        .alice
        .submit(&sealed(&env, &merchant_id, false).await)
        .await
        .expect("order");
    assert_eq!(o.state, "captured");
    let tracking = o.tracking_number.clone().expect("tracking");
    let c = env
        .alice
        .cancel(&merchant_id, &o.order_id)
        .await
        .expect("cancel");
    assert_eq!(c.state, "refunded", "{c:?}");
    assert_eq!(payment(&c), Some(("refunded".into(), AMOUNT, AMOUNT)));
    let shipment = env
        .local
        .carrier
        .store()
        .shipment_by_tracking(&tracking)
        .await
        .expect("read")
        .expect("shipment");
    assert_eq!(shipment.status, ShipmentStatus::Cancelled);
    let moved = env
        .local
        .carrier
        .store()
        .advance_shipment(
            &tracking,
            ShipmentStatus::Cancelled,
            ShipmentStatus::Delivered,
            None,
            warifu_services::clock::Clock::system().now_ms(),
        )
        .await;
    assert!(
        !matches!(moved, Ok(true)),
        "a cancelled parcel was delivered"
    );

    // 2b. Cancelled after pick-up: the parcel returns; refunded once it is back.
    let o = env
        .alice
        .submit(&sealed(&env, &merchant_id, false).await)
        .await
        .expect("order");
    let tracking = o.tracking_number.clone().expect("tracking");
    advance(
        &env,
        &tracking,
        ShipmentStatus::Accepted,
        ShipmentStatus::PickedUp,
    )
    .await;
    let c = env
        .alice
        .cancel(&merchant_id, &o.order_id)
        .await
        .expect("cancel");
    assert_eq!(c.state, "returning", "{c:?}");
    assert_eq!(payment(&c), Some(("captured".into(), AMOUNT, 0)));
    advance(
        &env,
        &tracking,
        ShipmentStatus::Returning,
        ShipmentStatus::Returned,
    )
    .await;
    wait_for(&env, &o.order_id, OrderState::Refunded).await;

    // 3. A delivered order cannot be cancelled; it stays delivered and captured.
    let o = env
        .alice
        .submit(&sealed(&env, &merchant_id, false).await)
        .await
        .expect("order");
    let tracking = o.tracking_number.clone().expect("tracking");
    for (from, to) in [
        (ShipmentStatus::Accepted, ShipmentStatus::PickedUp),
        (ShipmentStatus::PickedUp, ShipmentStatus::InTransit),
        (ShipmentStatus::InTransit, ShipmentStatus::Delivered),
    ] {
        advance(&env, &tracking, from, to).await;
    }
    wait_for(&env, &o.order_id, OrderState::Delivered).await;
    let (status, code) = refusal(
        env.alice
            .cancel(&merchant_id, &o.order_id)
            .await
            .expect_err("delivered"),
    );
    assert_eq!((status, code.as_str()), (409, "invalid_transition"));
    assert_eq!(state_of(&env, &o.order_id).await, OrderState::Delivered);
    let auth = issuer_store
        .get_authorization(merchant_id.as_str(), &o.order_id)
        .await
        .expect("read")
        .expect("authorization");
    assert_eq!(
        (auth.status, auth.captured, auth.refunded),
        (AuthorizationStatus::Captured, AMOUNT, 0)
    );

    // 4. Physical goods on a "digital goods only" form are refused with a typed error.
    let mut form = env
        .alice
        .order_form(&merchant_id, true)
        .await
        .expect("form");
    assert!(form.carrier.is_none());
    // A doctored copy of the form says the tea is digital, so the cardholder's own check
    // passes; the merchant checks against the form it issued.
    for item in &mut form.catalog {
        item.ships = false;
    }
    let mut order = Fill::default().order(&form).expect("order");
    let (lines, amount) =
        warifu_core::order::Order::lines_from(&form, &[("TEA-001", 1)]).expect("lines");
    order.lines = lines;
    order.amount = amount;
    let bundle = env
        .alice
        .seal(&form, &order, &env.issuer())
        .await
        .expect("seal");
    let (status, code) = refusal(env.alice.submit(&bundle).await.expect_err("refused"));
    assert_eq!((status, code.as_str()), (422, "delivery_required"));
    assert!(
        env.local
            .merchant
            .store()
            .get_order(&bundle.header.order_id)
            .await
            .expect("read")
            .is_none()
    );
    common::finish(env).await;
}

common::on_both_databases!(issue12: issue12_on_sqlite, issue12_on_postgres);

/// A cancellation racing a delivery the merchant has not learned of yet (the carrier's pusher
/// is stopped, and the merchant's delivery polls are a minute apart). Answered at once, the carrier's refusal is the cancel's answer
/// (`invalid_transition`). With the carrier down, the merchant answers `cancelling`, and the
/// cardholder's wait ends when the carrier is back: `RefusedDelivered` with the capture kept
/// for a parcel delivered meanwhile, `Cancelled` and refunded for one not picked up.
async fn cancel_races_delivery(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    let slow_tracking = WorkerOptions {
        track_base: Duration::from_secs(60),
        track_max: Duration::from_secs(60),
        ..WorkerOptions::fast()
    };
    env.local.start_worker(slow_tracking).await;
    env.local.stop_pusher().await;
    let merchant_id = env.merchant();
    let wait = Duration::from_secs(10);
    let buy = async || {
        let o = env
            .alice
            .submit(&sealed(&env, &merchant_id, false).await)
            .await
            .expect("order");
        assert_eq!(o.state, "captured", "{o:?}");
        o
    };
    let deliver = async |o: &OrderOutcome| {
        let tracking = o.tracking_number.as_deref().expect("tracking");
        for (from, to) in [
            (ShipmentStatus::Accepted, ShipmentStatus::PickedUp),
            (ShipmentStatus::PickedUp, ShipmentStatus::InTransit),
            (ShipmentStatus::InTransit, ShipmentStatus::Delivered),
        ] {
            advance(&env, tracking, from, to).await;
        }
        assert_eq!(state_of(&env, &o.order_id).await, OrderState::Captured);
    };
    let capture_kept = async |order_id: &str| {
        wait_for(&env, order_id, OrderState::Delivered).await;
        let auth = env
            .local
            .issuer
            .store()
            .get_authorization(merchant_id.as_str(), &OrderId::from(order_id))
            .await
            .expect("read")
            .expect("authorization");
        assert_eq!(
            (auth.status, auth.captured, auth.refunded),
            (AuthorizationStatus::Captured, AMOUNT, 0)
        );
    };

    // The cancel reaches the merchant while the carrier is down: `cancelling`, which a zero
    // wait leaves as it is; then the carrier is back and the wait settles it.
    let cancel_while_carrier_down = async |o: &OrderOutcome| {
        let original = take_down(&env, &env.carrier());
        let c = env
            .alice
            .cancel(&merchant_id, &o.order_id)
            .await
            .expect("cancel");
        assert_eq!(CancelFate::of(&c), CancelFate::Pending, "{c:?}");
        let (_, fate) = env
            .alice
            .settle_cancel(&merchant_id, c.clone(), Duration::ZERO)
            .await
            .expect("no wait");
        assert_eq!(fate, CancelFate::Pending, "a zero wait asks nothing more");
        env.local.directory.replace(original).expect("restore");
        env.alice
            .settle_cancel(&merchant_id, c, wait)
            .await
            .expect("settled")
    };

    // 1. Delivered, the carrier up: the cancel is refused there and then.
    let o = buy().await;
    deliver(&o).await;
    let (status, code) = refusal(
        env.alice
            .cancel_and_wait(&merchant_id, &o.order_id, wait)
            .await
            .expect_err("delivered"),
    );
    assert_eq!((status, code.as_str()), (409, "invalid_transition"));
    capture_kept(&o.order_id).await;

    // 2. Delivered, the carrier down when the cancel comes: pending, then refused.
    let o = buy().await;
    deliver(&o).await;
    let (c, fate) = cancel_while_carrier_down(&o).await;
    assert_eq!(fate, CancelFate::RefusedDelivered, "{c:?}");
    assert!(fate.words(&c).starts_with("not cancelled"));
    capture_kept(&o.order_id).await;

    // 3. Not picked up, the carrier down when the cancel comes: pending, then cancelled and
    // refunded.
    let o = buy().await;
    let (c, fate) = cancel_while_carrier_down(&o).await;
    assert_eq!(fate, CancelFate::Cancelled, "{c:?}");
    wait_for(&env, &o.order_id, OrderState::Refunded).await;

    assert_books(&env, 3).await;
    common::finish(env).await;
}

common::on_both_databases!(
    cancel_races_delivery: cancel_races_delivery_on_sqlite,
    cancel_races_delivery_on_postgres
);

/// A keyed operator refund whose first answer was lost to an issuer outage (the merchant keeps
/// it in its outbox and answers `peer_unavailable`): a retry under the key with another
/// amount is `order_conflict`, never a second refund; the same request again, once the issuer
/// is back, answers the one refund; the issuer refunded that amount once.
async fn keyed_refund_through_an_issuer_outage(db: Db) {
    let Some(env) = start(db).await else {
        return;
    };
    let merchant_id = env.merchant();
    let o = env
        .alice
        .submit(&sealed(&env, &merchant_id, true).await)
        .await
        .expect("order");
    assert_eq!(o.state, "captured");
    let path = format!("/v1/admin/orders/{}/refund", o.order_id);
    // Keyed by the body's refund id (the same key as an Idempotency-Key header).
    let keyed = |amount: u64| {
        let body = serde_json::json!({ "amount": amount, "refund_id": "k-outage" });
        admin(&env, reqwest::Method::POST, &path, Some(body))
    };
    let original = take_down(&env, &env.issuer());
    let (status, body) = keyed(300).await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(common::error_code(&body), "peer_unavailable");
    let (status, body) = keyed(500).await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    assert_eq!(common::error_code(&body), "order_conflict");
    env.local.directory.replace(original).expect("restore");
    let (s1, b1) = keyed(300).await;
    let (s2, b2) = keyed(300).await;
    assert_eq!((s1, s2), (200, 200), "{}", String::from_utf8_lossy(&b1));
    assert_eq!(b1, b2);
    let r: OrderOutcome = serde_json::from_slice(&b1).expect("outcome");
    let p = r.payment.expect("payment");
    assert_eq!(
        (p.state.as_str(), p.refunded),
        ("partially_refunded", 300),
        "{p:?}"
    );
    let (status, body) = keyed(500).await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    common::finish(env).await;
}

common::on_both_databases!(
    keyed_refund_through_an_issuer_outage: keyed_refund_through_an_issuer_outage_on_sqlite,
    keyed_refund_through_an_issuer_outage_on_postgres
);
