//! A hello flood (issue 13): hellos from made-up identities, each of which would cost the
//! merchant a key derivation, sent from one source address while a genuine cardholder buys
//! from another. The purchase succeeds, a handshake begun before the flood still completes
//! after it (the responder keeps nothing a flood could evict), and the flood is answered
//! `429 rate_limited` (JSON, `Retry-After`) once its source's budget is spent.
//!
//! `flood_throughput` (ignored; `cargo test -p warifu-services --test flood -- --ignored
//! --nocapture`) lifts the limits and prints how many hellos per second the merchant answers
//! while the cardholder buys, with the purchases' p99.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Db, Fill};
use warifu_core::PartyId;
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::session::{Hello, HelloConfirm, VERSION};
use warifu_services::clock::Clock;
use warifu_services::session::server::{GuardLimits, Rate};

const FLOOD_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Counts of the flood's answers.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    limited: AtomicUsize,
    other: AtomicUsize,
}

/// Sends hellos from fresh identities until `stop`, from `FLOOD_SOURCE`.
async fn flood(endpoint: String, merchant: PartyId, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let http =
        warifu_services::http::tls::client(|b| b.local_address(FLOOD_SOURCE)).expect("client");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let mut nonce_i = [0u8; 32];
        OsRandom.fill(&mut nonce_i).expect("nonce");
        let hello = Hello {
            version: VERSION,
            initiator: common::id(&format!(
                "cardholder:flood-{}-{n}@x.example",
                std::process::id()
            )),
            responder: merchant.clone(),
            nonce_i,
            time: Clock::system().now_unix(),
        };
        let Ok(r) = http
            .post(format!("{endpoint}/v1/handshake/hello"))
            .json(&hello)
            .send()
            .await
        else {
            tally.other.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let status = r.status().as_u16();
        let retry = r.headers().contains_key("retry-after");
        let body = r.bytes().await.unwrap_or_default();
        if status == 200 {
            tally.ok.fetch_add(1, Ordering::Relaxed);
        } else if status == 429 && retry && common::error_code(&body) == "rate_limited" {
            tally.limited.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.other.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn start_flood(
    env: &common::Env,
    tasks: usize,
) -> (
    Arc<AtomicBool>,
    Arc<Tally>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let endpoint = env.local.endpoint(&env.merchant()).expect("endpoint");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let handles = (0..tasks)
        .map(|_| {
            tokio::spawn(flood(
                endpoint.clone(),
                env.merchant(),
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();
    (stop, tally, handles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hello_flood_neither_evicts_nor_stalls_a_genuine_cardholder() {
    let env = common::start(Db::Sqlite).await.expect("deployment");
    let merchant = env.merchant();
    let endpoint = env.local.endpoint(&merchant).expect("endpoint");
    // A handshake begun before the flood.
    let alice_keys = env.local.issue(&env.alice_id).expect("key");
    let (init, hello, challenge) =
        common::raw_hello(alice_keys.as_ref(), &merchant, &endpoint).await;
    let http = warifu_services::http::tls::client(|b| b).expect("http client");

    let flood_started = Instant::now();
    let (stop, tally, handles) = start_flood(&env, 4);
    // The genuine cardholder buys while the flood runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let p = env
            .alice
            .purchase(&merchant, &env.issuer(), false, |f| {
                Fill::default().order(f)
            })
            .await
            .expect("the genuine purchase succeeds under the flood");
        assert!(p.outcome.decision.is_some_and(|d| d.approved()));
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("flood task");
    }
    let (ok, limited, other) = (
        tally.ok.load(Ordering::Relaxed),
        tally.limited.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
    );
    eprintln!("flood: {ok} answered, {limited} rate-limited, {other} other");
    let rate = GuardLimits::BUILTIN.unknown_per_source;
    let budget = rate.burst + rate.per_second * flood_started.elapsed().as_secs_f64();
    assert!(limited > 0, "the flood was never limited");
    assert_eq!(
        other, 0,
        "every refusal is a JSON 429 rate_limited with Retry-After"
    );
    assert!(
        ok as f64 <= budget + 1.0,
        "the flood's derivations exceeded its source's budget: {ok} > {budget}"
    );
    // The handshake begun before the flood completes after it.
    let (_, confirm) = init.finish(&challenge).expect("finish");
    let r = http
        .post(format!("{endpoint}/v1/handshake/confirm"))
        .json(&HelloConfirm::new(hello, confirm))
        .send()
        .await
        .expect("confirm");
    assert!(
        r.status().is_success(),
        "the flood evicted a handshake: {}",
        r.status()
    );
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn flood_throughput() {
    let env = common::start(Db::Sqlite).await.expect("deployment");
    let unlimited = Rate {
        per_second: 1e9,
        burst: 1e9,
    };
    env.local.merchant.guard().set_limits(GuardLimits {
        unknown_per_source: unlimited,
        unknown_global: unlimited,
        ..GuardLimits::BUILTIN
    });
    let merchant = env.merchant();
    let (stop, tally, handles) = start_flood(&env, 8);
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        let t = Instant::now();
        env.alice
            .purchase(&merchant, &env.issuer(), false, |f| {
                Fill::default().order(f)
            })
            .await
            .expect("purchase");
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("flood task");
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "hellos answered: {:.0}/s; purchases: {} (p50 {:?}, p99 {:?})",
        tally.ok.load(Ordering::Relaxed) as f64 / elapsed,
        latencies.len(),
        p(0.5),
        p(0.99)
    );
    common::finish(env).await;
}
