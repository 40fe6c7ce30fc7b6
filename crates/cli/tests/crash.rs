//! Crash test: `warifu merchant|issuer|carrier serve` as separate processes, each SIGKILLed at
//! random moments (seeded; the seed is printed, `WARIFU_CRASH_SEED` replays it) and restarted
//! on the same port and database while in-process cardholders keep buying. Afterwards, read
//! from each party's database: every order the merchant acknowledged reached a final or
//! resting state, nothing was authorized or captured twice, the issuer's books balance, every
//! shipped order has exactly one shipment, and the counts agree across the three parties.
//! SQLite always; PostgreSQL too when WARIFU_TEST_POSTGRES holds a URL (one schema per party
//! per run).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warifu_core::OrderId;

use common::books::{
    Ack, Books, CARDHOLDER_NAME, Db, card_number, error_code, free_port, load_cardholder,
    order_for, problems, read_books, resting, warifu,
};
use common::{CARRIER, ISSUER, MERCHANT, key_center, path, stdout_ok as ok};
use warifu_core::PartyId;
use warifu_core::order::PaymentMethod;
use warifu_services::directory::SharedDirectory;
use warifu_store::{
    AuthorizationRecord, AuthorizationStatus, CarrierStore, MerchantStore, OrderRecord, OrderState,
    Party, ShipmentRecord, ShipmentStatus,
};

/// Cardholders buying at once; the last one has a small limit, so some orders are declined.
const CARDHOLDERS: usize = 4;
const SMALL_LIMIT: u64 = 12_000;
const LIMIT: u64 = 1_000_000_000;
/// How long the load runs while services are being killed.
const CHAOS: Duration = Duration::from_secs(30);
/// How long the merchant's worker gets to finish afterwards.
const DRAIN: Duration = Duration::from_secs(60);

/// How many shipments the carrier's operator delivers at the end.
const DELIVER: u32 = 8;

/// Whether this build has the operator commands (`carrier advance`, `--operator-token-file`).
fn has_operator_commands() -> bool {
    let help = |args: &[&str]| {
        warifu()
            .args(args)
            .output()
            .map(|o| {
                o.status
                    .success()
                    .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
            })
            .ok()
            .flatten()
    };
    help(&["carrier", "advance", "--help"]).is_some()
        && help(&["carrier", "serve", "--help"])
            .is_some_and(|h| h.contains("--operator-token-file"))
}

/// A small deterministic generator (SplitMix64) for the kill schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One service process, restartable on the same port and database.
struct Service {
    name: &'static str,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Service {
    fn start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = warifu()
                .args(&self.args)
                .args(["--listen", &format!("127.0.0.1:{}", self.port)])
                .args(["--log", "error"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn a service");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            let up = lines
                .by_ref()
                .take(20)
                .map_while(Result::ok)
                .any(|l| l.contains("listening on"));
            if up {
                // Keep draining its standard output so that it never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
                self.child = Some(child);
                self.starts += 1;
                return;
            }
            // The port may still be held by the killed process for a moment.
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "{} did not come back on port {}",
                self.name,
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn crash_run(db: Db, root: &Path) {
    let seed = std::env::var("WARIFU_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash test seed: {seed} (replay with WARIFU_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let kc = root.join("kc");
    let keys = root.join("keys");
    let dir_file = root.join("directory.json");
    let cardholders: Vec<String> = (0..CARDHOLDERS)
        .map(|i| format!("cardholder:crash-{i}@mail.example"))
        .collect();
    let ids = [MERCHANT, ISSUER, CARRIER].into_iter();
    key_center(
        &kc,
        &keys,
        ids.chain(cardholders.iter().map(String::as_str)),
    );
    for (i, ch) in cardholders.iter().enumerate() {
        let limit = if i + 1 == CARDHOLDERS {
            SMALL_LIMIT
        } else {
            LIMIT
        };
        ok(warifu()
            .args(["issuer", "enroll"])
            .args(db.args(Party::Issuer))
            .args(["--card-id", &format!("card-{i}"), "--cardholder", ch])
            .args(["--name", CARDHOLDER_NAME, "--expiry", "2035-07"])
            .args(["--limit", &limit.to_string()])
            .env("WARIFU_CARD_NUMBER", card_number(i)));
    }
    let key = |id: &str| {
        let (role, name) = id.split_once(':').expect("role:name");
        path(&keys.join(format!("{role}_{name}.key"))).to_owned()
    };
    // The carrier's operator command (advance a shipment), when this build has it.
    let token_file = root.join("operator-token");
    std::fs::write(&token_file, "crash-test-operator-token-0123456789\n").expect("token");
    let can_advance = has_operator_commands();
    // The carrier pushes deliveries to the merchant it finds in the directory.
    let mut carrier_extra = vec!["--directory".to_owned(), path(&dir_file).to_owned()];
    if can_advance {
        carrier_extra.extend([
            "--operator-token-file".to_owned(),
            path(&token_file).to_owned(),
        ]);
    } else {
        println!("this build has no `warifu carrier advance`: deliveries are not exercised");
    }
    let mut services: Vec<Service> = [
        (ISSUER, "issuer", Party::Issuer, vec![]),
        (CARRIER, "carrier", Party::Carrier, carrier_extra),
        (
            MERCHANT,
            "merchant",
            Party::Merchant,
            vec![
                "--directory".to_owned(),
                path(&dir_file).to_owned(),
                "--issuer".into(),
                ISSUER.into(),
                "--carrier".into(),
                CARRIER.into(),
            ],
        ),
    ]
    .into_iter()
    .map(|(id, name, party, extra)| {
        let port = free_port();
        ok(warifu()
            .args(["keycenter", "directory", "add", "--file", path(&dir_file)])
            .args([
                "--id",
                id,
                "--endpoint",
                &format!("http://127.0.0.1:{port}"),
            ]));
        let mut args = vec![name.to_owned(), "serve".into(), "--key".into(), key(id)];
        args.extend(db.args(party));
        args.extend(extra);
        Service {
            name,
            args,
            port,
            child: None,
            starts: 0,
        }
    })
    .collect();
    for s in &mut services {
        s.start();
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let directory = Arc::new(SharedDirectory::from_file(&dir_file).expect("directory"));
    let merchant = PartyId::parse(MERCHANT).expect("id");
    let issuer = PartyId::parse(ISSUER).expect("id");
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let mut tasks = Vec::new();
    for (i, id) in cardholders.iter().enumerate() {
        let ch = load_cardholder(&keys, id, &directory);
        let (stop, acks, errors) = (stop.clone(), acks.clone(), errors.clone());
        let (merchant, issuer, number) = (merchant.clone(), issuer.clone(), card_number(i));
        tasks.push(rt.spawn(async move {
            let mut approvals = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let r = ch
                    .purchase(&merchant, &issuer, false, |f| order_for(f, &number))
                    .await;
                match r {
                    Ok(p) => {
                        let approved = p.outcome.decision.as_ref().is_some_and(|d| d.approved());
                        // Every fourth approved order is cancelled by its cardholder at once
                        // (mostly after the carrier accepted it: the carrier is told, the
                        // payment refunded), under the same crashes.
                        approvals += u32::from(approved);
                        let mut cancelled = false;
                        if approved && approvals.is_multiple_of(4) {
                            match ch.cancel(&merchant, &p.outcome.order_id).await {
                                // `cancelling` promises nothing yet: a parcel the carrier
                                // had already delivered ends delivered (docs/LIFECYCLE.md).
                                Ok(c) => cancelled = c.state != "cancelling",
                                Err(e) => {
                                    *errors
                                        .lock()
                                        .expect("errors")
                                        .entry(format!("cancel:{}", error_code(&e)))
                                        .or_default() += 1;
                                }
                            }
                        }
                        acks.lock().expect("acks").push(Ack {
                            order_id: p.outcome.order_id.to_string(),
                            approved,
                            state: p.outcome.state.clone(),
                            cancelled,
                        });
                        if !approved {
                            // The small-limit card: a decline now and then is enough.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    Err(e) => {
                        *errors
                            .lock()
                            .expect("errors")
                            .entry(error_code(&e))
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }

    // Chaos: every service is killed at least once, in a random order, then at random.
    let started = Instant::now();
    let mut order: Vec<usize> = vec![0, 1, 2];
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut kills = BTreeMap::<&str, u32>::new();
    let mut n = 0;
    while started.elapsed() < CHAOS {
        std::thread::sleep(Duration::from_millis(700 + rng.below(2300)));
        let which = order
            .get(n)
            .copied()
            .unwrap_or_else(|| rng.below(3) as usize);
        n += 1;
        let s = &mut services[which];
        println!(
            "t={:>5.1}s SIGKILL {} ({} orders acknowledged so far)",
            started.elapsed().as_secs_f64(),
            s.name,
            acks.lock().expect("acks").len()
        );
        s.kill();
        *kills.entry(s.name).or_default() += 1;
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        s.start();
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    });
    let acks = acks.lock().expect("acks").clone();
    let errors = errors.lock().expect("errors").clone();
    println!(
        "{} orders acknowledged ({} approved) in {:.1}s; kills {kills:?}; errors seen by cardholders {errors:?}",
        acks.len(),
        acks.iter().filter(|a| a.approved).count(),
        started.elapsed().as_secs_f64()
    );

    // A carrier operator delivers the newest shipments (the merchant polls those soonest).
    let delivered: Vec<String> = if can_advance {
        let c = rt.block_on(db.open(Party::Carrier));
        let newest = rt
            .block_on(c.list_shipments(DELIVER, 0))
            .expect("shipments");
        rt.block_on(c.close());
        let carrier_url = format!("http://127.0.0.1:{}", services[1].port);
        let newest: Vec<_> = newest
            .into_iter()
            .filter(|s| {
                matches!(
                    s.status,
                    ShipmentStatus::Accepted | ShipmentStatus::PickedUp | ShipmentStatus::InTransit
                )
            })
            .collect();
        for s in &newest {
            ok(warifu()
                .args(["carrier", "advance", "--url", &carrier_url])
                .args(["--token-file", path(&token_file)])
                .args([s.tracking_number.as_str(), "--to", "delivered"]));
        }
        newest
            .into_iter()
            .map(|s| s.order_id.into_string())
            .collect()
    } else {
        Vec::new()
    };
    // Let the merchant's worker finish what the crashes left outstanding (captures, voids,
    // and the delivery of the shipments just delivered; the other parcels stay with the
    // carrier, so their orders rest in `captured` with a delivery poll pending).
    let drained = rt.block_on(async {
        let m = db.open(Party::Merchant).await;
        let deadline = Instant::now() + DRAIN;
        let mut last = (u64::MAX, 0);
        while Instant::now() < deadline {
            let pending = m.outbox_pending().await.expect("outbox");
            let unrested = m
                .count_orders_by_state()
                .await
                .expect("counts")
                .into_iter()
                .filter(|(s, _)| !resting(*s))
                .map(|(_, n)| n)
                .sum::<u64>();
            let mut undelivered = 0;
            for id in &delivered {
                let o = m.get_order(&OrderId::from(id)).await.expect("order");
                if o.is_none_or(|o| o.state != OrderState::Delivered) {
                    undelivered += 1;
                }
            }
            last = (pending, unrested + undelivered);
            if unrested == 0 && undelivered == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        m.close().await;
        last
    });
    println!(
        "after the drain: {} outbox messages pending (delivery polls of parcels not yet delivered), {} orders not resting or not yet seen delivered",
        drained.0, drained.1
    );
    for s in &mut services {
        s.kill();
    }
    let books = rt.block_on(read_books(&db));
    let mut states = BTreeMap::<&str, u64>::new();
    for o in &books.orders {
        *states.entry(o.state.as_str()).or_default() += 1;
    }
    println!(
        "merchant orders by state {states:?}; {} authorizations, {} shipments",
        books.authorizations.len(),
        books.shipments.len()
    );
    let mut found = problems(&acks, &books);
    for id in &delivered {
        match books.orders.iter().find(|o| &o.order_id == id) {
            Some(o) if o.state == OrderState::Delivered => {}
            o => found.push(format!(
                "order {id} was delivered by the carrier but the merchant has it {:?}",
                o.map(|o| o.state.as_str())
            )),
        }
    }
    assert!(
        found.is_empty(),
        "seed {seed}: {} problems:\n{}",
        found.len(),
        found.join("\n")
    );
    // Not vacuous: the load went through, every service died at least once and came back.
    assert!(
        acks.iter().filter(|a| a.approved).count() >= 20,
        "too few orders went through: {acks:?}"
    );
    assert!(kills.len() == 3, "every service must be killed: {kills:?}");
    let ids: BTreeSet<&str> = acks.iter().map(|a| a.order_id.as_str()).collect();
    assert_eq!(ids.len(), acks.len(), "an order id acknowledged twice");
}

#[test]
fn services_killed_at_random_lose_nothing_and_do_nothing_twice_sqlite() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    crash_run(Db::Sqlite(data), tmp.path());
}

#[test]
fn services_killed_at_random_lose_nothing_and_do_nothing_twice_postgres() {
    let Ok(url) = std::env::var("WARIFU_TEST_POSTGRES") else {
        eprintln!("WARIFU_TEST_POSTGRES is not set: skipping the PostgreSQL crash test");
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let db = Db::Postgres {
        url,
        prefix: format!("crash_{}", std::process::id()),
    };
    crash_run(db.clone(), tmp.path());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(db.drop_schemas());
}

/// The checks catch what they are for: a lost order, a double capture, a second shipment,
/// money held for a finished order, a stuck order.
#[test]
fn the_checks_fail_on_a_lost_order_a_double_capture_and_a_second_shipment() {
    let order = |id: &str, state: OrderState, tracking: Option<&str>| OrderRecord {
        order_id: id.into(),
        cardholder_id: "cardholder:a@mail.example".into(),
        issuer_id: ISSUER.into(),
        carrier_id: Some(CARRIER.into()),
        merchant_view: "{}".into(),
        amount: 1000,
        currency: "JPY".into(),
        state,
        decline_code: None,
        authorization_id: Some(format!("auth-{id}")),
        tracking_number: tracking.map(str::to_owned),
        carrier_part: None,
        version: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let auth = |id: &str, status: AuthorizationStatus, captured: u64| AuthorizationRecord {
        authorization_id: format!("auth-{id}"),
        merchant_id: MERCHANT.into(),
        order_id: id.into(),
        cardholder_id: "cardholder:a@mail.example".into(),
        card_id: Some("card-0".into()),
        amount: 1000,
        currency: "JPY".into(),
        payment_method: PaymentMethod::LumpSum,
        decline_code: None,
        status,
        held: 0,
        captured,
        refunded: 0,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let ship = |id: &str, t: &str| ShipmentRecord {
        tracking_number: t.into(),
        merchant_id: MERCHANT.into(),
        order_id: id.into(),
        cardholder_id: "cardholder:a@mail.example".into(),
        addressee: "x".into(),
        address: "y".into(),
        parcel: "p".into(),
        status: ShipmentStatus::Accepted,
        issuer_id: Some(ISSUER.into()),
        delivered_at_ms: None,
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let good = || Books {
        orders: vec![order("o1", OrderState::Captured, Some("T1"))],
        authorizations: vec![auth("o1", AuthorizationStatus::Captured, 1000)],
        shipments: vec![ship("o1", "T1")],
        settled: 1000,
        audit_problems: vec![],
    };
    let ack = |id: &str| Ack {
        order_id: id.into(),
        approved: true,
        state: "captured".into(),
        cancelled: false,
    };
    assert_eq!(problems(&[ack("o1")], &good()), Vec::<String>::new());
    // A cancelled order still captured (nothing refunded) is caught.
    let cancelled = Ack {
        cancelled: true,
        ..ack("o1")
    };
    assert!(!problems(&[cancelled], &good()).is_empty());
    // A lost order.
    assert!(!problems(&[ack("o1"), ack("o2")], &good()).is_empty());
    // A double capture, in the authorization and in the settlement.
    let mut b = good();
    b.authorizations[0].captured = 2000;
    assert!(!problems(&[ack("o1")], &b).is_empty());
    let mut b = good();
    b.settled = 2000;
    assert!(!problems(&[ack("o1")], &b).is_empty());
    // Authorized twice.
    let mut b = good();
    b.authorizations
        .push(auth("o1", AuthorizationStatus::Held, 0));
    assert!(!problems(&[ack("o1")], &b).is_empty());
    // A second shipment.
    let mut b = good();
    b.shipments.push(ship("o1", "T2"));
    assert!(!problems(&[ack("o1")], &b).is_empty());
    // Stuck, or money still held.
    let mut b = good();
    b.orders[0].state = OrderState::Shipped;
    assert!(!problems(&[ack("o1")], &b).is_empty());
    let mut b = good();
    b.orders[0].state = OrderState::Voided;
    b.authorizations[0].status = AuthorizationStatus::Held;
    b.authorizations[0].captured = 0;
    b.settled = 0;
    assert!(!problems(&[ack("o1")], &b).is_empty());
    // An unclean audit.
    let mut b = good();
    b.audit_problems.push("ledger".into());
    assert!(!problems(&[ack("o1")], &b).is_empty());
}
