//! The spoofing suite, after the patent's demonstration under attack (【0047】): every case
//! must fail safely, with nothing sent to an impostor and nothing half-written.

mod common;

use std::sync::Arc;

use common::{Db, Fill};
use reqwest::Method;
use warifu_core::PartyId;
use warifu_core::blom::Master;
use warifu_core::keysource::KeySource;
use warifu_core::rand::OsRandom;
use warifu_core::sealed::SealedOrder;
use warifu_core::session::Confirm;
use warifu_services::cardholder::{Cardholder, CardholderError};
use warifu_services::directory::{Directory, Entry, SharedDirectory};
use warifu_services::merchant::{self, MerchantConfig, MerchantState};
use warifu_services::protocol::merchant_carrier::{DeliveryRequest, ShipmentRequest};
use warifu_services::protocol::merchant_issuer::{AuthorizeRequest, Decision};
use warifu_services::session::client::{ClientError, PeerClient, http_client};
use warifu_store::{Party, Store};

/// A key for `id` from a master the real key center never saw.
fn forged_key(id: &PartyId) -> Arc<dyn KeySource> {
    let other = Master::generate(common::K, &mut OsRandom).expect("master");
    Arc::new(other.personal_key(id))
}

/// Starts an impostor merchant holding `keys`, with its own empty database; returns its
/// endpoint, its state and its shutdown.
async fn impostor(
    env: &common::Env,
    keys: Arc<dyn KeySource>,
) -> (String, Arc<MerchantState>, tokio::sync::oneshot::Sender<()>) {
    let dir = env.tmp.path().join("impostor");
    let store = Store::open_party(&dir, Party::Merchant)
        .await
        .expect("impostor store");
    let state = MerchantState::new(
        keys,
        MerchantConfig::example(env.issuer(), Some(env.carrier())),
        Arc::new(store),
        env.local.directory.clone(),
        warifu_services::clock::Clock::system(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(merchant::run(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    (url, state, tx)
}

/// The real directory with `merchant` pointing at `endpoint` (a poisoned directory).
fn poisoned(env: &common::Env, merchant: &PartyId, endpoint: &str) -> Arc<SharedDirectory> {
    let mut d: Directory = (*env.local.directory.get()).clone();
    d.insert(Entry::new(merchant.clone(), endpoint).expect("entry"));
    Arc::new(SharedDirectory::fixed(d))
}

fn assert_not_authentic(r: Result<impl std::fmt::Debug, CardholderError>) {
    match r {
        Err(CardholderError::Client(ClientError::NotAuthentic { .. })) => {}
        other => panic!("expected the impostor to fail the handshake, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_merchant_with_a_made_up_identifier_gets_nothing() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let fake_id = common::id("merchant:sh0p.example");
    // Not in the directory: the cardholder does not even connect.
    let r = env
        .alice
        .purchase(&fake_id, &env.issuer(), false, |f| Fill::default().order(f))
        .await;
    assert!(
        matches!(r, Err(CardholderError::Directory(_))),
        "{:?}",
        r.err()
    );
    // Listed by a poisoned directory, with a key from another master: the handshake fails
    // before any order data leaves the cardholder.
    let (url, fake, stop) = impostor(&env, forged_key(&fake_id)).await;
    let alice = Cardholder::new(
        env.local.issue(&env.alice_id).expect("key"),
        poisoned(&env, &fake_id, &url),
    );
    assert_not_authentic(
        alice
            .purchase(&fake_id, &env.issuer(), false, |f| Fill::default().order(f))
            .await,
    );
    assert_eq!(
        fake.store()
            .list_orders(&Default::default())
            .await
            .expect("list")
            .len(),
        0
    );
    // The fake merchant cannot reach the issuer either: its handshake does not confirm.
    let to_issuer = PeerClient::new(
        http_client(),
        forged_key(&fake_id),
        env.issuer(),
        &env.local.endpoint(&env.issuer()).expect("issuer endpoint"),
    );
    match to_issuer.handshake().await {
        Err(ClientError::NotAuthentic { .. }) | Err(ClientError::Refused { .. }) => {}
        other => panic!("fake merchant reached the issuer: {other:?}"),
    }
    let _ = stop.send(());
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_identifier_without_its_key_gets_nothing() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let shop = env.merchant();
    let (url, fake, stop) = impostor(&env, forged_key(&shop)).await;
    let alice = Cardholder::new(
        env.local.issue(&env.alice_id).expect("key"),
        poisoned(&env, &shop, &url),
    );
    // The cardholder verifies the merchant first: no form, no sealed order reaches the fake.
    assert_not_authentic(alice.order_form(&shop, false).await);
    assert_eq!(
        fake.store()
            .list_orders(&Default::default())
            .await
            .expect("list")
            .len(),
        0
    );
    assert_eq!(fake.sessions(), 0, "the impostor got a session");
    // Impersonating the merchant to the issuer and to the carrier fails the same way: the
    // confirmation needs the real merchant's key.
    for peer in [env.issuer(), env.carrier()] {
        let client = PeerClient::new(
            http_client(),
            forged_key(&shop),
            peer.clone(),
            &env.local.endpoint(&peer).expect("endpoint"),
        );
        match client.handshake().await {
            Err(ClientError::NotAuthentic { .. }) => {}
            other => panic!("impersonation of {shop} accepted by {peer}: {other:?}"),
        }
    }
    // A genuine key of another merchant authenticates as that merchant only, and may not
    // forward an order of the real shop.
    let rogue_id = common::id("merchant:rogue.example");
    let p = env
        .alice
        .purchase(&shop, &env.issuer(), true, |f| Fill::default().order(f))
        .await
        .expect("purchase");
    let rogue = PeerClient::new(
        http_client(),
        env.local.issue(&rogue_id).expect("rogue key"),
        env.issuer(),
        &env.local.endpoint(&env.issuer()).expect("endpoint"),
    );
    let r: Result<Decision, _> = rogue
        .post(
            "/v1/authorizations",
            &AuthorizeRequest {
                forwarded: p
                    .sealed
                    .forward(warifu_core::Role::Issuer)
                    .expect("forward"),
                policy: p.form.policy.clone(),
                amount: p.outcome.decision.as_ref().expect("d").amount,
                currency: "JPY".into(),
            },
        )
        .await;
    assert_eq!(
        r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
        Some("forbidden")
    );
    let _ = stop.send(());
    common::finish(env).await;
}

async fn sealed_pair(env: &common::Env) -> (SealedOrder, SealedOrder) {
    let mut out = Vec::new();
    for _ in 0..2 {
        out.push(env.sealed_at(&env.merchant(), false).await.2);
    }
    let b = out.pop().expect("b");
    (out.pop().expect("a"), b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_swapping_parts_between_two_orders_is_refused() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let (a, b) = sealed_pair(&env).await;
    // Swap the issuer parts (and, separately, the carrier parts) between A and B.
    for index in [1usize, 2] {
        let mut spliced = a.clone();
        spliced.parts[index] = b.parts[index].clone();
        let err = env
            .alice
            .submit(&spliced)
            .await
            .expect_err("spliced accepted");
        assert_eq!(err_code(&err), "sealed_part_invalid", "{err}");
    }
    // B's parts under A's header.
    let mut spliced = b.clone();
    spliced.header = a.header.clone();
    let err = env
        .alice
        .submit(&spliced)
        .await
        .expect_err("spliced accepted");
    assert_eq!(err_code(&err), "sealed_part_invalid", "{err}");
    // Nothing was recorded for A.
    assert!(
        env.local
            .merchant
            .store()
            .get_order(&a.header.order_id)
            .await
            .expect("read")
            .is_none()
    );
    // A merchant in the middle splicing at the issuer: A's header with B's issuer part.
    let to_issuer = merchant_client(&env, env.issuer());
    let mut fwd = a.forward(warifu_core::Role::Issuer).expect("forward");
    fwd.part = b.forward(warifu_core::Role::Issuer).expect("forward").part;
    let r: Result<Decision, _> = to_issuer
        .post(
            "/v1/authorizations",
            &AuthorizeRequest {
                forwarded: fwd,
                policy: warifu_core::policy::Policy::patent_default(),
                amount: 5900,
                currency: "JPY".into(),
            },
        )
        .await;
    assert_eq!(
        r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
        Some("sealed_part_invalid")
    );
    // A tampered body in transit breaks the session MAC.
    let (endpoint, mut session) = env.alice_session().await;
    let body = serde_json::to_vec(&serde_json::json!({ "sealed": a })).expect("json");
    let (auth, _) = common::seal(&mut session, &Method::POST, "/v1/orders", &body);
    let other = serde_json::to_vec(&serde_json::json!({ "sealed": b })).expect("json");
    let (_, swapped) = common::seal(&mut session, &Method::POST, "/v1/orders", &other);
    let (status, _, resp) =
        common::send_with(&auth, &endpoint, Method::POST, "/v1/orders", swapped).await;
    assert_eq!(status.as_u16(), 401);
    assert_eq!(common::error_code(&resp), "authentication_failed");
    // The genuine orders still go through.
    for s in [&a, &b] {
        let o = env.alice.submit(s).await.expect("genuine order");
        assert_eq!(o.state, "captured");
    }
    common::finish(env).await;
}

fn err_code(e: &CardholderError) -> String {
    match e {
        CardholderError::Client(c) => c.code().unwrap_or("<no code>").to_owned(),
        other => format!("<{other}>"),
    }
}

fn merchant_client(env: &common::Env, peer: PartyId) -> PeerClient {
    PeerClient::new(
        http_client(),
        env.local.issue(&env.merchant()).expect("merchant key"),
        peer.clone(),
        &env.local.endpoint(&peer).expect("endpoint"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_submission_is_never_processed_twice() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let (a, b) = sealed_pair(&env).await;
    let first = env.alice.submit(&a).await.expect("first");
    assert_eq!(first.state, "captured");
    // The same bundle again, in the same session and in a new one: the first answer.
    assert_eq!(env.alice.submit(&a).await.expect("again"), first);
    let other_client = env.local.cardholder(&env.alice_id).expect("client");
    assert_eq!(other_client.submit(&a).await.expect("new session"), first);
    // The same HTTP message replayed byte for byte: refused by the session.
    let (endpoint, mut session) = env.alice_session().await;
    let body = serde_json::to_vec(&serde_json::json!({ "sealed": a })).expect("json");
    let (auth, record, status, _, _) =
        common::signed(&mut session, &endpoint, Method::POST, "/v1/orders", body).await;
    assert_eq!(status.as_u16(), 200);
    let (status, _, resp) =
        common::send_with(&auth, &endpoint, Method::POST, "/v1/orders", record).await;
    assert_eq!(status.as_u16(), 409);
    assert_eq!(common::error_code(&resp), "replay");
    // B's parts relabelled with A's order id: refused (A is answered already, and the parts
    // would not open under the new header anyway).
    let mut relabelled = b.clone();
    relabelled.header.order_id = a.header.order_id.clone();
    let err = env.alice.submit(&relabelled).await.expect_err("relabelled");
    assert!(
        ["order_conflict", "sealed_part_invalid"].contains(&err_code(&err).as_str()),
        "{err}"
    );
    // A genuinely different bundle sealed on A's form: a conflict, never a second order.
    let form: warifu_core::order::OrderForm = {
        let rec = env
            .local
            .merchant
            .store()
            .get_order_form(&a.header.order_id)
            .await
            .expect("read")
            .expect("form");
        serde_json::from_str(&rec.form_json).expect("form json")
    };
    let more = Fill {
        picks: vec![("TEA-001", 5)],
        ..Fill::default()
    };
    let other = env
        .alice
        .seal(&form, &more.order(&form).expect("order"), &env.issuer())
        .await
        .expect("seal");
    let err = env.alice.submit(&other).await.expect_err("conflict");
    assert_eq!(err_code(&err), "order_conflict", "{err}");
    // One hold, one shipment.
    let auths = env
        .local
        .issuer
        .store()
        .authorizations_for_cardholder(env.alice_id.as_str())
        .await
        .expect("auths");
    assert_eq!(auths.len(), 1);
    assert_eq!(env.available().await, 100_000 - 5_900);
    assert_eq!(env.shipments().await.len(), 1);
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflected_handshake_messages_are_refused() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let endpoint = env.local.endpoint(&env.merchant()).expect("endpoint");
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let alice_keys = env.local.issue(&env.alice_id).expect("key");
    let (_, hello, challenge) =
        common::raw_hello(alice_keys.as_ref(), &env.merchant(), &endpoint).await;
    // The responder's own proof sent back as the initiator's.
    let reflected = Confirm {
        nonce_r: challenge.nonce_r,
        mac: challenge.mac,
    };
    let r = http
        .post(format!("{endpoint}/v1/handshake/confirm"))
        .json(&reflected)
        .send()
        .await
        .expect("confirm");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        common::error_code(&r.bytes().await.expect("body")),
        "authentication_failed"
    );
    // A hello naming the merchant as its own initiator (a reflection of its identity).
    let mut mirror = hello.clone();
    mirror.initiator = env.merchant();
    let r = http
        .post(format!("{endpoint}/v1/handshake/hello"))
        .json(&mirror)
        .send()
        .await
        .expect("hello");
    assert!(r.status().is_client_error(), "{}", r.status());
    // A signed response presented back as a request.
    let mut session = common::raw_handshake(alice_keys.as_ref(), &env.merchant(), &endpoint).await;
    let (_, _, status, headers, answer) = common::signed(
        &mut session,
        &endpoint,
        Method::POST,
        "/v1/order-forms",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status.as_u16(), 200);
    let response_auth =
        warifu_services::session::headers::read_auth(&axum_headers(&headers)).expect("signed");
    let (status, _, body) = common::send_with(
        &response_auth,
        &endpoint,
        Method::POST,
        "/v1/order-forms",
        answer,
    )
    .await;
    assert_eq!(status.as_u16(), 401, "{}", String::from_utf8_lossy(&body));
    common::finish(env).await;
}

fn axum_headers(h: &reqwest::header::HeaderMap) -> axum::http::HeaderMap {
    let mut out = axum::http::HeaderMap::new();
    for (k, v) in h {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()),
            axum::http::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            out.insert(k, v);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_altering_the_amount_cannot_get_it_authorized() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let (a, _) = sealed_pair(&env).await;
    let to_issuer = merchant_client(&env, env.issuer());
    let fwd = a.forward(warifu_core::Role::Issuer).expect("forward");
    let policy = warifu_core::policy::Policy::patent_default();
    let request = |forwarded, amount| AuthorizeRequest {
        forwarded,
        policy: policy.clone(),
        amount,
        currency: "JPY".into(),
    };
    // A higher amount in the request: refused, nothing held.
    let r: Result<Decision, _> = to_issuer
        .post("/v1/authorizations", &request(fwd.clone(), 59_000))
        .await;
    assert_eq!(
        r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
        Some("amount_mismatch")
    );
    // The sealed amount rewritten inside the ciphertext: the part no longer opens.
    let mut tampered = fwd.clone();
    let n = tampered.part.ciphertext.len();
    tampered.part.ciphertext[n / 2] ^= 0x01;
    let r: Result<Decision, _> = to_issuer
        .post("/v1/authorizations", &request(tampered, 5_900))
        .await;
    assert_eq!(
        r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
        Some("sealed_part_invalid")
    );
    let store = env.local.issuer.store();
    assert!(
        store
            .get_authorization(env.merchant().as_str(), &a.header.order_id)
            .await
            .expect("read")
            .is_none(),
        "a refused request left an authorization"
    );
    // What the cardholder sealed is what gets authorized.
    let d: Decision = to_issuer
        .post("/v1/authorizations", &request(fwd, 5_900))
        .await
        .expect("honest request");
    assert!(d.approved() && d.amount == 5_900);
    let card = store.get_card("card-1").await.expect("r").expect("card");
    assert_eq!(card.available, 100_000 - 5_900);
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_carrier_refuses_an_order_the_issuer_declined() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    // An approved order A (its approval is genuine) and a declined order D (wrong name).
    let approved = env.buy(false, &Fill::default()).await;
    assert_eq!(approved.outcome.state, "captured");
    let wrong = Fill {
        name: "Someone Else".into(),
        ..Fill::default()
    };
    let declined = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| wrong.order(f))
        .await
        .expect("declined");
    assert_eq!(declined.outcome.state, "declined");
    // The issuer's decision for A, as the merchant received it (with the carrier's MAC).
    let to_issuer = merchant_client(&env, env.issuer());
    let a_decision: Decision = to_issuer
        .post(
            "/v1/authorizations",
            &AuthorizeRequest {
                forwarded: approved
                    .sealed
                    .forward(warifu_core::Role::Issuer)
                    .expect("f"),
                policy: approved.form.policy.clone(),
                amount: 5_900,
                currency: "JPY".into(),
            },
        )
        .await
        .expect("idempotent decision");
    let a_approval = a_decision
        .carrier_approval
        .expect("approval for the carrier");
    let to_carrier = merchant_client(&env, env.carrier());
    for approval in [[0u8; 32], a_approval] {
        let r: Result<serde_json::Value, _> = to_carrier
            .post(
                "/v1/shipments",
                &ShipmentRequest {
                    forwarded: declined
                        .sealed
                        .forward(warifu_core::Role::Carrier)
                        .expect("f"),
                    policy: declined.form.policy.clone(),
                    approval,
                    delivery: DeliveryRequest {
                        parcel: "box".into(),
                        pickup: "shop".into(),
                    },
                },
            )
            .await;
        assert_eq!(
            r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
            Some("authorization_required")
        );
    }
    assert!(
        env.local
            .carrier
            .store()
            .get_shipment(env.merchant().as_str(), &declined.form.order_id)
            .await
            .expect("read")
            .is_none()
    );
    common::finish(env).await;
}
