//! Bad input: malformed JSON, oversized bodies, tampered and truncated parts, unknown parties,
//! a peer that is down. Each gets a JSON error with a stable code, nothing half-written.

mod common;

use common::{Db, Fill};
use reqwest::Method;
use warifu_services::MAX_BODY;
use warifu_services::cardholder::CardholderError;
use warifu_services::directory::{Directory, Entry};
use warifu_services::session::client::{ClientError, PeerClient, http_client};

fn refusal(e: CardholderError) -> (u16, String, bool) {
    match e {
        CardholderError::Client(ClientError::Refused {
            status,
            code,
            verified,
            ..
        }) => (status, code, verified),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unknown_requests_get_stable_codes() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let endpoint = env.local.endpoint(&env.merchant()).expect("endpoint");
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    // Unauthenticated endpoint: not JSON, wrong JSON, too large.
    for (body, status, code) in [
        (b"{not json".to_vec(), 400, "malformed_request"),
        (br#"{"version":1}"#.to_vec(), 400, "malformed_request"),
        (vec![b' '; MAX_BODY + 1], 413, "payload_too_large"),
    ] {
        let r = http
            .post(format!("{endpoint}/v1/handshake/hello"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(common::error_code(&r.bytes().await.expect("body")), code);
    }
    // Unknown route, wrong method, no session.
    for (method, path, status, code) in [
        (Method::GET, "/v1/nothing", 404, "not_found"),
        (Method::DELETE, "/v1/catalog", 405, "method_not_allowed"),
        (Method::POST, "/v1/orders", 401, "authentication_required"),
    ] {
        let r = http
            .request(method, format!("{endpoint}{path}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(common::error_code(&r.bytes().await.expect("body")), code);
    }
    // In a session: malformed JSON is answered (and signed); an oversized body is refused
    // before it is verified.
    let client = PeerClient::new(
        http_client(),
        env.local.issue(&env.alice_id).expect("key"),
        env.merchant(),
        &endpoint,
    );
    match client
        .call_raw(Method::POST, "/v1/orders", b"{\"sealed\": 42}".to_vec())
        .await
    {
        Err(ClientError::Refused {
            status: 400,
            code,
            verified: true,
            ..
        }) => assert_eq!(code, "malformed_request"),
        other => panic!("{other:?}"),
    }
    match client
        .call_raw(Method::POST, "/v1/orders", vec![b'x'; MAX_BODY + 10])
        .await
    {
        Err(ClientError::Refused {
            status: 413, code, ..
        }) => {
            assert_eq!(code, "payload_too_large")
        }
        other => panic!("{other:?}"),
    }
    // An order for an unknown order id.
    let form = env
        .alice
        .order_form(&env.merchant(), false)
        .await
        .expect("form");
    let mut forged_form = form.clone();
    forged_form.order_id = "ord_never_issued".into();
    let order = Fill::default().order(&forged_form).expect("order");
    let sealed = env
        .alice
        .seal(&forged_form, &order, &env.issuer())
        .await
        .expect("seal");
    let (status, code, _) = refusal(env.alice.submit(&sealed).await.expect_err("unknown"));
    assert_eq!((status, code.as_str()), (404, "unknown_order"));
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_truncated_parts_are_refused_opaquely() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    type Mutation = fn(&mut warifu_core::sealed::SealedOrder);
    let cases: [Mutation; 6] = [
        |s| s.parts[0].ciphertext[3] ^= 0x80,
        |s| {
            let n = s.parts[0].ciphertext.len();
            s.parts[0].ciphertext.truncate(n - 7)
        },
        |s| s.parts[0].commitment[0] ^= 1,
        |s| s.header.created_at += 1,
        // Parts the merchant cannot check: the issuer refuses them.
        |s| s.parts[1].ciphertext[0] ^= 1,
        |s| {
            let n = s.parts[1].ciphertext.len();
            s.parts[1].ciphertext.truncate(n - 1)
        },
    ];
    for (i, mutate) in cases.iter().enumerate() {
        let (form, _, mut bad) = env.sealed_at(&env.merchant(), false).await;
        mutate(&mut bad);
        let (status, code, verified) =
            refusal(env.alice.submit(&bad).await.expect_err("tampered accepted"));
        assert_eq!(
            (status, code.as_str()),
            (422, "sealed_part_invalid"),
            "case {i}"
        );
        assert!(verified, "the refusal is authenticated by the merchant");
        // Nothing was held, shipped or left half-way: no order, or a failed one.
        let order = env
            .local
            .merchant
            .store()
            .get_order(&form.order_id)
            .await
            .expect("read");
        assert!(
            order.as_ref().is_none_or(|o| o.state.as_str() == "failed"),
            "case {i}: {order:?}"
        );
        assert!(
            env.local
                .issuer
                .store()
                .get_authorization(env.merchant().as_str(), &form.order_id)
                .await
                .expect("read")
                .is_none_or(|a| !a.approved())
        );
    }
    assert_eq!(env.available().await, 100_000);
    // A genuine bundle still goes through.
    let (_, _, sealed) = env.sealed_at(&env.merchant(), false).await;
    let ok = env.alice.submit(&sealed).await.expect("genuine");
    assert_eq!(ok.state, "captured");
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_issuer_and_a_peer_that_is_down() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let original: Directory = (*env.local.directory.get()).clone();
    let (form, _, sealed) = env.sealed_at(&env.merchant(), false).await;
    // The issuer leaves the directory: the merchant refuses before writing anything.
    let mut without = original.clone();
    assert!(without.remove(&env.issuer()));
    env.local.directory.replace(without).expect("replace");
    let (status, code, _) = refusal(env.alice.submit(&sealed).await.expect_err("unknown"));
    assert_eq!((status, code.as_str()), (422, "unknown_party"));
    let store = env.local.merchant.store();
    assert!(
        store
            .get_order(&form.order_id)
            .await
            .expect("read")
            .is_none()
    );
    // The issuer is listed but down: 502, and the order waits, durable, in `received`.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let mut down = original.clone();
    down.insert(Entry::new(env.issuer(), &dead).expect("entry"));
    env.local.directory.replace(down).expect("replace");
    let (status, code, _) = refusal(env.alice.submit(&sealed).await.expect_err("down"));
    assert_eq!((status, code.as_str()), (502, "peer_unavailable"));
    let waiting = store
        .get_order(&form.order_id)
        .await
        .expect("read")
        .expect("order kept");
    assert_eq!(waiting.state.as_str(), "received");
    assert!(
        env.local
            .issuer
            .store()
            .get_authorization(env.merchant().as_str(), &form.order_id)
            .await
            .expect("read")
            .is_none()
    );
    // Back up: the same bundle resumes the order, once.
    env.local.directory.replace(original).expect("replace");
    let done = env.alice.submit(&sealed).await.expect("resumed");
    assert_eq!(done.state, "captured");
    assert_eq!(env.alice.submit(&sealed).await.expect("again"), done);
    assert_eq!(env.available().await, 100_000 - 5_900);
    // A bundle for another merchant is not for this one.
    let other = common::id("merchant:elsewhere.example");
    let mut d: Directory = (*env.local.directory.get()).clone();
    let endpoint = env.local.endpoint(&env.merchant()).expect("endpoint");
    d.insert(Entry::new(other.clone(), &endpoint).expect("entry"));
    env.local.directory.replace(d).expect("replace");
    let mut elsewhere = form.clone();
    elsewhere.merchant = other;
    elsewhere.order_id = "ord_elsewhere".into();
    // Sealed by hand: the other merchant has no KEM key of its own to ask for (its endpoint
    // is this merchant's), so its part goes to this merchant's key.
    let mut kem = env
        .alice
        .recipient_keys(&form, &env.issuer())
        .await
        .expect("kem keys");
    kem.insert(
        elsewhere.merchant.clone(),
        kem.get(&env.merchant()).expect("merchant's").clone(),
    );
    let sealed = warifu_core::sealed::seal_to(
        &elsewhere,
        &Fill::default().order(&elsewhere).expect("o"),
        &env.issuer(),
        &warifu_core::policy::Policy::patent_default(),
        env.local.issue(&env.alice_id).expect("key").as_ref(),
        &kem,
        warifu_services::clock::Clock::system().now_unix(),
        &mut warifu_core::rand::OsRandom,
    )
    .expect("seal");
    let client = PeerClient::new(
        http_client(),
        env.local.issue(&env.alice_id).expect("key"),
        env.merchant(),
        &endpoint,
    );
    let r: Result<serde_json::Value, _> = client
        .post(
            "/v1/orders",
            &warifu_services::protocol::cardholder_merchant::SubmitRequest { sealed },
        )
        .await;
    assert_eq!(
        r.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
        Some("not_addressed_here")
    );
    common::finish(env).await;
}

#[test]
fn error_messages_never_carry_a_card_number() {
    let m = warifu_services::error::redact_quoted(&format!(
        "invalid value: string \"{}\", expected something",
        common::CARD
    ));
    assert!(!m.contains(common::CARD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_sealed_under_another_scheme_gets_scheme_mismatch() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let (_, _, sealed) = env.sealed_at(&env.merchant(), false).await;
    assert_eq!(sealed.header.scheme, warifu_core::keysource::Scheme::Hybrid);
    for other in [
        warifu_core::keysource::Scheme::Blom,
        warifu_core::keysource::Scheme::Sok,
    ] {
        let mut bad = sealed.clone();
        bad.header.scheme = other;
        let (status, code, verified) = refusal(env.alice.submit(&bad).await.expect_err("accepted"));
        assert_eq!(
            (status, code.as_str()),
            (422, "scheme_mismatch"),
            "{other:?}"
        );
        assert!(verified);
    }
    // The untouched order still goes through.
    env.alice.submit(&sealed).await.expect("submit");
}

/// Issue 13: a bad query string on an operator list route is refused like every other error,
/// as JSON with a stable code (it was a text/plain 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_json_errors() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let merchant = env.local.endpoint(&env.merchant()).expect("endpoint");
    let carrier = env.local.endpoint(&env.carrier()).expect("endpoint");
    for url in [
        format!("{merchant}/v1/admin/orders?limit=abc"),
        format!("{merchant}/v1/admin/orders?limit=-1"),
        format!("{merchant}/v1/admin/orders?limit=1&limit=2"),
        format!("{carrier}/v1/admin/shipments?limit=abc"),
        format!("{carrier}/v1/admin/shipments?offset=-5"),
    ] {
        let r = http.get(&url).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 400, "{url}");
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(kind.starts_with("application/json"), "{url}: {kind}");
        let body = r.bytes().await.expect("body");
        assert_eq!(common::error_code(&body), "malformed_request", "{url}");
    }
    // A good query still lists.
    let r = http
        .get(format!("{merchant}/v1/admin/orders?limit=5"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
}
