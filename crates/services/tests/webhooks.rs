//! Merchant webhooks (issue 16) against real receivers: an HTTP server in the test that
//! answers 500s, then hangs past the timeout, then 200; the endpoint down and the retry
//! window over (failed, then replayed in order); and `examples/shop_backend.py` run as a
//! real process that verifies signatures (a wrong secret, an altered body and a replayed old
//! request refused). Nothing is lost, nothing is reordered within an order, and duplicates
//! carry the same event id and body. Retry schedules are injected (milliseconds), no sleeps
//! of real hours.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warifu_core::OrderId;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{Db, Fill};
use serde_json::Value;
use warifu_services::merchant::webhooks::WebhookOptions;
use warifu_services::protocol::operator::{
    PATH_WEBHOOK_DELIVERIES, PATH_WEBHOOK_ENDPOINTS, PATH_WEBHOOK_REPLAY, WebhookDeliveryList,
    WebhookEndpointCreated,
};
use warifu_services::protocol::webhooks::{SIGNATURE_HEADER, sign, verify};
use warifu_services::session::operator::OperatorAuth;
use warifu_store::{DeliveryFilter, DeliveryStatus, ShipmentStatus};

/// What the test receiver does with the n-th request (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Fail,
    Hang,
    Ok,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    event_id: String,
    order_id: String,
    event_type: String,
    body: Vec<u8>,
    answered: Answer,
    verified: bool,
}

#[derive(Default)]
struct Receiver {
    script: Vec<Answer>,
    then: Option<Answer>,
    secret: String,
    got: Vec<Got>,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(
    axum::extract::State(r): axum::extract::State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let answer = {
        let mut r = r.lock().expect("lock");
        let n = r.got.len();
        let answer = r.script.get(n).copied().or(r.then).unwrap_or(Answer::Ok);
        let sig = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let verified = verify(
            &r.secret,
            sig,
            &body,
            warifu_services::clock::Clock::system().now_ms() / 1000,
            300,
        )
        .is_ok();
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        r.got.push(Got {
            event_id: v["id"].as_str().unwrap_or("").to_owned(),
            order_id: v["data"]["order_id"].as_str().unwrap_or("").to_owned(),
            event_type: v["type"].as_str().unwrap_or("").to_owned(),
            body: body.to_vec(),
            answered: answer,
            verified,
        });
        answer
    };
    match answer {
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK
        }
        Answer::Ok => StatusCode::OK,
    }
}

/// Starts the receiver; its URL.
async fn start_receiver(r: Shared) -> String {
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(r);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}/hooks")
}

fn merchant_url(env: &common::Env) -> String {
    env.local
        .endpoint(&env.merchant())
        .expect("merchant endpoint")
}

async fn add_endpoint(env: &common::Env, id: &str, url: &str) -> String {
    let r = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{}{PATH_WEBHOOK_ENDPOINTS}", merchant_url(env)))
        .json(&serde_json::json!({ "endpoint_id": id, "url": url }))
        .send()
        .await
        .expect("add endpoint");
    assert_eq!(r.status().as_u16(), 200);
    let c: WebhookEndpointCreated = r.json().await.expect("created");
    let secret = c.secret.expect("the secret, once");
    assert!(secret.starts_with("whsec_"));
    secret
}

fn opts() -> WebhookOptions {
    WebhookOptions {
        poll_interval: Duration::from_millis(20),
        timeout: Duration::from_millis(400),
        batch: 32,
        backoff_base: Duration::from_millis(30),
        backoff_max: Duration::from_millis(200),
        retry_for: Duration::from_secs(120),
    }
}

/// Waits until no delivery is pending (or `deadline`).
async fn settle(env: &common::Env, deadline: Duration) -> Vec<warifu_store::WebhookDelivery> {
    let store = env.local.merchant.store();
    let start = Instant::now();
    loop {
        let all = store
            .webhook_deliveries(&DeliveryFilter {
                limit: Some(10_000),
                ..DeliveryFilter::default()
            })
            .await
            .expect("deliveries");
        if all.iter().all(|d| d.status != DeliveryStatus::Pending) || start.elapsed() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn buy(env: &common::Env, digital: bool, fill: Fill) -> String {
    env.buy(digital, &fill).await.outcome.order_id.to_string()
}

async fn carrier_advance(env: &common::Env, tracking: &str, to: ShipmentStatus) {
    let endpoint = env.local.endpoint(&env.carrier()).expect("carrier");
    let r = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!(
            "{endpoint}{}",
            warifu_services::protocol::operator::advance_path(tracking)
        ))
        .json(&serde_json::json!({ "to": to.as_str() }))
        .send()
        .await
        .expect("advance");
    assert_eq!(r.status().as_u16(), 200, "advance to {to}");
}

/// Every order's events as the store recorded them, in order.
fn recorded(all: &[warifu_store::WebhookDelivery]) -> BTreeMap<String, Vec<(i64, String, String)>> {
    let mut by: BTreeMap<String, Vec<(i64, String, String)>> = BTreeMap::new();
    for d in all {
        by.entry(d.event.order_id.to_string()).or_default().push((
            d.event.seq,
            d.event.event_id.clone(),
            d.event.event_type.clone(),
        ));
    }
    for v in by.values_mut() {
        v.sort();
    }
    by
}

async fn fails_times_out_and_recovers(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    env.local
        .start_worker(warifu_services::merchant::worker::WorkerOptions::fast())
        .await;
    env.local.start_webhooks(opts()).await;
    let r: Shared = Arc::new(Mutex::new(Receiver {
        // 500, 500, 500, then two hangs past the 400 ms timeout, 500 again, then 200s.
        script: vec![
            Answer::Fail,
            Answer::Fail,
            Answer::Fail,
            Answer::Hang,
            Answer::Hang,
            Answer::Fail,
        ],
        then: Some(Answer::Ok),
        ..Receiver::default()
    }));
    let url = start_receiver(r.clone()).await;
    let secret = add_endpoint(&env, "shop", &url).await;
    r.lock().expect("lock").secret = secret.clone();

    // Physical orders (authorized, shipped, captured), one delivered; a digital one
    // cancelled after capture (captured, cancelled, refunded); a declined one; a partial
    // operator refund.
    let shipped = buy(&env, false, Fill::default()).await;
    let delivered = buy(&env, false, Fill::default()).await;
    let cancelled = buy(&env, true, Fill::default()).await;
    let declined = buy(
        &env,
        false,
        Fill {
            name: "Somebody Else".into(),
            ..Fill::default()
        },
    )
    .await;
    let refunded = buy(&env, false, Fill::default()).await;
    env.alice
        .cancel(&env.merchant(), &OrderId::from(&cancelled))
        .await
        .expect("cancel");
    let m = merchant_url(&env);
    let r2 = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{m}/v1/admin/orders/{refunded}/refund"))
        .json(&serde_json::json!({ "amount": 100 }))
        .send()
        .await
        .expect("refund");
    assert_eq!(r2.status().as_u16(), 200);
    let tracking = env
        .local
        .merchant
        .store()
        .get_order(&OrderId::from(&delivered))
        .await
        .expect("read")
        .expect("order")
        .tracking_number
        .expect("tracking");
    for to in [
        ShipmentStatus::PickedUp,
        ShipmentStatus::InTransit,
        ShipmentStatus::Delivered,
    ] {
        carrier_advance(&env, &tracking, to).await;
    }
    // The worker learns of the delivery by tracking.
    let start = Instant::now();
    while env
        .local
        .merchant
        .store()
        .get_order(&OrderId::from(&delivered))
        .await
        .expect("read")
        .expect("order")
        .state
        != warifu_store::OrderState::Delivered
    {
        assert!(start.elapsed() < Duration::from_secs(30), "not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let all = settle(&env, Duration::from_secs(60)).await;
    assert!(
        all.iter().all(|d| d.status == DeliveryStatus::Delivered),
        "{all:#?}"
    );
    let events = recorded(&all);
    let types = |o: &str| -> Vec<&str> { events[o].iter().map(|(_, _, t)| t.as_str()).collect() };
    assert_eq!(
        types(&shipped),
        ["order.authorized", "order.shipped", "order.captured"]
    );
    assert_eq!(
        types(&delivered),
        [
            "order.authorized",
            "order.shipped",
            "order.captured",
            "order.delivered"
        ]
    );
    assert_eq!(
        types(&cancelled),
        [
            "order.authorized",
            "order.captured",
            "order.cancelled",
            "order.refunded"
        ]
    );
    assert_eq!(types(&declined), ["order.declined"]);
    assert_eq!(
        types(&refunded),
        [
            "order.authorized",
            "order.shipped",
            "order.captured",
            "order.refunded"
        ]
    );

    let got = r.lock().expect("lock").got.clone();
    // The receiver saw failures and timeouts first.
    assert!(got.iter().filter(|g| g.answered == Answer::Fail).count() >= 4);
    assert!(got.iter().filter(|g| g.answered == Answer::Hang).count() >= 2);
    for g in &got {
        assert!(g.verified, "a request that does not verify: {g:?}");
        for secret_value in [common::CARD, common::ADDRESS, common::ADDRESSEE] {
            assert!(!common::contains(&g.body, secret_value.as_bytes()));
        }
    }
    for (order, evs) in &events {
        // Nothing lost: every event acknowledged once at least (a hang answers 200 too late,
        // so it counts as not acknowledged).
        let acked: Vec<&str> = evs
            .iter()
            .map(|(_, id, _)| id.as_str())
            .filter(|id| {
                got.iter()
                    .any(|g| g.event_id == *id && g.answered == Answer::Ok)
            })
            .collect();
        assert_eq!(acked.len(), evs.len(), "order {order}: lost events");
        // Nothing reordered: event k+1 of the order first arrives after event k was
        // acknowledged.
        for w in evs.windows(2) {
            let ack_prev = got
                .iter()
                .position(|g| g.event_id == w[0].1 && g.answered == Answer::Ok)
                .expect("acked");
            let first_next = got.iter().position(|g| g.event_id == w[1].1).expect("sent");
            assert!(
                first_next > ack_prev,
                "order {order}: {} sent before {} was acknowledged",
                w[1].2,
                w[0].2
            );
        }
        // Duplicates carry the same id and the same body.
        for (_, id, kind) in evs {
            let copies: Vec<&Got> = got.iter().filter(|g| g.event_id == *id).collect();
            assert!(copies.iter().all(|g| g.body == copies[0].body));
            assert!(
                copies
                    .iter()
                    .all(|g| g.order_id == *order && g.event_type == *kind)
            );
        }
    }
    // The partial refund's event carries the amounts.
    let last = got
        .iter()
        .rev()
        .find(|g| g.order_id == refunded && g.event_type == "order.refunded")
        .expect("refund event");
    let v: Value = serde_json::from_slice(&last.body).expect("json");
    assert_eq!(v["data"]["refunded"], 100);
    assert_eq!(v["data"]["state"], "captured");

    // The delivery log shows the failures with their status, the timeouts, the latencies.
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let list: WebhookDeliveryList = http
        .get(format!("{m}{PATH_WEBHOOK_DELIVERIES}?limit=1000"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let log: Vec<_> = list.deliveries.iter().flat_map(|d| d.log.iter()).collect();
    assert!(log.iter().any(|a| a.http_status == Some(500)));
    assert!(
        log.iter()
            .any(|a| a.error.as_deref() == Some("timed out") && a.latency_ms >= 400)
    );
    assert_eq!(list.pending, 0);
    assert_eq!(list.failed, 0);
    // The secret never reaches the logs.
    let logs = common::logs();
    let text = logs.lock().expect("logs").clone();
    assert!(!common::contains(&text, secret.as_bytes()));
    common::finish(env).await;
}

common::on_both_databases!(fails_times_out_and_recovers: receiver_fails_times_out_and_recovers_sqlite, receiver_fails_times_out_and_recovers_postgres; threads = 4);

/// An endpoint down past the retry window: the order's first event is `failed`, its later
/// events wait (never sent before it); a replay sends them all, in order, same ids.
async fn down_then_replayed(db: Db) {
    let Some(mut env) = common::start(db).await else {
        return;
    };
    env.local
        .start_webhooks(WebhookOptions {
            retry_for: Duration::from_millis(600),
            ..opts()
        })
        .await;
    let r: Shared = Arc::new(Mutex::new(Receiver {
        then: Some(Answer::Fail),
        ..Receiver::default()
    }));
    let url = start_receiver(r.clone()).await;
    let secret = add_endpoint(&env, "shop", &url).await;
    r.lock().expect("lock").secret = secret;
    let order = buy(&env, false, Fill::default()).await;

    let store = env.local.merchant.store();
    let start = Instant::now();
    let all = loop {
        let all = store
            .webhook_deliveries(&DeliveryFilter::default())
            .await
            .expect("list");
        if all.iter().any(|d| d.status == DeliveryStatus::Failed) {
            break all;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let events = recorded(&all);
    let evs = &events[&order];
    assert_eq!(evs.len(), 3, "{evs:?}");
    // Only the first event was ever sent; the later ones wait behind it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = r.lock().expect("lock").got.clone();
    assert!(got.len() >= 2);
    assert!(got.iter().all(|g| g.event_id == evs[0].1), "{got:?}");
    let first = all
        .iter()
        .find(|d| d.event.event_id == evs[0].1)
        .expect("first");
    assert_eq!(first.status, DeliveryStatus::Failed);
    assert!(first.last_status == Some(500));

    // The endpoint recovers; the operator replays the failed deliveries.
    r.lock().expect("lock").then = Some(Answer::Ok);
    let m = merchant_url(&env);
    let replay: Value = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{m}{PATH_WEBHOOK_REPLAY}"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(replay["replayed"], 1);
    let all = settle(&env, Duration::from_secs(30)).await;
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Delivered));
    let got = r.lock().expect("lock").got.clone();
    let acked: Vec<&str> = got
        .iter()
        .filter(|g| g.answered == Answer::Ok)
        .map(|g| g.event_id.as_str())
        .collect();
    let want: Vec<&str> = evs.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(acked, want, "in order, once each, after the replay");

    // A resend of one delivered event: the same id and body again.
    let resend: Value = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{m}{PATH_WEBHOOK_REPLAY}"))
        .json(&serde_json::json!({ "event_id": evs[1].1 }))
        .send()
        .await
        .expect("resend")
        .json()
        .await
        .expect("json");
    assert_eq!(resend["replayed"], 1);
    settle(&env, Duration::from_secs(30)).await;
    let got = r.lock().expect("lock").got.clone();
    let copies: Vec<&Got> = got.iter().filter(|g| g.event_id == evs[1].1).collect();
    assert!(copies.len() >= 2);
    assert!(copies.iter().all(|g| g.body == copies[0].body));
    common::finish(env).await;
}

common::on_both_databases!(down_then_replayed: down_past_the_window_then_replayed_sqlite, down_past_the_window_then_replayed_postgres; threads = 4);

/// Bad operator input gets stable codes; operator routes need the token; no endpoint, no
/// events recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_routes_refuse_bad_input() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let m = merchant_url(&env);
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    // Without an endpoint nothing is recorded.
    buy(&env, true, Fill::default()).await;
    assert!(
        env.local
            .merchant
            .store()
            .webhook_deliveries(&DeliveryFilter::default())
            .await
            .expect("list")
            .is_empty()
    );
    let post = |path: &str, body: Value| {
        http.post(format!("{m}{path}"))
            .bearer_auth("operator-token-for-tests-0123")
            .json(&body)
            .send()
    };
    env.local
        .merchant
        .guard()
        .operator()
        .set(OperatorAuth::token("operator-token-for-tests-0123"));
    let cases = [
        (
            serde_json::json!({"endpoint_id": "a", "url": "http://127.0.0.1:9/x", "events": ["order.teleported"]}),
            400,
            "malformed_request",
        ),
        (
            serde_json::json!({"endpoint_id": "a", "url": "ftp://127.0.0.1/x"}),
            400,
            "malformed_request",
        ),
        (
            serde_json::json!({"endpoint_id": "Bad Id", "url": "http://127.0.0.1:9/x"}),
            400,
            "malformed_request",
        ),
        (
            serde_json::json!({"endpoint_id": "a", "url": "http://127.0.0.1:9/x", "secret": "mine"}),
            400,
            "malformed_request",
        ),
    ];
    for (body, status, code) in cases {
        let r = post(PATH_WEBHOOK_ENDPOINTS, body.clone())
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(common::error_code(&r.bytes().await.expect("body")), code);
    }
    let ok = serde_json::json!({"endpoint_id": "a", "url": "http://127.0.0.1:9/x"});
    assert_eq!(
        post(PATH_WEBHOOK_ENDPOINTS, ok.clone())
            .await
            .expect("add")
            .status()
            .as_u16(),
        200
    );
    let r = post(PATH_WEBHOOK_ENDPOINTS, ok).await.expect("again");
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(
        common::error_code(&r.bytes().await.expect("body")),
        "already_exists"
    );
    let r = post(
        &format!("{PATH_WEBHOOK_ENDPOINTS}/nope"),
        serde_json::json!({"enabled": false}),
    )
    .await
    .expect("change");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        common::error_code(&r.bytes().await.expect("body")),
        "unknown_webhook_endpoint"
    );
    // Rotating answers a new secret; listing never shows one.
    let r: WebhookEndpointCreated = post(
        &format!("{PATH_WEBHOOK_ENDPOINTS}/a"),
        serde_json::json!({"rotate_secret": true}),
    )
    .await
    .expect("rotate")
    .json()
    .await
    .expect("json");
    let secret = r.secret.expect("rotated secret");
    let list = http
        .get(format!("{m}{PATH_WEBHOOK_ENDPOINTS}"))
        .bearer_auth("operator-token-for-tests-0123")
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert!(!list.contains(&secret) && !list.contains("whsec_"));
    // Without the token: operator_required.
    let r = http
        .get(format!("{m}{PATH_WEBHOOK_DELIVERIES}"))
        .send()
        .await
        .expect("no token");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        common::error_code(&r.bytes().await.expect("body")),
        "operator_required"
    );
    let r = http
        .get(format!("{m}{PATH_WEBHOOK_DELIVERIES}?status=lost"))
        .bearer_auth("operator-token-for-tests-0123")
        .send()
        .await
        .expect("bad status");
    assert_eq!(r.status().as_u16(), 400);
    common::finish(env).await;
}

/// A backend process, killed when dropped.
struct Backend(std::process::Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/shop_backend.py` as the receiver, a real process: it verifies and acts once per
/// event; while it is down events wait, and arrive in order when it is back; it refuses a
/// wrong secret, an altered body and a replayed old request, and accepts an unknown type.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_backend_receives_and_verifies() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("WARIFU_REQUIRE_PYTHON").is_err(),
            "python3 is needed"
        );
        eprintln!("SKIP: no python3");
        return;
    }
    let Some(mut env) = common::start(Db::Sqlite).await else {
        return;
    };
    env.local.start_webhooks(opts()).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/warifu");
    let secret = add_endpoint(&env, "shop", &url).await;
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop_backend.py");
    let spawn = || {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .env("WARIFU_WEBHOOK_SECRET", &secret)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 examples/shop_backend.py");
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines() {
                match l {
                    Ok(l) => sink.lock().expect("lock").push(l),
                    Err(_) => break,
                }
            }
        });
        (Backend(child), lines)
    };
    let wait_for = |lines: Arc<Mutex<Vec<String>>>, n: usize| async move {
        let start = Instant::now();
        loop {
            if lines.lock().expect("lock").len() >= n {
                return lines.lock().expect("lock").clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "only {:?}",
                lines
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (child, lines) = spawn();
    wait_for(lines.clone(), 1).await; // "listening PORT"
    let first = buy(&env, false, Fill::default()).await;
    assert_backend_saw(&wait_for(lines.clone(), 4).await, &first);

    // Down: the endpoint cannot be reached; nothing is lost.
    drop(child);
    let second = buy(&env, false, Fill::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = env
        .local
        .merchant
        .store()
        .webhook_deliveries(&DeliveryFilter {
            order_id: Some(second.clone().into()),
            ..DeliveryFilter::default()
        })
        .await
        .expect("list");
    assert!(pending.iter().all(|d| d.status == DeliveryStatus::Pending));
    assert!(
        pending
            .iter()
            .any(|d| d.last_error.as_deref() == Some("cannot connect"))
    );
    let (_child, lines) = spawn();
    assert_backend_saw(&wait_for(lines.clone(), 4).await, &second);

    // Bad input to the backend.
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let now = warifu_services::clock::Clock::system().now_ms() / 1000;
    let body = br#"{"id":"evt_test_unknown","type":"order.teleported","created_at_ms":0,"data":{"order_id":"o-x","state":"x"}}"#;
    let send = |sig: String, body: Vec<u8>| {
        http.post(&url)
            .header(SIGNATURE_HEADER, sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            send(sign("whsec_wrong", now, body), body.to_vec())
                .await
                .expect("wrong")
        ),
        400
    );
    let mut altered = body.to_vec();
    altered[10] ^= 1;
    assert_eq!(
        status(
            send(sign(&secret, now, body), altered)
                .await
                .expect("altered")
        ),
        400
    );
    assert_eq!(
        status(
            send(sign(&secret, now - 3600, body), body.to_vec())
                .await
                .expect("replayed")
        ),
        400
    );
    assert_eq!(
        status(
            send("garbage".into(), body.to_vec())
                .await
                .expect("garbage")
        ),
        400
    );
    assert_eq!(
        status(
            send(sign(&secret, now, body), body.to_vec())
                .await
                .expect("unknown type")
        ),
        200
    );
    common::finish(env).await;
}

/// The backend's lines after its "listening" line: one order's events, in order.
fn assert_backend_saw(lines: &[String], order: &str) {
    let types: Vec<String> = lines[1..]
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            assert_eq!(v["order_id"], order);
            v["type"].as_str().expect("type").to_owned()
        })
        .collect();
    assert_eq!(
        types,
        ["order.authorized", "order.shipped", "order.captured"]
    );
}
