//! The issuer's and the carrier's side of the lifecycle over real HTTP, on SQLite and (when
//! reachable) PostgreSQL: capture (full, partial), void and refunds with their first answers
//! replayed, invalid steps refused with `invalid_transition`, the cardholder's statement with
//! instalments and no card number, the carrier's delivery lifecycle driven by its operator,
//! the proof of delivery verified by the issuer (and a tampered one rejected), operator routes
//! closed without the token, and the merchant never shown the destination.

mod common;

use common::{ADDRESS, ADDRESSEE, CARD, Db, EXPIRY, Fill, NAME};
use reqwest::Method;
use warifu_core::order::PaymentMethod;
use warifu_core::{PartyId, Role};
use warifu_services::attest;
use warifu_services::protocol::cardholder_carrier::TrackingView;
use warifu_services::protocol::cardholder_issuer::Statement;
use warifu_services::protocol::merchant_issuer::{
    CaptureRequest, DisputeAnswer, PaymentReceipt, ProofOfDelivery, RefundRequest, VoidRequest,
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

/// Holds `amount` for `order_id` of `merchant` at the issuer, paid by `method`.
async fn hold(
    env: &common::Env,
    merchant: &str,
    order_id: &str,
    amount: u64,
    method: PaymentMethod,
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
            now_ms: warifu_services::now_ms(),
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
    let available = || async {
        env.local
            .issuer
            .store()
            .get_card("card-1")
            .await
            .expect("read")
            .expect("card")
            .available
    };
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
    assert_eq!(available().await, 100_000 - 2_500);

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
    assert_eq!(available().await, 100_000 - 2_500);
    // Capturing it again for another amount is a conflicting request.
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(&cap, &CaptureRequest { amount: Some(10) })
                .await
        ),
        "order_conflict"
    );

    // Partial capture: the rest of the hold is released.
    let r: PaymentReceipt = shop2
        .post(
            &path(merchant_issuer::PATH_CAPTURE, "O-part"),
            &CaptureRequest { amount: Some(600) },
        )
        .await
        .expect("partial capture");
    assert_eq!((r.state.as_str(), r.captured), ("captured", 600));
    assert_eq!(available().await, 100_000 - 1_000 - 600 - 500);
    // More than held, or zero, is refused before anything moves.
    hold(&env, SHOP2, "O-big", 100, PaymentMethod::LumpSum).await;
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &path(merchant_issuer::PATH_CAPTURE, "O-big"),
                    &CaptureRequest { amount: Some(101) }
                )
                .await
        ),
        "invalid_transition"
    );
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &path(merchant_issuer::PATH_CAPTURE, "O-big"),
                    &CaptureRequest { amount: Some(0) }
                )
                .await
        ),
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
    assert_eq!(available().await, 100_000 - 1_000 - 300 - 500 - 100);
    // The same refund id for another amount is a conflict, not a second refund.
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &refunds,
                    &RefundRequest {
                        refund_id: "r-1".into(),
                        amount: 200
                    }
                )
                .await
        ),
        "order_conflict"
    );
    // More than what is left of the capture.
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &refunds,
                    &RefundRequest {
                        refund_id: "r-2".into(),
                        amount: 301
                    }
                )
                .await
        ),
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
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &refunds,
                    &RefundRequest {
                        refund_id: "r-3".into(),
                        amount: 1
                    }
                )
                .await
        ),
        "invalid_transition"
    );
    assert_eq!(
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &refunds,
                    &RefundRequest {
                        refund_id: "bad id with spaces".into(),
                        amount: 1
                    }
                )
                .await
        ),
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
        code(
            shop2
                .post::<_, PaymentReceipt>(
                    &path(merchant_issuer::PATH_REFUNDS, "O-big"),
                    &RefundRequest {
                        refund_id: "r-big".into(),
                        amount: 1
                    }
                )
                .await
        ),
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
        (100_000, available().await)
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
    let mut req = reqwest::Client::new().request(method, format!("{endpoint}{path}"));
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
    env.local
        .carrier
        .guard()
        .operator()
        .set(OperatorAuth::token(token));
    let carrier_url = env.local.endpoint(&env.carrier()).expect("carrier");

    let p = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| {
            Fill::default().order(f)
        })
        .await
        .expect("purchase");
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
    attest::verify_proof_of_delivery(issuer_keys.as_ref(), &proof).expect("verifies");

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
        assert!(attest::verify_proof_of_delivery(issuer_keys.as_ref(), &bad).is_err());
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
        )
        .is_err(),
        "only a carrier attests a delivery"
    );

    // Operator read of one shipment and a returned parcel.
    let p2 = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| {
            Fill::default().order(f)
        })
        .await
        .expect("second purchase");
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

/// The HMAC binds every field, and the issuer checks it is the addressee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_binds_its_fields() {
    {
        let Some(env) = common::start(Db::Sqlite).await else {
            return;
        };
        let ck = env.local.issue(&env.carrier()).expect("carrier keys");
        let ik = env.local.issue(&env.issuer()).expect("issuer keys");
        let other_issuer = common::id("issuer:other-bank.example");
        let ok = attest::proof_of_delivery(
            ck.as_ref(),
            &env.issuer(),
            &env.merchant(),
            "O-1",
            "WRF1",
            1_700_000_000_000,
        )
        .expect("proof");
        attest::verify_proof_of_delivery(ik.as_ref(), &ok).expect("verifies");
        // Addressed to another issuer: this issuer refuses it, and that issuer's key differs.
        let elsewhere = attest::proof_of_delivery(
            ck.as_ref(),
            &other_issuer,
            &env.merchant(),
            "O-1",
            "WRF1",
            1_700_000_000_000,
        )
        .expect("proof");
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &elsewhere).is_err());
        let mut relabelled = elsewhere.clone();
        relabelled.issuer = env.issuer();
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &relabelled).is_err());
        let mut other_merchant = ok.clone();
        other_merchant.merchant = common::id(SHOP2);
        assert!(attest::verify_proof_of_delivery(ik.as_ref(), &other_merchant).is_err());
        assert_eq!(ok.carrier.role(), Role::Carrier);
        common::finish(env).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_sqlite() {
    payments(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_postgres() {
    payments(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_sqlite() {
    delivery(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_postgres() {
    delivery(Db::Postgres).await;
}
