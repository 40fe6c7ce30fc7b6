//! MerchantStore: order forms, orders, compare-and-set transitions, the outbox.

use std::collections::HashSet;
use warifu_core::OrderId;

use warifu_store::*;

use crate::both;
use crate::common::{NOW, TestDb, triples};

pub fn new_order(id: &str, amount: u64) -> NewOrder {
    NewOrder {
        order_id: id.into(),
        cardholder_id: "cardholder:alice@mail.example".into(),
        issuer_id: "issuer:bank.example".into(),
        carrier_id: Some("carrier:post.example".into()),
        merchant_view: format!(
            r#"{{"lines":[{{"product_number":"A1","quantity":1}}],"amount":{amount}}}"#
        ),
        amount,
        currency: "JPY".into(),
        carrier_part: Some(vec![0xca, 0xfe, 0x00, 0x01]),
        now_ms: NOW,
    }
}

both!(
    order_forms,
    insert_order_is_idempotent,
    transition_is_compare_and_set,
    outbox_is_written_in_the_transaction,
    outbox_claim_lease_retry,
    concurrent_claims_do_not_overlap,
    list_and_count,
    concurrent_transitions_apply_once,
    failed_writes_roll_back_alone,
    buckets_by_minute,
    facts_move_only_forward,
);

async fn order_forms(db: &TestDb) {
    let s = &db.store;
    let f = OrderFormRecord {
        order_id: "F-1".into(),
        form_json: r#"{"order_id":"F-1"}"#.into(),
        expires_at_ms: NOW + 600_000,
        created_at_ms: NOW,
    };
    s.put_order_form(&f).await.unwrap();
    assert_eq!(
        s.get_order_form(&OrderId::from("F-1")).await.unwrap(),
        Some(f.clone())
    );
    assert!(
        s.get_order_form(&OrderId::from("F-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        s.put_order_form(&f).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn insert_order_is_idempotent(db: &TestDb) {
    let s = &db.store;
    let o = new_order("O-1", 1200);
    let first = s
        .insert_order(
            &o,
            &[NewOutboxMessage::new("authorize", b"issuer part".to_vec())],
        )
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.record.state, OrderState::Received);
    assert_eq!(
        s.get_order(&OrderId::from("O-1")).await.unwrap(),
        Some(first.record.clone())
    );

    // A replay (even with other content) writes nothing and returns the first order.
    let mut replay = new_order("O-1", 99_999);
    replay.merchant_view = "{}".into();
    let second = s
        .insert_order(
            &replay,
            &[NewOutboxMessage::new("authorize", b"again".to_vec())],
        )
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.record.amount, 1200);
    assert_eq!(second.record, first.record);
    let msgs = s.outbox_for_order(&OrderId::from("O-1")).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload, b"issuer part");
    assert_eq!(s.outbox_pending().await.unwrap(), 1);

    // Amounts beyond the column are refused, not wrapped.
    let huge = new_order("O-2", u64::MAX);
    assert!(matches!(
        s.insert_order(&huge, &[]).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(s.get_order(&OrderId::from("O-2")).await.unwrap().is_none());
}

async fn transition_is_compare_and_set(db: &TestDb) {
    let s = &db.store;
    s.insert_order(&new_order("O-1", 500), &[]).await.unwrap();
    let t = Transition::new("O-1", OrderState::Received, OrderState::Authorized, NOW + 1)
        .authorization_id("AUTH-1");
    assert!(s.transition(&t).await.unwrap());
    // The same transition again does not apply: the order is no longer received.
    assert!(!s.transition(&t).await.unwrap());
    let o = s.get_order(&OrderId::from("O-1")).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Authorized);
    assert_eq!(o.authorization_id.as_deref(), Some("AUTH-1"));
    assert_eq!(o.version, 2);
    assert_eq!(o.updated_at_ms, NOW + 1);
    assert!(o.carrier_part.is_some());

    // A wrong from-state changes nothing.
    let wrong = Transition::new("O-1", OrderState::Shipped, OrderState::Captured, NOW + 2);
    assert!(!s.transition(&wrong).await.unwrap());
    assert_eq!(
        s.get_order(&OrderId::from("O-1")).await.unwrap().unwrap(),
        o
    );

    // Several from-states; fields set, carrier part erased; earlier fields kept.
    let ship = Transition::new("O-1", OrderState::Received, OrderState::Shipped, NOW + 3)
        .or_from(OrderState::Authorized)
        .tracking_number("TRK-9")
        .clear_carrier_part();
    assert!(s.transition(&ship).await.unwrap());
    let o = s.get_order(&OrderId::from("O-1")).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Shipped);
    assert_eq!(o.tracking_number.as_deref(), Some("TRK-9"));
    assert_eq!(o.authorization_id.as_deref(), Some("AUTH-1"));
    assert_eq!(o.carrier_part, None);
    assert_eq!(o.version, 3);

    let missing = Transition::new("nope", OrderState::Received, OrderState::Declined, NOW);
    assert!(matches!(
        s.transition(&missing).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn outbox_is_written_in_the_transaction(db: &TestDb) {
    let s = &db.store;
    let ins = s
        .insert_order(
            &new_order("O-1", 700),
            &[NewOutboxMessage::new("authorize", b"a".to_vec())],
        )
        .await
        .unwrap();
    assert!(ins.created);
    let claimed = s.claim_outbox(NOW, 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let auth_msg = claimed[0].id;

    // The answer arrives: transition, enqueue the next message and complete this one, at once.
    let t = Transition::new(
        "O-1",
        OrderState::Received,
        OrderState::Authorized,
        NOW + 10,
    )
    .authorization_id("A-1")
    .send("ship", b"carrier part".to_vec())
    .complete(auth_msg);
    assert!(s.transition(&t).await.unwrap());
    let msgs = s.outbox_for_order(&OrderId::from("O-1")).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0].done);
    assert_eq!((msgs[1].kind.as_str(), msgs[1].done), ("ship", false));
    assert_eq!(msgs[1].next_attempt_at_ms, NOW + 10);

    // A transition that does not apply enqueues nothing and completes nothing.
    let stale = Transition::new("O-1", OrderState::Received, OrderState::Declined, NOW + 11)
        .send("notify", b"x".to_vec())
        .complete(msgs[1].id);
    assert!(!s.transition(&stale).await.unwrap());
    let after = s.outbox_for_order(&OrderId::from("O-1")).await.unwrap();
    assert_eq!(after, msgs);

    // A transition whose message cannot be written rolls back the state change too.
    let bad = Transition::new(
        "O-1",
        OrderState::Authorized,
        OrderState::Cancelled,
        NOW + 12,
    )
    .send("", b"x".to_vec());
    assert!(s.transition(&bad).await.is_err());
    let o = s.get_order(&OrderId::from("O-1")).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Authorized);
    assert_eq!(
        s.outbox_for_order(&OrderId::from("O-1")).await.unwrap(),
        msgs
    );
}

async fn outbox_claim_lease_retry(db: &TestDb) {
    let s = &db.store;
    for i in 0..3 {
        s.insert_order(
            &new_order(&format!("O-{i}"), 100),
            &[NewOutboxMessage::new("authorize", vec![i as u8])],
        )
        .await
        .unwrap();
    }
    assert!(s.claim_outbox(NOW - 1, 1000, 10).await.unwrap().is_empty());
    let first = s.claim_outbox(NOW, 1000, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        first
            .iter()
            .all(|m| m.attempts == 1 && m.next_attempt_at_ms == NOW + 1000)
    );
    // Leased: a second claim gets only the third message.
    let second = s.claim_outbox(NOW + 1, 1000, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].order_id, "O-2");
    // The peer was down: retry the first later.
    s.retry_outbox(
        first[0].id,
        NOW + 5000,
        "peer_unavailable: connection refused",
    )
    .await
    .unwrap();
    s.complete_outbox(first[1].id).await.unwrap();
    s.complete_outbox(second[0].id).await.unwrap();
    assert_eq!(s.outbox_pending().await.unwrap(), 1);
    assert!(
        s.claim_outbox(NOW + 4999, 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.claim_outbox(NOW + 5000, 1000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("peer_unavailable: connection refused")
    );
    assert!(matches!(
        s.complete_outbox(999_999).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.retry_outbox(999_999, NOW, "x").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn concurrent_claims_do_not_overlap(db: &TestDb) {
    let s = &db.store;
    for i in 0..60 {
        s.insert_order(
            &new_order(&format!("O-{i}"), 100),
            &[NewOutboxMessage::new("authorize", vec![1])],
        )
        .await
        .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = s.claim_outbox(NOW, 60_000, 7).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                got.extend(batch.into_iter().map(|m| m.id));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every message claimed exactly once");
    assert_eq!(unique.len(), 60);
}

async fn list_and_count(db: &TestDb) {
    let s = &db.store;
    for i in 0..5 {
        let mut o = new_order(&format!("O-{i}"), 100 + i);
        o.now_ms = NOW + i as i64;
        if i == 4 {
            o.cardholder_id = "cardholder:bob@mail.example".into();
        }
        s.insert_order(&o, &[]).await.unwrap();
    }
    s.transition(
        &Transition::new("O-1", OrderState::Received, OrderState::Declined, NOW + 9)
            .decline_code("insufficient_credit"),
    )
    .await
    .unwrap();
    let all = s.list_orders(&OrderFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|o| o.order_id.as_str()).collect::<Vec<_>>(),
        ["O-4", "O-3", "O-2", "O-1", "O-0"]
    );
    let alice = s
        .list_orders(&OrderFilter {
            cardholder_id: Some("cardholder:alice@mail.example".into()),
            state: Some(OrderState::Received),
            limit: Some(2),
            offset: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(
        alice
            .iter()
            .map(|o| o.order_id.as_str())
            .collect::<Vec<_>>(),
        ["O-2", "O-0"]
    );
    let declined = s
        .list_orders(&OrderFilter {
            state: Some(OrderState::Declined),
            ..OrderFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(declined.len(), 1);
    assert_eq!(
        declined[0].decline_code.as_deref(),
        Some("insufficient_credit")
    );
    let counts = s.count_orders_by_state().await.unwrap();
    assert!(counts.contains(&(OrderState::Received, 4)));
    assert!(counts.contains(&(OrderState::Declined, 1)));
}

async fn concurrent_transitions_apply_once(db: &TestDb) {
    let s = &db.store;
    s.insert_order(&new_order("O-1", 100), &[]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let t = Transition::new("O-1", OrderState::Received, OrderState::Authorized, NOW)
                .send("ship", vec![i]);
            s.transition(&t).await.unwrap()
        }));
    }
    let mut applied = 0;
    for t in tasks {
        applied += usize::from(t.await.unwrap());
    }
    assert_eq!(applied, 1);
    assert_eq!(
        s.outbox_for_order(&OrderId::from("O-1"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get_order(&OrderId::from("O-1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

/// Many writes at once (SQLite commits them together): the failing ones leave nothing
/// behind, the others all commit.
async fn failed_writes_roll_back_alone(db: &TestDb) {
    let s = &db.store;
    for i in 0..40 {
        s.insert_order(&new_order(&format!("O-{i}"), 100), &[])
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            // Odd orders fail after their state change was written: an empty outbox kind.
            let kind = if i % 2 == 0 { "ship" } else { "" };
            let t = Transition::new(
                format!("O-{i}"),
                OrderState::Received,
                OrderState::Authorized,
                NOW,
            )
            .send(kind, vec![1]);
            (i, s.transition(&t).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(r.is_ok(), i % 2 == 0, "order {i}: {r:?}");
    }
    for i in 0..40 {
        let o = s
            .get_order(&format!("O-{i}").into())
            .await
            .unwrap()
            .unwrap();
        let msgs = s.outbox_for_order(&o.order_id).await.unwrap();
        if i % 2 == 0 {
            assert_eq!(
                (o.state, o.version, msgs.len()),
                (OrderState::Authorized, 2, 1)
            );
        } else {
            assert_eq!(
                (o.state, o.version, msgs.len()),
                (OrderState::Received, 1, 0)
            );
        }
    }
}

/// The dashboard's charts: orders by minute of receipt and outcome, the outbox's pending
/// messages by minute of enqueueing (older ones in the window's first minute).
async fn buckets_by_minute(db: &TestDb) {
    const MIN: i64 = 60_000;
    let s = &db.store;
    assert!(s.order_buckets(NOW, MIN).await.unwrap().is_empty());
    assert!(s.outbox_pending_buckets(NOW, MIN).await.unwrap().is_empty());
    assert!(matches!(
        s.order_buckets(NOW, 0).await,
        Err(StoreError::Invalid(_))
    ));
    for (id, at) in [
        ("O-old", NOW - 2 * MIN),
        ("O-0", NOW),
        ("O-1", NOW + 1000),
        ("O-2", NOW + MIN),
    ] {
        let mut o = new_order(id, 100);
        o.now_ms = at;
        let msgs = [NewOutboxMessage::new("authorize", b"part".to_vec())];
        s.insert_order(&o, if id == "O-2" { &[] } else { &msgs })
            .await
            .unwrap();
    }
    let t = |id, to, now| Transition::new(id, OrderState::Received, to, now);
    s.transition(&t("O-1", OrderState::Declined, NOW + 2000).decline_code("insufficient_credit"))
        .await
        .unwrap();
    s.transition(&t("O-2", OrderState::Authorized, NOW + MIN).authorization_id("AUTH-2"))
        .await
        .unwrap();
    assert_eq!(
        triples(&s.order_buckets(NOW - MIN, MIN).await.unwrap()),
        [
            (NOW, "insufficient_credit", 1),
            (NOW, "received", 1),
            (NOW + MIN, "approved", 1)
        ]
    );
    assert_eq!(
        triples(&s.outbox_pending_buckets(NOW - MIN, MIN).await.unwrap()),
        [(NOW - MIN, "authorize", 1), (NOW, "authorize", 2)]
    );
}

/// `put_order_fact_over` writes a fact only over the bodies it may replace: a later status
/// written meanwhile stays, the same one again is not a write, an absent one is inserted.
async fn facts_move_only_forward(db: &TestDb) {
    let s = &db.store;
    s.insert_order(&new_order("O-F", 500), &[]).await.unwrap();
    let fact = |body: &str| OrderFact {
        order_id: "O-F".into(),
        kind: "delivery".into(),
        body: body.as_bytes().to_vec(),
        updated_at_ms: NOW,
    };
    let before = |names: &[&str]| {
        names
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    let body = || async {
        let facts = s.order_facts(&OrderId::from("O-F")).await.unwrap();
        String::from_utf8(facts[0].body.clone()).unwrap()
    };
    assert!(
        s.put_order_fact_over(&fact("accepted"), &[]).await.unwrap(),
        "absent: inserted"
    );
    assert!(
        !s.put_order_fact_over(&fact("accepted"), &[]).await.unwrap(),
        "present: kept"
    );
    let in_transit = before(&["accepted", "picked_up"]);
    assert!(
        s.put_order_fact_over(&fact("in_transit"), &in_transit)
            .await
            .unwrap()
    );
    assert_eq!(body().await, "in_transit");
    // A poll's older answer arriving late does not step it back.
    assert!(
        !s.put_order_fact_over(&fact("picked_up"), &before(&["accepted"]))
            .await
            .unwrap()
    );
    assert!(
        !s.put_order_fact_over(&fact("in_transit"), &in_transit)
            .await
            .unwrap(),
        "again"
    );
    assert_eq!(body().await, "in_transit");
    s.put_order_fact(&fact("delivered")).await.unwrap();
    assert!(
        !s.put_order_fact_over(&fact("in_transit"), &in_transit)
            .await
            .unwrap()
    );
    assert_eq!(body().await, "delivered");
}
