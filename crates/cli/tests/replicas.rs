//! Replicas behind a real load balancer (issue 13): the issuer, the carrier and three
//! `warifu merchant serve` processes over one PostgreSQL schema, HAProxy in front in
//! round-robin (each request to the next replica, so a handshake's hello and confirm and a
//! session's requests land on different processes). A request accepted through the balancer
//! is refused when replayed to it or to any replica. Cardholders buy, cancel and track
//! concurrently through the balancer while one replica is SIGKILLed with requests in flight;
//! a client whose answer died with that replica asks again, as a real client does, under the
//! same idempotency key (the same sealed bundle, the same order's cancel; a GET is safe).
//! Then, from the three parties' databases: every order the merchant holds was acknowledged
//! and rests, and the parties agree (nothing authorized, captured or shipped twice, declined
//! orders unshipped, cancelled ones voided or refunded, the issuer's books balanced); the
//! surviving replicas drained the outbox but for the delivery polls of parcels still with the
//! carrier; round-robin reached every replica. Last, a carrier operator delivers the parcels
//! still with it: the carrier pushes each delivery to the merchant at the balancer (to the
//! survivors), and every such order becomes `delivered` at the merchant.
//!
//! Skips when WARIFU_TEST_POSTGRES is unset, and when `haproxy` (Debian package) is missing
//! unless WARIFU_REQUIRE_HAPROXY=1 (CI), which makes that a failure.

mod common;
#[path = "../../services/tests/common/raw.rs"]
mod raw;

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::books::{self, Ack, card_number, free_port, order_for, problems, read_books, resting};
use common::{Deployment, ISSUER, MERCHANT, Options, Served, stdout_ok};
use reqwest::Method;
use warifu_core::PartyId;
use warifu_services::cardholder::{Cardholder, CardholderError};
use warifu_services::session::client::ClientError;
use warifu_store::{MerchantStore, OrderRecord, OrderState, Party, ShipmentStatus, Store};

const REPLICAS: usize = 3;
/// The cardholders' limits: the last one's holds three teas (1,200 each), so some of its
/// orders are declined.
const LIMITS: [u64; 4] = [1_000_000_000, 1_000_000_000, 1_000_000_000, 4_000];
/// Orders each cardholder places; every second one approved is cancelled.
const ORDERS: usize = 12;
/// The replica SIGKILLed, once this many orders were acknowledged.
const VICTIM: usize = 1;
const KILL_AFTER: usize = 6;
/// How long the surviving replicas get to bring every order to rest.
const DRAIN: Duration = Duration::from_secs(40);

fn haproxy() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
}

/// HAProxy on `port` in round-robin over `replicas` (URLs), one request per server
/// connection (so every request is balanced anew); a replica is out after one failed check
/// (300 ms apart) and a request whose connection to it fails goes to another; the stats page
/// counts each replica's requests.
fn haproxy_config(port: u16, replicas: &[String]) -> String {
    let mut cfg = format!(
        "global\n  maxconn 2000\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  \
         timeout server 30s\n  retries 3\n  option redispatch\n  option http-server-close\n\n\
         listen merchant\n  bind 127.0.0.1:{port}\n  balance roundrobin\n  stats enable\n  \
         stats uri /haproxy-stats\n  option httpchk GET /healthz\n  \
         default-server inter 300ms fall 1 rise 2\n"
    );
    for (i, url) in replicas.iter().enumerate() {
        let addr = url.trim_start_matches("http://");
        cfg.push_str(&format!("  server r{i} {addr} check\n"));
    }
    cfg
}

/// Each replica's line of the balancer's stats: (status, requests in flight, requests in all).
async fn replica_stats(http: &reqwest::Client, lb: &str) -> Vec<(String, u64, u64)> {
    let Ok(r) = http.get(format!("{lb}/haproxy-stats;csv")).send().await else {
        return Vec::new();
    };
    let csv = r.text().await.unwrap_or_default();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .expect("a stats column")
    };
    let (sv, status, scur, stot) = (col("svname"), col("status"), col("scur"), col("stot"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(sv).is_some_and(|s| s.starts_with('r')))
        .map(|f| {
            let n = |i: usize| f[i].parse().unwrap_or(0);
            (f[status].to_owned(), n(scur), n(stot))
        })
        .collect()
}

/// Whether an answer was lost with the replica handling it (the balancer's unsigned 5xx, or a
/// dropped connection): a real client asks again.
fn lost(e: &CardholderError) -> bool {
    matches!(
        e,
        CardholderError::Client(
            ClientError::Unavailable { .. }
                | ClientError::Refused {
                    verified: false,
                    status: 500..=599,
                    ..
                }
        )
    )
}

/// `call` again while its answer is [`lost`] (at most 20 times, 200 ms apart), counting the
/// retries. The caller makes the request idempotent: the same sealed bundle, the same order.
async fn again<T, F: Future<Output = Result<T, CardholderError>>>(
    retries: &AtomicU64,
    mut call: impl FnMut() -> F,
) -> Result<T, CardholderError> {
    let mut left = 20;
    loop {
        match call().await {
            Err(e) if lost(&e) && left > 0 => {
                left -= 1;
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answer => return answer,
        }
    }
}

/// One cardholder's run through the balancer: [`ORDERS`] purchases, every second approved one
/// cancelled, each tracked; what the merchant acknowledged goes to `acks`.
async fn shop(
    who: Cardholder,
    card: String,
    retries: Arc<AtomicU64>,
    acks: Arc<Mutex<Vec<Ack>>>,
) -> Result<(), CardholderError> {
    let merchant = PartyId::parse(MERCHANT)?;
    let issuer = PartyId::parse(ISSUER)?;
    let mut approvals = 0;
    for _ in 0..ORDERS {
        let form = again(&retries, || who.order_form(&merchant, false)).await?;
        let sealed = who.seal(&form, &order_for(&form, &card)?, &issuer).await?;
        let outcome = again(&retries, || who.submit(&sealed)).await?;
        let id = outcome.order_id.clone();
        let approved = outcome.decision.as_ref().is_some_and(|d| d.approved());
        approvals += usize::from(approved);
        let cancelled = approved && approvals.is_multiple_of(2);
        if cancelled {
            let c = again(&retries, || who.cancel(&merchant, &id)).await?;
            assert_eq!(c.order_id, id);
        }
        let view = again(&retries, || who.order_view(&merchant, &id)).await?;
        assert_eq!(view.outcome.order_id, id);
        acks.lock().expect("acks").push(Ack {
            order_id: id.to_string(),
            approved,
            state: outcome.state,
            cancelled,
        });
    }
    Ok(())
}

/// The orders not at rest, or with a message still to send but a delivery poll of a captured
/// order's parcel.
async fn undrained(m: &Store, orders: &[OrderRecord]) -> Vec<String> {
    let mut left = Vec::new();
    for o in orders {
        let outbox = m.outbox_for_order(&o.order_id).await.expect("outbox");
        let pending: Vec<_> = outbox.iter().filter(|msg| !msg.done).collect();
        let polls =
            o.state == OrderState::Captured && pending.iter().all(|msg| msg.kind == "track");
        if !resting(o.state) || !(pending.is_empty() || polls) {
            left.push(format!("{} ({})", o.order_id, o.state.as_str()));
        }
    }
    left
}

#[test]
fn replicas_behind_haproxy_lose_nothing_when_one_is_sigkilled() {
    let Ok(url) = std::env::var("WARIFU_TEST_POSTGRES") else {
        eprintln!("WARIFU_TEST_POSTGRES is unset: skipping the load-balanced replica test");
        return;
    };
    let Some(haproxy) = haproxy() else {
        assert!(
            std::env::var("WARIFU_REQUIRE_HAPROXY").as_deref() != Ok("1"),
            "haproxy is not installed (apt-get install haproxy) and WARIFU_REQUIRE_HAPROXY=1"
        );
        eprintln!("haproxy is not installed: skipping the load-balanced replica test");
        return;
    };
    let started = Instant::now();
    let mut d = Deployment::start(Options {
        postgres: Some(url),
        operator_token: Some("replicas-op-token-4Kd9Qz".into()),
        merchants: REPLICAS,
        cardholders: LIMITS.to_vec(),
        ..Options::default()
    });
    let replicas: Vec<String> = d.merchants.iter().map(|(_, url)| url.clone()).collect();
    let port = free_port();
    let cfg = d.tmp.path().join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(port, &replicas)).expect("haproxy.cfg");
    let _balancer = Served(
        Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let lb = format!("http://127.0.0.1:{port}");
    d.directory_add(MERCHANT, &lb);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let (acks, retries) = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica_stats(&http, &lb)
            .await
            .iter()
            .filter(|(status, _, _)| status == "UP")
            .count()
            .eq(&REPLICAS)
        {
            assert!(Instant::now() < deadline, "the replicas are not up behind haproxy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A session through the balancer (hello, confirm and request each at the next
        // replica); its request replayed to the balancer or to any replica is refused.
        let merchant = PartyId::parse(MERCHANT).expect("id");
        let keys = books::key_source(&d.keys, &d.cardholders[0]);
        let mut session = raw::raw_handshake(keys.as_ref(), &merchant, &lb).await;
        let (auth, record, status, _, _) = raw::signed(
            &mut session,
            &lb,
            Method::POST,
            "/v1/order-forms",
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status.as_u16(), 200, "a session request through the balancer");
        for target in std::iter::once(&lb).chain(&replicas) {
            let (status, _, body) =
                raw::send_with(&auth, target, Method::POST, "/v1/order-forms", record.clone())
                    .await;
            assert_eq!(status.as_u16(), 409, "replay at {target} accepted");
            assert_eq!(raw::error_code(&body), "replay");
        }

        // The cardholders shop at once; a replica is SIGKILLed while it serves requests.
        let acks = Arc::new(Mutex::new(Vec::new()));
        let retries = Arc::new(AtomicU64::new(0));
        let runs: Vec<_> = d
            .cardholders
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let who = d.cardholder(id);
                tokio::spawn(shop(who, card_number(i), retries.clone(), acks.clone()))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        let in_flight = loop {
            let acked = acks.lock().expect("acks").len();
            let stats = replica_stats(&http, &lb).await;
            let in_flight = stats.get(VICTIM).map_or(0, |s| s.1);
            if acked >= KILL_AFTER && in_flight > 0 || Instant::now() > deadline {
                break in_flight;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let victim = &mut d.merchants[VICTIM].0.0;
        victim.kill().expect("SIGKILL");
        let died = victim.wait().expect("reap the replica");
        assert_eq!(died.signal(), Some(9), "the replica died of {died:?}");
        println!(
            "t={:.1}s: SIGKILL replica {VICTIM} with {in_flight} request(s) in flight, {} orders acknowledged",
            started.elapsed().as_secs_f64(),
            acks.lock().expect("acks").len()
        );
        for run in runs {
            tokio::time::timeout(Duration::from_secs(60), run)
                .await
                .expect("a cardholder's run ends")
                .expect("a cardholder's run")
                .expect("every request answered, after retries");
        }
        let per_replica = replica_stats(&http, &lb).await;
        assert!(
            per_replica.len() == REPLICAS && per_replica.iter().all(|(_, _, total)| *total > 0),
            "round-robin did not reach every replica: {per_replica:?}"
        );
        let acks = acks.lock().expect("acks").clone();
        (acks, retries.load(Ordering::Relaxed))
    });
    assert_eq!(acks.len(), LIMITS.len() * ORDERS);

    // The surviving replicas bring every order to rest and drain the outbox (the delivery
    // polls of parcels still with the carrier stay).
    let m = rt.block_on(d.db.open(Party::Merchant));
    let deadline = Instant::now() + DRAIN;
    let books = loop {
        let books = rt.block_on(read_books(&d.db));
        let left = rt.block_on(undrained(&m, &books.orders));
        if left.is_empty() {
            break books;
        }
        assert!(
            Instant::now() < deadline,
            "not at rest or not drained: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    rt.block_on(m.close());
    let found = problems(&acks, &books);
    assert!(
        found.is_empty(),
        "{} problems:\n{}",
        found.len(),
        found.join("\n")
    );
    assert_eq!(
        books.orders.len(),
        acks.len(),
        "the merchant holds an order no cardholder was told of"
    );
    let approved = acks.iter().filter(|a| a.approved).count();
    assert!(
        approved > acks.len() / 2 && approved < acks.len(),
        "approved {approved}"
    );
    println!(
        "{} orders ({approved} approved, {} cancelled) through {REPLICAS} replicas, {retries} retries after the kill; at rest and agreed at all three parties in {:.1}s",
        acks.len(),
        acks.iter().filter(|a| a.cancelled).count(),
        started.elapsed().as_secs_f64()
    );

    // The parcels still with the carrier are delivered; the carrier pushes each delivery to
    // the merchant at the balancer (its directory names it), and the survivors record it.
    let waiting: Vec<_> = books
        .shipments
        .iter()
        .filter(|s| s.status == ShipmentStatus::Accepted)
        .collect();
    assert!(!waiting.is_empty(), "no parcel left with the carrier");
    let token = d.token_file.clone().expect("token file");
    for s in &waiting {
        stdout_ok(
            d.cmd()
                .args(["carrier", "advance", "--url", &d.carrier_url])
                .args(["--token-file", common::path(&token)])
                .args([s.tracking_number.as_str(), "--to", "delivered"]),
        );
    }
    let m = rt.block_on(d.db.open(Party::Merchant));
    let deadline = Instant::now() + DRAIN;
    loop {
        let mut undelivered = Vec::new();
        for s in &waiting {
            let o = rt.block_on(m.get_order(&s.order_id)).expect("order");
            if o.as_ref().is_none_or(|o| o.state != OrderState::Delivered) {
                undelivered.push(format!("{}: {:?}", s.order_id, o.map(|o| o.state)));
            }
        }
        if undelivered.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not pushed through the balancer: {undelivered:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    rt.block_on(m.close());
    println!(
        "{} deliveries pushed by the carrier through the balancer, recorded by the survivors",
        waiting.len()
    );
    let db = d.db.clone();
    drop(d);
    rt.block_on(db.drop_schemas());
}
