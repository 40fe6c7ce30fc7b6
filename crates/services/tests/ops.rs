//! Operations: `/healthz` and `/readyz` (ready, then not ready when the store is closed or a
//! peer is delisted), `/metrics` after a purchase (requests, orders by state, authorizations
//! by result, shipments by status, route templates only), the logs of a run (order id as
//! correlation, no card number, destination or operator token anywhere), and graceful
//! shutdown (an in-flight request finishes; the drain is bounded).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{ADDRESS, ADDRESSEE, CARD, Db, Fill};
use serde_json::Value;
use warifu_services::http::service;
use warifu_services::issuer::{self, IssuerState};
use warifu_services::session::operator::OperatorAuth;
use warifu_store::{Party, Store};

/// A GET with the services' client (rustls with ring: reqwest alone has no provider).
async fn fetch(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    http.get(url).send().await
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = fetch(url).await.expect("GET");
    let status = r.status().as_u16();
    let v = r.json().await.expect("JSON body");
    (status, v)
}

async fn get_text(url: &str) -> (u16, String) {
    let r = fetch(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("text body"))
}

fn endpoints(env: &common::Env) -> [(&'static str, String); 3] {
    [
        (
            "merchant",
            env.local.endpoint(&env.merchant()).expect("merchant"),
        ),
        ("issuer", env.local.endpoint(&env.issuer()).expect("issuer")),
        (
            "carrier",
            env.local.endpoint(&env.carrier()).expect("carrier"),
        ),
    ]
}

#[tokio::test]
async fn health_and_readiness() {
    let env = common::start(Db::Sqlite).await.expect("deployment");
    for (service, url) in endpoints(&env) {
        let (status, h) = get_json(&format!("{url}/healthz")).await;
        assert_eq!(status, 200, "{service}: {h}");
        assert_eq!(h["status"], "ok");
        assert_eq!(h["service"], service);
        let (status, r) = get_json(&format!("{url}/readyz")).await;
        assert_eq!(status, 200, "{service} not ready: {r}");
        assert_eq!(r["status"], "ready");
        for check in ["storage", "keys", "peers"] {
            assert_eq!(r["checks"][check]["ok"], true, "{service} {check}: {r}");
        }
        assert_eq!(r["failing"], serde_json::json!([]));
    }

    // The merchant's carrier leaves the directory: the merchant is not ready, naming `peers`.
    let merchant = env.local.endpoint(&env.merchant()).expect("merchant");
    let full = (*env.local.directory.get()).clone();
    let mut without = full.clone();
    assert!(without.remove(&env.carrier()));
    env.local.directory.replace(without).expect("replace");
    let (status, r) = get_json(&format!("{merchant}/readyz")).await;
    assert_eq!(status, 503, "{r}");
    assert_eq!(r["status"], "not_ready");
    assert_eq!(r["failing"], serde_json::json!(["peers"]));
    let detail = r["checks"]["peers"]["detail"].as_str().expect("detail");
    assert!(detail.contains(env.carrier().as_str()), "{detail}");
    // Liveness does not depend on peers.
    assert_eq!(get_json(&format!("{merchant}/healthz")).await.0, 200);
    env.local.directory.replace(full).expect("restore");
    assert_eq!(get_json(&format!("{merchant}/readyz")).await.0, 200);

    // An issuer whose store is closed: not ready, naming `storage`, without the store's error.
    let dir = env.tmp.path().join("closed-issuer");
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open_party(&dir, Party::Issuer).await.expect("store");
    let keys = env
        .local
        .issue(&common::id("issuer:closed.example"))
        .expect("keys");
    let state = IssuerState::new(
        keys,
        Arc::new(store.clone()),
        warifu_services::clock::Clock::system(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(issuer::run(listener, state, async move {
        let _ = rx.await;
    }));
    assert_eq!(get_json(&format!("{url}/readyz")).await.0, 200);
    store.close().await;
    let (status, r) = get_json(&format!("{url}/readyz")).await;
    assert_eq!(status, 503, "{r}");
    assert_eq!(r["failing"], serde_json::json!(["storage"]));
    assert_eq!(r["checks"]["storage"]["ok"], false);
    assert_eq!(get_json(&format!("{url}/healthz")).await.0, 200);
    // The scrape still answers, reporting the store down.
    let (status, text) = get_text(&format!("{url}/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("warifu_storage_up{service=\"issuer\"} 0"),
        "{text}"
    );
    let _ = tx.send(());
    task.await.expect("join").expect("serve");
    env.stop().await;
}

/// The value of the series `name{labels…}` (labels given as a substring of the label set).
fn series(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (n, rest) = key.split_once('{').unwrap_or((key, ""));
            (n == name && labels.iter().all(|lb| rest.contains(lb)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[tokio::test]
async fn metrics_move_after_a_purchase_on_sqlite() {
    metrics_move_after_a_purchase(Db::Sqlite).await;
}

#[tokio::test]
async fn metrics_move_after_a_purchase_on_postgres() {
    metrics_move_after_a_purchase(Db::Postgres).await;
}

async fn metrics_move_after_a_purchase(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let [(_, m), (_, i), (_, c)] = endpoints(&env);
    let before = get_text(&format!("{m}/metrics")).await.1;
    let submits = |t: &str| {
        series(
            t,
            "warifu_http_request_duration_seconds_count",
            &["route=\"/v1/orders\"", "method=\"POST\"", "status=\"200\""],
        )
    };
    assert_eq!(submits(&before), 0.0, "{before}");

    let p = env.buy(false, &Fill::default()).await;
    let declined = Fill {
        name: "Wrong Name".into(),
        ..Fill::default()
    };
    env.alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| declined.order(f))
        .await
        .expect("declined purchase");
    // A status read by order id is counted under its route template.
    env.alice
        .order_status(&env.merchant(), &p.form.order_id)
        .await
        .expect("status");

    let (status, mt) = get_text(&format!("{m}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(submits(&mt), 2.0, "{mt}");
    assert!(
        series(
            &mt,
            "warifu_http_request_duration_seconds_count",
            &["route=\"/v1/orders/{order_id}\"", "method=\"GET\""]
        ) >= 1.0,
        "{mt}"
    );
    assert!(
        !mt.contains(p.form.order_id.as_str()),
        "a raw path with an order id is in the metrics: {mt}"
    );
    let state = p.outcome.state.as_str();
    assert_eq!(
        series(&mt, "warifu_orders", &[&format!("state=\"{state}\"")]),
        1.0,
        "{mt}"
    );
    assert_eq!(
        series(&mt, "warifu_orders", &["state=\"declined\""]),
        1.0,
        "{mt}"
    );
    assert_eq!(series(&mt, "warifu_storage_up", &[]), 1.0);
    assert!(mt.contains("service=\"merchant\""));

    let it = get_text(&format!("{i}/metrics")).await.1;
    assert_eq!(
        series(&it, "warifu_authorizations", &["result=\"approved\""]),
        1.0,
        "{it}"
    );
    assert_eq!(
        series(
            &it,
            "warifu_authorizations",
            &["result=\"declined\"", "reason=\""]
        ),
        1.0,
        "{it}"
    );
    assert!(
        series(
            &it,
            "warifu_http_request_duration_seconds_count",
            &["route=\"/v1/authorizations\"", "status=\"200\""]
        ) >= 2.0,
        "{it}"
    );
    let ct = get_text(&format!("{c}/metrics")).await.1;
    assert_eq!(series(&ct, "warifu_shipments", &[]), 1.0, "{ct}");
    for text in [&mt, &it, &ct] {
        assert!(!text.contains(CARD) && !text.contains(ADDRESS));
    }
    common::finish(env).await;
}

#[tokio::test]
async fn logs_correlate_by_order_id_and_hold_no_secret() {
    let logs = common::logs();
    let env = common::start(Db::Sqlite).await.expect("deployment");
    const TOKEN: &str = "op-token-5f1c9e2a7b3d4e6f8091a2b3c4d5e6f7";
    for guard in [
        env.local.merchant.guard(),
        env.local.issuer.guard(),
        env.local.carrier.guard(),
    ] {
        guard.operator().set(OperatorAuth::token(TOKEN));
    }
    let p = env.buy(false, &Fill::default()).await;
    let order_id = p.form.order_id.clone();
    env.alice
        .order_status(&env.merchant(), &order_id)
        .await
        .expect("status");
    let declined = Fill {
        number: common::OTHER_CARD.into(),
        ..Fill::default()
    };
    env.alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| declined.order(f))
        .await
        .expect("declined purchase");
    // Operator requests with the token, right and wrong, on every service.
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    for (_, url) in endpoints(&env) {
        for token in [TOKEN, "not-the-token"] {
            let _ = http
                .get(format!("{url}/v1/admin/orders"))
                .bearer_auth(token)
                .send()
                .await
                .expect("send");
            let _ = http
                .get(format!("{url}/readyz"))
                .header("cookie", format!("warifu_operator={token}"))
                .send()
                .await
                .expect("send");
        }
    }
    env.stop().await;

    let text = String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert!(
        text.contains(order_id.as_str()),
        "the logs do not mention the order: the scan would prove nothing"
    );
    for secret in [CARD, common::OTHER_CARD, ADDRESS, ADDRESSEE, TOKEN] {
        for form in common::encodings(secret) {
            assert!(
                !common::contains(text.as_bytes(), &form),
                "a secret is in the logs: {secret}"
            );
        }
    }
    // Every line that names this order carries it as the `order_id` field (event or span).
    let about: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(order_id.as_str()))
        .collect();
    assert!(about.len() >= 3, "{about:#?}");
    let field = format!("order_id={order_id}");
    let quoted = format!("order_id=\"{order_id}\"");
    let loose: Vec<&&str> = about
        .iter()
        .filter(|l| !l.contains(&field) && !l.contains(&quoted))
        .collect();
    assert!(
        loose.is_empty(),
        "log lines about the order without the order_id field: {loose:#?}"
    );
    // The request span carries it for a route with an order id.
    assert!(
        about
            .iter()
            .any(|l| l.contains("route=/v1/orders/{order_id}") && l.contains(&field)),
        "no request span with the order id: {about:#?}"
    );
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(600)).await;
    "done"
}

async fn very_slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(60)).await;
    "too late"
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let app = Router::new()
        .route("/slow", get(slow))
        .route("/very-slow", get(very_slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service::serve_with_drain(
        listener,
        app.clone(),
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move {
            let r = fetch(format!("{url}/slow")).await.expect("in flight");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopped_at = Instant::now();
    let _ = tx.send(());
    let (status, body) = in_flight.await.expect("join");
    assert_eq!((status, body.as_str()), (200, "done"));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops once the request is answered")
        .expect("join")
        .expect("serve");
    assert!(stopped_at.elapsed() >= Duration::from_millis(300));
    // Stopped: new connections are refused.
    assert!(fetch(format!("{url}/slow")).await.is_err());

    // A request longer than the drain time does not hold the service up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service::serve_with_drain(
        listener,
        app,
        async move {
            let _ = rx.await;
        },
        Duration::from_millis(300),
    ));
    let stuck = tokio::spawn(async move { fetch(format!("{url}/very-slow")).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopped_at = Instant::now();
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the drain is bounded")
        .expect("join")
        .expect("serve");
    let waited = stopped_at.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    stuck.abort();
}
