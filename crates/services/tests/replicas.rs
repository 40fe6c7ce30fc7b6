//! Replicas behind a real load balancer (issue 13): three merchant replicas over one
//! PostgreSQL schema behind HAProxy in round-robin (each request to the next replica), so a
//! handshake's hello and confirm, and a session's requests, land on different replicas.
//! Cardholders buy, cancel and track through it; a replica is killed mid-run (its server
//! task aborted with requests in flight, its worker gone); every order then rests correctly
//! at all three parties' stores, and a request replayed to another replica is refused.
//!
//! Skips only when WARIFU_TEST_POSTGRES is unset. Needs `haproxy` on PATH (Debian package
//! `haproxy`): without it the test skips, and fails when WARIFU_REQUIRE_HAPROXY=1 (CI).

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Db, Fill};
use reqwest::Method;
use warifu_core::PartyId;
use warifu_services::cardholder::Cardholder;
use warifu_services::directory::Entry;
use warifu_services::merchant::worker::Worker;
use warifu_services::merchant::{self, MerchantConfig, MerchantState};
use warifu_store::{Store, StoreOptions};

/// Luhn-valid card numbers of the extra cardholders.
const CARDS: [&str; 2] = ["4111111111111111", "5500005555555559"];

fn haproxy() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
}

/// A child process killed when dropped (also when the test fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Replica {
    state: Arc<MerchantState>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: Option<warifu_services::merchant::worker::WorkerHandle>,
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn replica(env: &common::Env, prefix: &str) -> Replica {
    let store = Store::open_with(
        StoreOptions::new(common::postgres_url()).schema(format!("{prefix}_merchant")),
    )
    .await
    .expect("the merchant's schema");
    let keys = env
        .local
        .issue(&env.merchant())
        .expect("the merchant's key");
    let state = MerchantState::new(
        keys,
        MerchantConfig::example(env.issuer(), Some(env.carrier())),
        Arc::new(store),
        env.local.directory.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = merchant::app(state.clone()).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            if req.uri().path() != "/healthz" {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            next.run(req)
        },
    ));
    let server = tokio::spawn(warifu_services::http::service::serve(
        listener,
        app,
        std::future::pending(),
    ));
    let worker = Some(Worker::start(state.clone(), Default::default()));
    Replica {
        state,
        server,
        worker,
        addr,
        hits,
    }
}

fn haproxy_config(port: u16, replicas: &[std::net::SocketAddr]) -> String {
    let mut cfg = format!(
        "global\n  maxconn 2000\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  \
         timeout server 30s\n  retries 3\n  option redispatch\n  option http-server-close\n\n\
         listen merchant\n  bind 127.0.0.1:{port}\n  balance roundrobin\n  option httpchk GET /healthz\n  \
         default-server inter 300ms fall 1 rise 2\n"
    );
    for (i, a) in replicas.iter().enumerate() {
        cfg.push_str(&format!("  server r{i} {a} check\n"));
    }
    cfg
}

/// One cardholder's run: `n` purchases, every other one cancelled, each tracked.
async fn shop(
    who: Cardholder,
    card: &'static str,
    merchant: PartyId,
    issuer: PartyId,
    n: usize,
) -> Vec<(String, bool)> {
    let fill = Fill {
        number: card.into(),
        ..Fill::default()
    };
    let mut orders = Vec::new();
    for i in 0..n {
        let p = who
            .purchase(&merchant, &issuer, false, |f| fill.order(f))
            .await
            .expect("a purchase through the balancer");
        let id = p.outcome.order_id.clone();
        let cancel = i % 2 == 1;
        if cancel {
            let c = who.cancel(&merchant, &id).await.expect("cancel");
            assert_eq!(c.order_id, id);
        }
        let view = who.order_view(&merchant, &id).await.expect("track");
        assert_eq!(view.outcome.order_id, id);
        orders.push((id, cancel));
    }
    orders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_behind_haproxy_answer_any_request_and_lose_nothing() {
    if std::env::var_os("WARIFU_TEST_POSTGRES").is_none() {
        eprintln!("WARIFU_TEST_POSTGRES is unset: skipping the load-balanced replica test");
        return;
    }
    let Some(haproxy) = haproxy() else {
        assert!(
            std::env::var("WARIFU_REQUIRE_HAPROXY").as_deref() != Ok("1"),
            "haproxy is not installed (apt-get install haproxy) and WARIFU_REQUIRE_HAPROXY=1"
        );
        eprintln!("haproxy is not installed: skipping the load-balanced replica test");
        return;
    };
    let env = common::start(Db::Postgres).await.expect("deployment");
    let prefix = env.schema_prefix.clone().expect("a PostgreSQL deployment");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(&env, &prefix).await);
    }
    // HAProxy in front of the three.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let cfg_path = env.tmp.path().join("haproxy.cfg");
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();
    std::fs::write(&cfg_path, haproxy_config(port, &addrs)).expect("haproxy.cfg");
    let lb = Child(
        std::process::Command::new(&haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let lb_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..50 {
        if http
            .get(format!("{lb_url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "haproxy did not come up");
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The merchant is now listed at the balancer.
    let merchant = env.merchant();
    let mut dir = (*env.local.directory.get()).clone();
    dir.insert(Entry::new(merchant.clone(), &lb_url).expect("entry"));
    env.local.directory.replace(dir).expect("directory");

    // A session through the balancer: hello, confirm and requests on different replicas; a
    // request replayed (to whichever replica is next) is refused, and so is one replayed to
    // each replica directly.
    let alice_keys = env.local.issue(&env.alice_id).expect("key");
    let mut session = common::raw_handshake(alice_keys.as_ref(), &merchant, &lb_url).await;
    let (auth, record, status, _, _) = common::signed(
        &mut session,
        &lb_url,
        Method::POST,
        "/v1/order-forms",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        status.as_u16(),
        200,
        "a session request through the balancer"
    );
    for target in [lb_url.clone()]
        .into_iter()
        .chain(addrs.iter().map(|a| format!("http://{a}")))
    {
        let (status, _, body) = common::send_with(
            &auth,
            &target,
            Method::POST,
            "/v1/order-forms",
            record.clone(),
        )
        .await;
        assert_eq!(status.as_u16(), 409, "replay at {target} accepted");
        assert_eq!(common::error_code(&body), "replay");
    }

    // Three cardholders shop concurrently; replica 1 is killed mid-run.
    let mut people = vec![(
        env.local.cardholder(&env.alice_id).expect("alice"),
        common::CARD,
    )];
    for (i, card) in CARDS.iter().enumerate() {
        let id = common::id(&format!("cardholder:c{i}@mail.example"));
        env.local
            .enroll(
                &format!("card-r{i}"),
                &id,
                common::NAME,
                card,
                common::EXPIRY,
                1_000_000,
                "JPY",
            )
            .await
            .expect("enroll");
        people.push((env.local.cardholder(&id).expect("cardholder"), card));
    }
    let runs: Vec<_> = people
        .into_iter()
        .map(|(who, card)| tokio::spawn(shop(who, card, merchant.clone(), env.issuer(), 6)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = &mut replicas[1];
    victim.server.abort();
    if let Some(w) = victim.worker.take() {
        tokio::spawn(w.stop());
    }
    let mut orders = Vec::new();
    for r in runs {
        orders.extend(r.await.expect("a cardholder's run"));
    }
    assert_eq!(orders.len(), 18);
    for r in &replicas {
        assert!(
            r.hits.load(Ordering::Relaxed) > 0,
            "round-robin never reached a replica"
        );
    }

    // Every order rests correctly at the merchant, the issuer and the carrier.
    let rested = |state: &str| {
        !matches!(
            state,
            "received" | "authorized" | "cancelling" | "returning" | "failed"
        )
    };
    let store = replicas[0].state.store().clone();
    let mut settled = false;
    for _ in 0..100 {
        let mut all = true;
        for (id, _) in &orders {
            let o = store
                .get_order(id)
                .await
                .expect("read")
                .expect("order kept");
            all &= rested(o.state.as_str());
        }
        if all {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(settled, "orders did not come to rest");
    let issuer = env.local.issuer.store().clone();
    let carrier = env.local.carrier.store().clone();
    for (id, cancelled) in &orders {
        let o = store.get_order(id).await.expect("read").expect("order");
        let a = issuer
            .get_authorization(merchant.as_str(), id)
            .await
            .expect("read")
            .expect("the issuer knows the order");
        let s = carrier
            .get_shipment(merchant.as_str(), id)
            .await
            .expect("read");
        if *cancelled {
            assert!(
                matches!(o.state.as_str(), "cancelled" | "voided" | "refunded"),
                "{id}: cancelled order at {}",
                o.state.as_str()
            );
            assert!(
                matches!(a.status.as_str(), "voided" | "refunded"),
                "{id}: the issuer kept {}",
                a.status.as_str()
            );
            assert!(
                s.as_ref().is_none_or(|s| matches!(
                    s.status.as_str(),
                    "cancelled" | "returning" | "returned"
                )),
                "{id}: the carrier still ships it"
            );
        } else {
            assert!(
                matches!(
                    o.state.as_str(),
                    "shipping_requested" | "shipped" | "captured" | "delivered"
                ),
                "{id}: kept order at {}",
                o.state.as_str()
            );
            assert!(
                matches!(a.status.as_str(), "held" | "captured"),
                "{id}: the issuer has {}",
                a.status.as_str()
            );
            let s = s.unwrap_or_else(|| panic!("{id}: no shipment"));
            assert!(!matches!(
                s.status.as_str(),
                "cancelled" | "returning" | "returned"
            ));
        }
    }
    drop(lb);
    for r in replicas {
        r.server.abort();
        if let Some(w) = r.worker {
            w.stop().await;
        }
    }
    common::finish(env).await;
}
