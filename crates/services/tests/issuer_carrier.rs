//! The issuer's and the carrier's side of the lifecycle over real HTTP, on SQLite and (when
//! reachable) PostgreSQL: capture (full, partial), void and refunds with their first answers
//! replayed, invalid steps refused with `invalid_transition`, the cardholder's statement with
//! instalments and no card number, the carrier's delivery lifecycle driven by its operator,
//! the proof of delivery verified by the issuer (and a tampered one rejected), operator routes
//! closed without the token, and the merchant never shown the destination. Issue 12: refund
//! ids scoped to the order, the carrier asking the issuer whether the payment still stands,
//! the shipment's cancellation (cancelled, returning, tombstone, never delivered after), and
//! disputes accepting a proof only from the order's own carrier over its header digest.

mod common;

use common::{ADDRESS, ADDRESSEE, CARD, Db, EXPIRY, Fill, NAME};
use reqwest::Method;
use warifu_core::OrderId;
use warifu_core::order::PaymentMethod;
use warifu_core::order::{Order, OrderForm};
use warifu_core::sealed::SealedOrder;
use warifu_core::{PartyId, Role};
use warifu_services::attest;
use warifu_services::protocol::cardholder_carrier::TrackingView;
use warifu_services::protocol::cardholder_issuer::Statement;
use warifu_services::protocol::carrier_issuer::{AuthorizationLiveness, live_path};
use warifu_services::protocol::merchant_carrier::{
    CancelShipmentRequest, DeliveryRequest, PATH_SHIPMENTS, ShipmentReceipt, ShipmentRequest,
    cancel_path,
};
use warifu_services::protocol::merchant_issuer::{
    CaptureRequest, Decision, DisputeAnswer, PATH_AUTHORIZE, PaymentReceipt, ProofOfDelivery,
    RefundRequest, VoidRequest,
};
use warifu_services::protocol::operator::ShipmentList;
use warifu_services::protocol::{cardholder_carrier, cardholder_issuer, merchant_issuer, operator};
use warifu_services::session::client::{ClientError, PeerClient, http_client};
use warifu_services::session::operator::OperatorAuth;
use warifu_store::AuthorizeRequest;

/// A second merchant whose orders the deployment's own merchant (and its worker) never
/// touches: its authorizations are placed in the issuer's store directly, and it moves them
/// over HTTP in its own session.
const SHOP2: &str = "merchant:shop2.example";

/// A client acting as `who` towards the party `to` of the deployment.
fn client(env: &common::Env, who: &str, to: &PartyId) -> PeerClient {
    let keys = env.local.issue(&common::id(who)).expect("keys");
    let endpoint = env.local.endpoint(to).expect("endpoint");
    PeerClient::new(http_client(), keys, to.clone(), &endpoint)
}

/// Holds `amount` for `order_id` of `merchant` at the issuer, paid by `method` (nothing
/// ships).
async fn hold(
    env: &common::Env,
    merchant: &str,
    order_id: &str,
    amount: u64,
    method: PaymentMethod,
) {
    hold_bound(env, merchant, order_id, amount, method, None, [0; 32]).await;
}

/// Holds as [`hold`], for an order shipped by `carrier` whose sealed header digests to
/// `digest`.
async fn hold_bound(
    env: &common::Env,
    merchant: &str,
    order_id: &str,
    amount: u64,
    method: PaymentMethod,
    carrier: Option<&PartyId>,
    digest: [u8; 32],
) {
    let rec = env
        .local
        .issuer
        .store()
        .authorize(&AuthorizeRequest {
            merchant_id: merchant.into(),
            order_id: order_id.into(),
            authorization_id: format!("auth_{order_id}"),
            cardholder_id: env.alice_id.to_string(),
            holder_name: NAME.into(),
            card_number: CARD.into(),
            expiry: EXPIRY,
            amount,
            currency: "JPY".into(),
            payment_method: method,
            carrier_id: carrier.map(ToString::to_string),
            header_digest: digest,
            now_ms: warifu_services::clock::Clock::system().now_ms(),
        })
        .await
        .expect("authorize");
    assert!(rec.record.approved(), "{:?}", rec.record.decline_code);
}

fn code(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(e) => e.code().unwrap_or("<not a refusal>").to_owned(),
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    }
}

/// The error code of a refund of `amount` under `refund_id` at `path`.
async fn refund_code(c: &PeerClient, path: &str, refund_id: &str, amount: u64) -> String {
    let req = RefundRequest {
        refund_id: refund_id.into(),
        amount,
    };
    code(c.post::<_, PaymentReceipt>(path, &req).await)
}

/// The error code of a capture of `amount` at `path`.
async fn capture_code(c: &PeerClient, path: &str, amount: Option<u64>) -> String {
    code(
        c.post::<_, PaymentReceipt>(path, &CaptureRequest { amount })
            .await,
    )
}

async fn raw(c: &PeerClient, path: &str, body: &impl serde::Serialize) -> Vec<u8> {
    let (_, b) = c
        .call_raw(Method::POST, path, serde_json::to_vec(body).expect("json"))
        .await
        .expect("call");
    b.to_vec()
}

async fn payments(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let shop2 = client(&env, SHOP2, &env.issuer());
    let path = |t: &str, o: &str| merchant_issuer::order_path(t, o);
    hold(&env, SHOP2, "O-full", 1_000, PaymentMethod::LumpSum).await;
    hold(
        &env,
        SHOP2,
        "O-part",
        1_000,
        PaymentMethod::Installments { count: 3 },
    )
    .await;
    hold(&env, SHOP2, "O-void", 500, PaymentMethod::Bonus).await;
    assert_eq!(env.available().await, 100_000 - 2_500);

    // Read before anything moved.
    let r: PaymentReceipt = shop2
        .get(&path(merchant_issuer::PATH_AUTHORIZATION, "O-part"))
        .await
        .expect("get");
    assert_eq!(
        (
            r.state.as_str(),
            r.amount,
            r.captured,
            r.payment_method.as_str()
        ),
        ("authorized", 1_000, 0, "installments(3)")
    );
    assert_eq!(r.authorization_id.as_deref(), Some("auth_O-part"));

    // Full capture; a retry gets the very same answer, and moves nothing.
    let cap = path(merchant_issuer::PATH_CAPTURE, "O-full");
    let first = raw(&shop2, &cap, &CaptureRequest { amount: None }).await;
    let again = raw(&shop2, &cap, &CaptureRequest { amount: None }).await;
    assert_eq!(first, again, "a retried capture answers the first answer");
    let r: PaymentReceipt = serde_json::from_slice(&first).expect("receipt");
    assert_eq!((r.state.as_str(), r.captured), ("captured", 1_000));
    assert_eq!(env.available().await, 100_000 - 2_500);
    // Capturing it again for another amount is a conflicting request.
    assert_eq!(capture_code(&shop2, &cap, Some(10)).await, "order_conflict");

    // Partial capture: the rest of the hold is released.
    let r: PaymentReceipt = shop2
        .post(
            &path(merchant_issuer::PATH_CAPTURE, "O-part"),
            &CaptureRequest { amount: Some(600) },
        )
        .await
        .expect("partial capture");
    assert_eq!((r.state.as_str(), r.captured), ("captured", 600));
    assert_eq!(env.available().await, 100_000 - 1_000 - 600 - 500);
    // More than held, or zero, is refused before anything moves.
    hold(&env, SHOP2, "O-big", 100, PaymentMethod::LumpSum).await;
    assert_eq!(
        capture_code(
            &shop2,
            &path(merchant_issuer::PATH_CAPTURE, "O-big"),
            Some(101)
        )
        .await,
        "invalid_transition"
    );
    assert_eq!(
        capture_code(
            &shop2,
            &path(merchant_issuer::PATH_CAPTURE, "O-big"),
            Some(0)
        )
        .await,
        "malformed_request"
    );

    // Refunds: never more than captured, idempotent per refund id.
    let refunds = path(merchant_issuer::PATH_REFUNDS, "O-part");
    let r1 = RefundRequest {
        refund_id: "r-1".into(),
        amount: 300,
    };
    let first = raw(&shop2, &refunds, &r1).await;
    let again = raw(&shop2, &refunds, &r1).await;
    assert_eq!(first, again, "a retried refund answers the first answer");
    let r: PaymentReceipt = serde_json::from_slice(&first).expect("receipt");
    assert_eq!((r.state.as_str(), r.refunded), ("partially_refunded", 300));
    assert_eq!(env.available().await, 100_000 - 1_000 - 300 - 500 - 100);
    // The same refund id for another amount is a conflict, not a second refund.
    assert_eq!(
        refund_code(&shop2, &refunds, "r-1", 200).await,
        "order_conflict"
    );
    // More than what is left of the capture.
    assert_eq!(
        refund_code(&shop2, &refunds, "r-2", 301).await,
        "invalid_transition"
    );
    let r: PaymentReceipt = shop2
        .post(
            &refunds,
            &RefundRequest {
                refund_id: "r-2".into(),
                amount: 300,
            },
        )
        .await
        .expect("second refund");
    assert_eq!((r.state.as_str(), r.refunded), ("refunded", 600));
    assert_eq!(
        refund_code(&shop2, &refunds, "r-3", 1).await,
        "invalid_transition"
    );
    assert_eq!(
        refund_code(&shop2, &refunds, "bad id with spaces", 1).await,
        "malformed_request"
    );

    // Void, replayed; then nothing else is allowed on it.
    let void = path(merchant_issuer::PATH_VOID, "O-void");
    let first = raw(&shop2, &void, &VoidRequest {}).await;
    assert_eq!(first, raw(&shop2, &void, &VoidRequest {}).await);
    let r: PaymentReceipt = serde_json::from_slice(&first).expect("receipt");
    assert_eq!(
        (r.state.as_str(), r.payment_method.as_str()),
        ("voided", "bonus")
    );
    for (p, body) in [
        (
            path(merchant_issuer::PATH_CAPTURE, "O-void"),
            serde_json::json!({ "amount": null }),
        ),
        (
            path(merchant_issuer::PATH_REFUNDS, "O-void"),
            serde_json::json!({ "refund_id": "r-v", "amount": 1 }),
        ),
    ] {
        let r = shop2
            .call::<_, PaymentReceipt>(Method::POST, &p, Some(&body))
            .await;
        assert_eq!(code(r), "invalid_transition", "{p}");
    }
    // Refunding a hold that was never captured, or voiding a captured one.
    assert_eq!(
        refund_code(
            &shop2,
            &path(merchant_issuer::PATH_REFUNDS, "O-big"),
            "r-big",
            1
        )
        .await,
        "invalid_transition"
    );
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &path(merchant_issuer::PATH_VOID, "O-full"),
                    &VoidRequest {}
                )
                .await
        ),
        "invalid_transition"
    );

    // Unknown orders, other merchants' orders, and non-merchants.
    assert_eq!(
        code(
            shop2
                .get::<PaymentReceipt>(&path(merchant_issuer::PATH_AUTHORIZATION, "O-none"))
                .await
        ),
        "unknown_order"
    );
    let shop3 = client(&env, "merchant:shop3.example", &env.issuer());
    assert_eq!(
        code(
            shop3
                .post::<_, PaymentReceipt>(
                    &path(merchant_issuer::PATH_CAPTURE, "O-big"),
                    &CaptureRequest::default()
                )
                .await
        ),
        "unknown_order"
    );
    let alice_at_issuer = client(&env, env.alice_id.as_str(), &env.issuer());
    assert_eq!(
        code(
            alice_at_issuer
                .post::<_, PaymentReceipt>(
                    &path(merchant_issuer::PATH_CAPTURE, "O-big"),
                    &CaptureRequest::default()
                )
                .await
        ),
        "forbidden"
    );
    // Unknown fields are refused.
    assert_eq!(
        code(
            shop2
                .call::<_, PaymentReceipt>(
                    Method::POST,
                    &path(merchant_issuer::PATH_CAPTURE, "O-big"),
                    Some(&serde_json::json!({ "amount": 1, "force": true }))
                )
                .await
        ),
        "malformed_request"
    );

    // The statement: the cards by their last four digits, every order with its method and
    // instalments of what is owed.
    let (_, body) = alice_at_issuer
        .call_raw(Method::GET, cardholder_issuer::PATH_STATEMENT, Vec::new())
        .await
        .expect("statement");
    assert!(
        !common::contains(&body, CARD.as_bytes()),
        "the statement shows the full card number"
    );
    let s: Statement = serde_json::from_slice(&body).expect("statement");
    assert_eq!(s.cardholder, env.alice_id);
    assert_eq!(s.cards.len(), 1);
    assert_eq!(s.cards[0].last4, &CARD[CARD.len() - 4..]);
    assert_eq!(s.cards[0].status, "active");
    assert_eq!(
        (s.cards[0].credit_limit, s.cards[0].available),
        (100_000, env.available().await)
    );
    let entry = |o: &str| {
        s.entries
            .iter()
            .find(|e| e.order_id == o)
            .unwrap_or_else(|| panic!("{o} not on the statement"))
            .clone()
    };
    let full = entry("O-full");
    assert_eq!(
        (
            full.state.as_str(),
            full.payment_method.as_str(),
            full.merchant.as_str()
        ),
        ("captured", "lump_sum", SHOP2)
    );
    assert!(full.instalments.is_empty());
    // O-part: 600 captured, all refunded → nothing owed, no schedule.
    assert_eq!(entry("O-part").state, "refunded");
    assert!(entry("O-part").instalments.is_empty());
    // A fresh order in 3 instalments: 1000 → 334 + 333 + 333 (remainder on the first).
    hold(
        &env,
        SHOP2,
        "O-inst",
        1_000,
        PaymentMethod::Installments { count: 3 },
    )
    .await;
    let s: Statement = alice_at_issuer
        .get(cardholder_issuer::PATH_STATEMENT)
        .await
        .expect("statement");
    let inst = s
        .entries
        .iter()
        .find(|e| e.order_id == "O-inst")
        .expect("O-inst");
    assert_eq!(inst.instalments, vec![334, 333, 333]);
    assert_eq!(inst.state, "authorized");
    // Newest first.
    assert_eq!(s.entries[0].order_id, "O-inst");
    // Only a cardholder has a statement.
    assert_eq!(
        code(
            shop2
                .get::<Statement>(cardholder_issuer::PATH_STATEMENT)
                .await
        ),
        "forbidden"
    );

    let audit = env.local.issuer.store().audit().await.expect("audit");
    assert!(audit.is_clean(), "{audit:?}");
    common::finish(env).await;
}

/// Sends an operator request to `endpoint` with `token` (or none).
async fn operator(
    endpoint: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, Vec<u8>) {
    let mut req = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .request(method, format!("{endpoint}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

async fn delivery(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let token = "op-token-Zq8v3LrT2";
    let carrier_url = env.carrier_operator(token);

    let p = env.buy(false, &Fill::default()).await;
    let order_id = p.form.order_id.clone();
    let tracking = p.outcome.tracking_number.clone().expect("tracking number");
    let advance = operator::advance_path(&tracking);
    let to = |s: &str| Some(serde_json::json!({ "to": s }));

    // Without the token, with a wrong one, and on a service without operator access.
    for t in [None, Some("op-token-wrong")] {
        let (status, body) =
            operator(&carrier_url, Method::POST, &advance, t, to("picked_up")).await;
        assert_eq!(
            (status, common::error_code(&body).as_str()),
            (401, "operator_required")
        );
        let (status, body) = operator(
            &carrier_url,
            Method::GET,
            operator::PATH_ADMIN_SHIPMENTS,
            t,
            None,
        )
        .await;
        assert_eq!(
            (status, common::error_code(&body).as_str()),
            (401, "operator_required")
        );
    }
    env.local
        .carrier
        .guard()
        .operator()
        .set(OperatorAuth::Disabled);
    let (status, body) = operator(
        &carrier_url,
        Method::POST,
        &advance,
        Some(token),
        to("picked_up"),
    )
    .await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (401, "operator_required")
    );
    env.local
        .carrier
        .guard()
        .operator()
        .set(OperatorAuth::token(token));

    // Skipping a step, going back, or an unknown status is refused.
    let step = |s: &'static str| {
        let url = carrier_url.clone();
        let path = advance.clone();
        async move {
            let (status, body) = operator(&url, Method::POST, &path, Some(token), to(s)).await;
            (status, body)
        }
    };
    let (status, body) = step("delivered").await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (409, "invalid_transition")
    );
    let (status, body) = step("accepted").await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (400, "malformed_request")
    );
    let (status, body) = step("lost").await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (400, "malformed_request")
    );
    let (status, body) = operator(
        &carrier_url,
        Method::POST,
        &operator::advance_path("WRF-NONE"),
        Some(token),
        to("picked_up"),
    )
    .await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (404, "unknown_order")
    );

    // The sequence, each move once (a repeated move succeeds without a second event).
    let (status, body) = step("picked_up").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, again) = step("picked_up").await;
    assert_eq!(status, 200);
    let v1: TrackingView = serde_json::from_slice(&body).expect("view");
    let v2: TrackingView = serde_json::from_slice(&again).expect("view");
    assert_eq!(v1, v2);
    assert_eq!(v1.events.len(), 2);
    assert!(v1.proof_of_delivery.is_none() && v1.destination.is_none());
    let (status, _) = operator(
        &carrier_url,
        Method::POST,
        &advance,
        Some(token),
        Some(serde_json::json!({ "to": "in_transit", "note": "depot 7" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = step("delivered").await;
    assert_eq!(status, 200);
    let v: TrackingView = serde_json::from_slice(&body).expect("view");
    assert_eq!(
        v.events
            .iter()
            .map(|e| e.status.as_str())
            .collect::<Vec<_>>(),
        ["accepted", "picked_up", "in_transit", "delivered"]
    );
    assert_eq!(v.events[2].note.as_deref(), Some("depot 7"));
    let proof = v.proof_of_delivery.clone().expect("proof once delivered");
    assert_eq!(v.status, "delivered");
    // After delivery the parcel cannot be returned.
    let (status, body) = step("returned").await;
    assert_eq!(
        (status, common::error_code(&body).as_str()),
        (409, "invalid_transition")
    );
    let (status, _) = step("delivered").await;
    assert_eq!(status, 200, "delivering twice is the same move");

    // The proof: for this order, merchant, carrier and issuer; no address in it.
    assert_eq!(
        (
            &proof.order_id,
            &proof.merchant,
            &proof.carrier,
            &proof.issuer,
            &proof.tracking_number
        ),
        (
            &order_id,
            &env.merchant(),
            &env.carrier(),
            &env.issuer(),
            &tracking
        )
    );
    assert_eq!(
        Some(proof.delivered_at_ms),
        v.events.last().map(|e| e.at_ms)
    );
    let proof_json = serde_json::to_vec(&proof).expect("json");
    for secret in [ADDRESS, ADDRESSEE] {
        assert!(!common::contains(&proof_json, secret.as_bytes()));
    }
    let issuer_keys = env.local.issue(&env.issuer()).expect("issuer keys");
    let digest = env
        .local
        .issuer
        .store()
        .authorization_binding(env.merchant().as_str(), &order_id)
        .await
        .expect("read")
        .and_then(|b| b.header_digest)
        .expect("the issuer recorded the header digest");
    attest::verify_proof_of_delivery(issuer_keys.as_ref(), &proof, &digest).expect("verifies");
    // Over another order's header, the same proof does not verify.
    assert!(attest::verify_proof_of_delivery(issuer_keys.as_ref(), &proof, &[0; 32]).is_err());

    // The operator's list shows the shipment with its issuer.
    let (status, body) = operator(
        &carrier_url,
        Method::GET,
        &format!("{}?limit=10&offset=0", operator::PATH_ADMIN_SHIPMENTS),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let list: ShipmentList = serde_json::from_slice(&body).expect("list");
    let s = list
        .shipments
        .iter()
        .find(|s| s.tracking_number == tracking)
        .expect("listed");
    assert_eq!(
        (s.status.as_str(), s.issuer.as_deref()),
        ("delivered", Some(env.issuer().as_str()))
    );
    assert!(!common::contains(&body, ADDRESS.as_bytes()));

    // The merchant sees status, events and proof, never the destination.
    let merchant_at_carrier = client(&env, env.merchant().as_str(), &env.carrier());
    let (_, body) = merchant_at_carrier
        .call_raw(
            Method::GET,
            &cardholder_carrier::track_path(env.merchant().as_str(), &order_id),
            Vec::new(),
        )
        .await
        .expect("merchant tracking");
    for secret in [ADDRESS, ADDRESSEE] {
        assert!(
            !common::contains(&body, secret.as_bytes()),
            "the carrier showed the merchant the destination"
        );
    }
    let mv: TrackingView = serde_json::from_slice(&body).expect("view");
    assert!(mv.destination.is_none());
    assert_eq!(mv.proof_of_delivery.as_ref(), Some(&proof));
    assert_eq!(mv.events.len(), 4);
    // The cardholder sees the destination it sealed, and the same proof.
    let cv = env
        .alice
        .tracking(&env.carrier(), &env.merchant(), &order_id)
        .await
        .expect("cardholder tracking");
    assert_eq!(
        cv.destination.as_ref().map(|d| d.address.expose()),
        Some(ADDRESS)
    );
    assert_eq!(cv.proof_of_delivery.as_ref(), Some(&proof));

    // A dispute: the merchant shows the issuer the proof; the issuer verifies it with its own
    // key with the carrier. A tampered proof does not verify.
    let merchant_at_issuer = client(&env, env.merchant().as_str(), &env.issuer());
    let dispute = merchant_issuer::order_path(merchant_issuer::PATH_PROOF_OF_DELIVERY, &order_id);
    let a: DisputeAnswer = merchant_at_issuer
        .post(&dispute, &proof)
        .await
        .expect("dispute");
    assert_eq!(
        (a.order_id.as_str(), a.proof_valid, a.delivered_at_ms),
        (order_id.as_str(), true, proof.delivered_at_ms)
    );
    let tampered: [fn(&mut ProofOfDelivery); 3] = [
        |p| p.delivered_at_ms -= 86_400_000,
        |p| p.tracking_number.push('X'),
        |p| p.mac[0] ^= 1,
    ];
    for t in tampered {
        let mut bad = proof.clone();
        t(&mut bad);
        let a: DisputeAnswer = merchant_at_issuer
            .post(&dispute, &bad)
            .await
            .expect("dispute");
        assert!(!a.proof_valid, "a tampered proof verified: {bad:?}");
        assert!(attest::verify_proof_of_delivery(issuer_keys.as_ref(), &bad, &digest).is_err());
    }
    // A proof cannot be moved to another order, or shown by another merchant.
    assert_eq!(
        code(
            merchant_at_issuer
                .post::<_, DisputeAnswer>(
                    &merchant_issuer::order_path(
                        merchant_issuer::PATH_PROOF_OF_DELIVERY,
                        "O-other"
                    ),
                    &proof
                )
                .await
        ),
        "forbidden"
    );
    let shop2 = client(&env, SHOP2, &env.issuer());
    assert_eq!(
        code(shop2.post::<_, DisputeAnswer>(&dispute, &proof).await),
        "forbidden"
    );
    // A proof "from" the merchant itself (its own key, not the carrier's) does not verify.
    let merchant_keys = env.local.issue(&env.merchant()).expect("merchant keys");
    assert!(
        attest::proof_of_delivery(
            merchant_keys.as_ref(),
            &env.issuer(),
            &env.merchant(),
            &order_id,
            &tracking,
            proof.delivered_at_ms,
            &digest,
        )
        .is_err(),
        "only a carrier attests a delivery"
    );

    // Operator read of one shipment and a returned parcel.
    let p2 = env.buy(false, &Fill::default()).await;
    let t2 = p2.outcome.tracking_number.clone().expect("tracking number");
    let (status, body) = operator(
        &carrier_url,
        Method::POST,
        &operator::advance_path(&t2),
        Some(token),
        Some(serde_json::json!({ "to": "returned", "note": "refused at the door" })),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = operator(
        &carrier_url,
        Method::GET,
        &operator::admin_shipment_path(&t2),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let v: TrackingView = serde_json::from_slice(&body).expect("view");
    assert_eq!(v.status, "returned");
    assert!(
        v.proof_of_delivery.is_none(),
        "no proof for a returned parcel"
    );
    common::finish(env).await;
}

/// The HMAC binds every field and the header digest, and the issuer checks it is the
/// addressee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_binds_its_fields() {
    {
        let Some(env) = common::start(Db::Sqlite).await else {
            return;
        };
        let ck = env.local.issue(&env.carrier()).expect("carrier keys");
        let ik = env.local.issue(&env.issuer()).expect("issuer keys");
        let other_issuer = common::id("issuer:other-bank.example");
        let digest = [5u8; 32];
        let ok = attest::proof_of_delivery(
            ck.as_ref(),
            &env.issuer(),
            &env.merchant(),
            &OrderId::from("O-1"),
            "WRF1",
            1_700_000_000_000,
            &digest,
        )
        .expect("proof");
        attest::verify_proof_of_delivery(ik.as_ref(), &ok, &digest).expect("verifies");
        // Another order's header (issue 12.7: the same order id at another merchant, or a
        // re-used id): it does not verify.
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &ok, &[6; 32]).is_err());
        // Addressed to another issuer: this issuer refuses it, and that issuer's key differs.
        let elsewhere = attest::proof_of_delivery(
            ck.as_ref(),
            &other_issuer,
            &env.merchant(),
            &OrderId::from("O-1"),
            "WRF1",
            1_700_000_000_000,
            &digest,
        )
        .expect("proof");
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &elsewhere, &digest).is_err());
        let mut relabelled = elsewhere.clone();
        relabelled.issuer = env.issuer();
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &relabelled, &digest).is_err());
        let mut other_merchant = ok.clone();
        other_merchant.merchant = common::id(SHOP2);
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &other_merchant, &digest).is_err());
        assert_eq!(ok.carrier.role(), Role::Carrier);
        common::finish(env).await;
    }
}

/// Issue 12.1: refund ids are scoped to the order. Before, the issuer keyed them on (merchant,
/// refund id): the second order refunded under "cancel" got `order_conflict`.
async fn refunds_per_order(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let shop2 = client(&env, SHOP2, &env.issuer());
    let path = |t: &str, o: &str| merchant_issuer::order_path(t, o);
    for o in ["O-r1", "O-r2", "O-r3"] {
        hold(&env, SHOP2, o, 900, PaymentMethod::LumpSum).await;
        let _: PaymentReceipt = shop2
            .post(
                &path(merchant_issuer::PATH_CAPTURE, o),
                &CaptureRequest::default(),
            )
            .await
            .expect("capture");
    }
    let cancel = RefundRequest {
        refund_id: "cancel".into(),
        amount: 900,
    };
    for o in ["O-r1", "O-r2"] {
        let r: PaymentReceipt = shop2
            .post(&path(merchant_issuer::PATH_REFUNDS, o), &cancel)
            .await
            .unwrap_or_else(|e| panic!("refund of {o}: {e}"));
        assert_eq!((r.state.as_str(), r.refunded), ("refunded", 900), "{o}");
    }
    // A retry on either answers its first answer.
    let again = raw(
        &shop2,
        &path(merchant_issuer::PATH_REFUNDS, "O-r2"),
        &cancel,
    )
    .await;
    let r: PaymentReceipt = serde_json::from_slice(&again).expect("receipt");
    assert_eq!((r.order_id.as_str(), r.refunded), ("O-r2", 900));
    // Equal partial refunds on one order under distinct ids; never beyond the capture.
    let refunds = path(merchant_issuer::PATH_REFUNDS, "O-r3");
    for (i, id) in ["op-1", "op-2", "op-3"].into_iter().enumerate() {
        let r: PaymentReceipt = shop2
            .post(
                &refunds,
                &RefundRequest {
                    refund_id: id.into(),
                    amount: 300,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(r.refunded, 300 * (i as u64 + 1));
    }
    assert_eq!(
        refund_code(&shop2, &refunds, "op-4", 1).await,
        "invalid_transition"
    );
    let audit = env.local.issuer.store().audit().await.expect("audit");
    assert!(audit.is_clean(), "{audit:?}");
    common::finish(env).await;
}

/// A sealed order of the test cardholder that the deployment's merchant never sees: the test
/// plays the merchant.
async fn sealed(env: &common::Env) -> (OrderForm, Order, SealedOrder) {
    env.sealed_at(&env.merchant(), false).await
}

/// The merchant's side of one order: authorize at the issuer, ship, cancel.
struct AsMerchant<'e> {
    env: &'e common::Env,
    form: OrderForm,
    order: Order,
    sealed: SealedOrder,
    issuer: PeerClient,
    carrier: PeerClient,
}

impl<'e> AsMerchant<'e> {
    async fn new(env: &'e common::Env) -> AsMerchant<'e> {
        let (form, order, sealed) = sealed(env).await;
        AsMerchant {
            env,
            form,
            order,
            sealed,
            issuer: client(env, env.merchant().as_str(), &env.issuer()),
            carrier: client(env, env.merchant().as_str(), &env.carrier()),
        }
    }

    fn order_id(&self) -> String {
        self.sealed.header.order_id.to_string()
    }

    async fn authorize(&self) -> Decision {
        let d: Decision = self
            .issuer
            .post(
                PATH_AUTHORIZE,
                &merchant_issuer::AuthorizeRequest {
                    forwarded: self.sealed.forward(Role::Issuer).expect("forward"),
                    policy: self.form.policy.clone(),
                    amount: self.order.amount,
                    currency: self.order.currency.clone(),
                },
            )
            .await
            .expect("authorize");
        assert!(d.approved(), "{d:?}");
        d
    }

    async fn step<B: serde::Serialize>(&self, template: &str, body: &B) -> PaymentReceipt {
        self.issuer
            .post(
                &merchant_issuer::order_path(template, &self.order_id()),
                body,
            )
            .await
            .expect("payment step")
    }

    async fn ship(&self, d: &Decision) -> Result<ShipmentReceipt, ClientError> {
        self.carrier
            .post(
                PATH_SHIPMENTS,
                &ShipmentRequest {
                    forwarded: self.sealed.forward(Role::Carrier).expect("forward"),
                    policy: self.form.policy.clone(),
                    approval: d.carrier_approval.expect("carrier approval"),
                    delivery: DeliveryRequest {
                        parcel: "1 box, 800 g".into(),
                        pickup: "the shop, weekdays".into(),
                    },
                },
            )
            .await
    }

    async fn cancel(&self) -> Result<ShipmentReceipt, ClientError> {
        self.carrier
            .post(&cancel_path(&self.order_id()), &CancelShipmentRequest {})
            .await
    }

    async fn tracking(&self) -> TrackingView {
        self.carrier
            .get(&cardholder_carrier::track_path(
                self.env.merchant().as_str(),
                &self.order_id(),
            ))
            .await
            .expect("tracking")
    }
}

/// Issue 12.2, 12.8: the carrier ships only while the issuer says the payment stands, a
/// cancelled shipment is never delivered, and a cancel before the shipment request leaves a
/// tombstone that refuses it.
async fn cancel_and_liveness(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let token = "op-token-Zq8v3LrT2";
    let carrier_url = env.carrier_operator(token);
    let advance = |tracking: &str, to: &str| {
        let url = carrier_url.clone();
        let path = operator::advance_path(tracking);
        let body = serde_json::json!({ "to": to });
        async move {
            let (status, body) = operator(&url, Method::POST, &path, Some(token), Some(body)).await;
            (status, common::error_code(&body))
        }
    };

    // 12.8: a voided authorization is not shipped, nor a wholly refunded one.
    let voided = AsMerchant::new(&env).await;
    let d = voided.authorize().await;
    voided
        .step(merchant_issuer::PATH_VOID, &VoidRequest {})
        .await;
    assert_eq!(code(voided.ship(&d).await), "invalid_transition");
    let refunded = AsMerchant::new(&env).await;
    let d = refunded.authorize().await;
    refunded
        .step(merchant_issuer::PATH_CAPTURE, &CaptureRequest::default())
        .await;
    refunded
        .step(
            merchant_issuer::PATH_REFUNDS,
            &RefundRequest {
                refund_id: "cancel".into(),
                amount: refunded.order.amount,
            },
        )
        .await;
    assert_eq!(code(refunded.ship(&d).await), "invalid_transition");
    // Nothing was recorded for either.
    for m in [&voided, &refunded] {
        let s = env
            .local
            .carrier
            .store()
            .get_shipment(env.merchant().as_str(), &OrderId::from(&m.order_id()))
            .await
            .expect("read");
        assert!(s.is_none(), "{s:?}");
    }

    // Only the order's carrier may ask the issuer; the answer is authenticated.
    let live = AsMerchant::new(&env).await;
    let d = live.authorize().await;
    let lp = live_path(env.merchant().as_str(), &live.order_id());
    let at_issuer = client(&env, env.carrier().as_str(), &env.issuer());
    let a: AuthorizationLiveness = at_issuer.get(&lp).await.expect("liveness");
    assert_eq!((a.live, a.state.as_str()), (true, "authorized"));
    let other_carrier = client(&env, "carrier:self-delivery.example", &env.issuer());
    assert_eq!(
        code(other_carrier.get::<AuthorizationLiveness>(&lp).await),
        "unknown_order"
    );
    assert_eq!(
        code(live.issuer.get::<AuthorizationLiveness>(&lp).await),
        "forbidden"
    );

    // 12.2: cancelled before pick-up: final, never delivered; a retried request is refused.
    let r = live.ship(&d).await.expect("shipped while authorized");
    assert_eq!(r.status, "accepted");
    let c = live.cancel().await.expect("cancel");
    assert_eq!(
        (c.status.as_str(), c.tracking_number.as_str()),
        ("cancelled", r.tracking_number.as_str())
    );
    assert_eq!(live.cancel().await.expect("cancel again"), c);
    for to in ["picked_up", "in_transit", "delivered"] {
        assert_eq!(
            advance(&r.tracking_number, to).await,
            (409, "invalid_transition".to_owned()),
            "cancelled → {to}"
        );
    }
    assert_eq!(code(live.ship(&d).await), "invalid_transition");
    assert_eq!(live.tracking().await.status, "cancelled");

    // Cancelled after pick-up: returning, then only returned.
    let back = AsMerchant::new(&env).await;
    let d = back.authorize().await;
    let r = back.ship(&d).await.expect("ship");
    assert_eq!(advance(&r.tracking_number, "picked_up").await.0, 200);
    assert_eq!(back.cancel().await.expect("cancel").status, "returning");
    assert_eq!(back.cancel().await.expect("cancel").status, "returning");
    for to in ["in_transit", "delivered"] {
        assert_eq!(
            advance(&r.tracking_number, to).await,
            (409, "invalid_transition".to_owned()),
            "returning → {to}"
        );
    }
    assert_eq!(advance(&r.tracking_number, "returned").await.0, 200);
    let t = back.tracking().await;
    assert_eq!(
        t.events
            .iter()
            .map(|e| e.status.as_str())
            .collect::<Vec<_>>(),
        ["accepted", "picked_up", "returning", "returned"]
    );
    assert!(t.proof_of_delivery.is_none());
    assert_eq!(back.cancel().await.expect("cancel").status, "returned");

    // A cancel before any shipment request: a tombstone refuses the late request.
    let early = AsMerchant::new(&env).await;
    let d = early.authorize().await;
    let c = early.cancel().await.expect("cancel");
    assert_eq!(c.status, "cancelled");
    assert_eq!(code(early.ship(&d).await), "invalid_transition");
    assert_eq!(early.tracking().await.status, "cancelled");
    // The cardholder sees no destination in a tombstone (it has none).
    let v = env
        .alice
        .tracking(
            &env.carrier(),
            &env.merchant(),
            &OrderId::from(&early.order_id()),
        )
        .await;
    assert!(
        v.is_err(),
        "a tombstone is not the cardholder's shipment: {v:?}"
    );

    // Delivered: the cancel is refused and the shipment stays delivered.
    let done = AsMerchant::new(&env).await;
    let d = done.authorize().await;
    let r = done.ship(&d).await.expect("ship");
    for to in ["picked_up", "in_transit", "delivered"] {
        assert_eq!(advance(&r.tracking_number, to).await.0, 200, "{to}");
    }
    assert_eq!(code(done.cancel().await), "invalid_transition");
    assert_eq!(done.tracking().await.status, "delivered");
    // Only a merchant cancels.
    let alice_at_carrier = client(&env, env.alice_id.as_str(), &env.carrier());
    assert_eq!(
        code(
            alice_at_carrier
                .post::<_, ShipmentReceipt>(
                    &cancel_path(&done.order_id()),
                    &CancelShipmentRequest {}
                )
                .await
        ),
        "forbidden"
    );
    common::finish(env).await;
}

/// Issue 12.7: a dispute accepts a proof of delivery only from the order's own carrier, over
/// the header digest the issuer recorded, and none for an order without carrier. Before, the
/// issuer checked the proof under whatever carrier it named.
async fn disputes_bind_the_carrier(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let carrier_url = env.carrier_operator("op-token-Zq8v3LrT2");
    let m = AsMerchant::new(&env).await;
    let d = m.authorize().await;
    let r = m.ship(&d).await.expect("ship");
    for to in ["picked_up", "in_transit", "delivered"] {
        let (status, _) = operator(
            &carrier_url,
            Method::POST,
            &operator::advance_path(&r.tracking_number),
            Some("op-token-Zq8v3LrT2"),
            Some(serde_json::json!({ "to": to })),
        )
        .await;
        assert_eq!(status, 200);
    }
    let proof = m.tracking().await.proof_of_delivery.expect("proof");
    let dispute =
        merchant_issuer::order_path(merchant_issuer::PATH_PROOF_OF_DELIVERY, &m.order_id());
    let ask = |p: &ProofOfDelivery| {
        let p = p.clone();
        let path = dispute.clone();
        let c = &m.issuer;
        async move {
            let a: DisputeAnswer = c.post(&path, &p).await.expect("dispute");
            a.proof_valid
        }
    };
    assert!(ask(&proof).await, "the order's carrier's proof is accepted");
    // The same delivery "proved" by another carrier (self-delivery, or a colluding one) with
    // its own genuine key: refused.
    let self_delivery = common::id("carrier:shop-self-delivery.example");
    let sk = env.local.issue(&self_delivery).expect("keys");
    let digest = d.header_digest;
    let forged = attest::proof_of_delivery(
        sk.as_ref(),
        &env.issuer(),
        &env.merchant(),
        &OrderId::from(&m.order_id()),
        &r.tracking_number,
        proof.delivered_at_ms,
        &digest,
    )
    .expect("proof");
    let ik = env.local.issue(&env.issuer()).expect("issuer keys");
    attest::verify_proof_of_delivery(ik.as_ref(), &forged, &digest)
        .expect("its MAC is genuine: only the binding refuses it");
    assert!(!ask(&forged).await, "another carrier's proof accepted");

    // An order without a carrier (digital goods): no proof is accepted, even the real
    // carrier's over the recorded digest.
    let shop2 = client(&env, SHOP2, &env.issuer());
    let dig = [4u8; 32];
    hold_bound(
        &env,
        SHOP2,
        "O-digital",
        500,
        PaymentMethod::LumpSum,
        None,
        dig,
    )
    .await;
    let ck = env.local.issue(&env.carrier()).expect("carrier keys");
    let p = attest::proof_of_delivery(
        ck.as_ref(),
        &env.issuer(),
        &common::id(SHOP2),
        &OrderId::from("O-digital"),
        "WRF-NONE",
        proof.delivered_at_ms,
        &dig,
    )
    .expect("proof");
    let a: DisputeAnswer = shop2
        .post(
            &merchant_issuer::order_path(merchant_issuer::PATH_PROOF_OF_DELIVERY, "O-digital"),
            &p,
        )
        .await
        .expect("dispute");
    assert!(
        !a.proof_valid,
        "a proof for an order without carrier accepted"
    );
    // The order's carrier, but over another header (the same order id re-used): refused.
    hold_bound(
        &env,
        SHOP2,
        "O-shipped",
        500,
        PaymentMethod::LumpSum,
        Some(&env.carrier()),
        [1; 32],
    )
    .await;
    let path2 = merchant_issuer::order_path(merchant_issuer::PATH_PROOF_OF_DELIVERY, "O-shipped");
    let mk = |digest: [u8; 32]| {
        attest::proof_of_delivery(
            ck.as_ref(),
            &env.issuer(),
            &common::id(SHOP2),
            &OrderId::from("O-shipped"),
            "WRF-2",
            proof.delivered_at_ms,
            &digest,
        )
        .expect("proof")
    };
    let a: DisputeAnswer = shop2.post(&path2, &mk([2; 32])).await.expect("dispute");
    assert!(!a.proof_valid, "a proof over another header accepted");
    let a: DisputeAnswer = shop2.post(&path2, &mk([1; 32])).await.expect("dispute");
    assert!(a.proof_valid, "the control: the right carrier and header");
    common::finish(env).await;
}

common::on_both_databases!(refunds_per_order: refunds_per_order_sqlite, refunds_per_order_postgres);

common::on_both_databases!(
    cancel_and_liveness:
    cancel_and_liveness_sqlite,
    cancel_and_liveness_postgres
);

common::on_both_databases!(
    disputes_bind_the_carrier:
    disputes_bind_the_carrier_sqlite,
    disputes_bind_the_carrier_postgres
);

common::on_both_databases!(payments: payments_sqlite, payments_postgres);

common::on_both_databases!(delivery: delivery_sqlite, delivery_postgres);
