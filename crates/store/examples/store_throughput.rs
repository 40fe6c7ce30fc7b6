//! Measures the store's write throughput: concurrent order inserts and transitions.
//!
//! `cargo run --release -p warifu-store --example store_throughput -- [URL] [ORDERS] [TASKS]`
//! (URL default: a SQLite file in a temporary directory; `normal` for synchronous=NORMAL).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;
use warifu_core::OrderId;

use warifu_store::*;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir().unwrap();
    let what = args.get(1).cloned().unwrap_or_else(|| "full".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let tasks: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(32);
    let mut schema = None;
    let opts = match what.as_str() {
        "full" | "normal" => {
            let o = StoreOptions::new(Store::party_url(dir.path(), Party::Merchant).unwrap());
            if what == "normal" {
                o.synchronous(Synchronous::Normal)
            } else {
                o
            }
        }
        url => {
            let s = format!("warifu_bench_{}", std::process::id());
            schema = Some(s.clone());
            StoreOptions::new(url).schema(s)
        }
    };
    let store = Arc::new(Store::open_with(opts).await.unwrap());
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let id = format!("O-{i}");
                s.insert_order(
                    &NewOrder {
                        order_id: id.clone().into(),
                        cardholder_id: "cardholder:a".into(),
                        issuer_id: "issuer:b".into(),
                        carrier_id: None,
                        merchant_view: "{}".into(),
                        amount: 100,
                        currency: "JPY".into(),
                        carrier_part: None,
                        now_ms: 0,
                    },
                    &[NewOutboxMessage::new("authorize", vec![0; 200])],
                )
                .await
                .unwrap();
                s.transition(&Transition::new(
                    &id,
                    OrderState::Received,
                    OrderState::Authorized,
                    1,
                ))
                .await
                .unwrap();
                i += tasks;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{what} merchant: {n} orders x 2 commits (insert + outbox, CAS transition) with {tasks} \
         tasks in {dt:.2} s = {:.0} commits/s",
        (2 * n) as f64 / dt
    );

    // Issuer: authorize + capture against one card per task.
    for t in 0..tasks {
        store
            .enroll_card(&NewCard {
                card_id: format!("C-{t}"),
                cardholder_id: format!("cardholder:{t}"),
                holder_name: "A".into(),
                number: warifu_core::secret::Secret::new(format!("4{t:015}")),
                expiry: warifu_core::order::Expiry {
                    year: 2099,
                    month: 1,
                },
                credit_limit: 1 << 40,
                currency: "JPY".into(),
                now_ms: 0,
            })
            .await
            .unwrap();
    }
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let order_id = format!("O-{i}");
                let a = s
                    .authorize(&AuthorizeRequest {
                        merchant_id: "merchant:m".into(),
                        order_id: order_id.clone().into(),
                        authorization_id: format!("A-{i}"),
                        cardholder_id: format!("cardholder:{t}"),
                        holder_name: "A".into(),
                        card_number: warifu_core::secret::Secret::new(format!("4{t:015}")),
                        expiry: warifu_core::order::Expiry {
                            year: 2099,
                            month: 1,
                        },
                        amount: 100,
                        currency: "JPY".into(),
                        payment_method: warifu_core::order::PaymentMethod::LumpSum,
                        carrier_id: None,
                        header_digest: [0; 32],
                        now_ms: 1_800_000_000_000,
                    })
                    .await
                    .unwrap();
                assert!(a.record.approved());
                s.capture("merchant:m", &OrderId::from(&order_id), None, 1)
                    .await
                    .unwrap();
                i += tasks;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{what} issuer: {n} orders x 2 commits (authorize, capture) with {tasks} tasks in \
         {dt:.2} s = {:.0} commits/s",
        (2 * n) as f64 / dt
    );
    let audit = store.audit().await.unwrap();
    assert!(audit.is_clean(), "{audit:?}");
    if let Some(schema) = schema {
        store.close().await;
        Store::drop_postgres_schema(&what, &schema).await.unwrap();
    }
}
