//! The hot path's writes (issue 14): the pinned intake, transitions that carry their facts and
//! answers and return the new row, and messages born leased to the request that runs them.

use warifu_core::OrderId;
use warifu_store::*;

use crate::both;
use crate::common::{NOW, TestDb};
use crate::merchant::new_order;

both!(
    pinned_intake_is_one_transaction,
    a_held_message_is_not_claimed_while_its_run_lasts,
    a_transition_carries_facts_and_answers_and_returns_the_row,
);

fn pin(key: &str, fingerprint: &[u8]) -> Pin {
    Pin {
        scope: "submit-bundle".into(),
        key: key.into(),
        fingerprint: fingerprint.to_vec(),
    }
}

async fn pinned_intake_is_one_transaction(db: &TestDb) {
    let s = &db.store;
    let o = new_order("P-1", 1200);
    let msg = NewOutboxMessage::new("authorize", b"{}".to_vec());
    let first = s
        .insert_order_pinned(&pin("P-1", b"fp-a"), &o, std::slice::from_ref(&msg))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.record.order.state, OrderState::Received);
    assert_eq!(first.record.outbox.len(), 1);
    assert_eq!(first.record.outbox[0].kind, "authorize");
    assert!(!first.record.outbox[0].done);
    assert_eq!(
        s.outbox_for_order(&OrderId::from("P-1")).await.unwrap(),
        first.record.outbox
    );
    // The same request again: the stored order, nothing enqueued.
    let again = s
        .insert_order_pinned(&pin("P-1", b"fp-a"), &o, std::slice::from_ref(&msg))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record.order, first.record.order);
    assert!(again.record.outbox.is_empty());
    assert_eq!(
        s.outbox_for_order(&OrderId::from("P-1"))
            .await
            .unwrap()
            .len(),
        1
    );
    // Another bundle under the same key: a conflict, nothing written.
    let mut other = new_order("P-1", 9999);
    other.merchant_view = "{}".into();
    assert!(matches!(
        s.insert_order_pinned(&pin("P-1", b"fp-b"), &other, std::slice::from_ref(&msg))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_order(&OrderId::from("P-1"))
            .await
            .unwrap()
            .unwrap()
            .amount,
        1200
    );
    assert_eq!(
        s.outbox_for_order(&OrderId::from("P-1"))
            .await
            .unwrap()
            .len(),
        1
    );
    // A pin taken by an earlier request with another fingerprint blocks a new order too, and
    // the order is not written.
    s.idempotency_put(
        "submit-bundle",
        "P-2",
        &StoredResponse {
            status: 0,
            body: Vec::new(),
            fingerprint: b"fp-x".to_vec(),
            created_at_ms: NOW,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        s.insert_order_pinned(&pin("P-2", b"fp-y"), &new_order("P-2", 1), &[msg])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.get_order(&OrderId::from("P-2")).await.unwrap().is_none());
    assert!(
        s.outbox_for_order(&OrderId::from("P-2"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_held_message_is_not_claimed_while_its_run_lasts(db: &TestDb) {
    let s = &db.store;
    let grace = 2_000;
    let msg = NewOutboxMessage::new("authorize", b"{}".to_vec());
    let placed = s
        .insert_order_pinned(
            &pin("L-1", b"fp"),
            &new_order("L-1", 100),
            std::slice::from_ref(&msg),
        )
        .await
        .unwrap();
    let id = placed.record.outbox[0].id;
    assert_eq!(placed.record.outbox[0].next_attempt_at_ms, NOW);
    // A worker (of any replica) at wall time `w` claims what was due by `w - grace`: it leaves
    // a fresh message to the request running it for a grace…
    let worker = |w: i64| s.claim_outbox(w - grace, 1000, 10);
    assert!(worker(NOW + grace - 1).await.unwrap().is_empty());
    // …and the request, still running it at NOW + 1.5 s, holds it for another grace.
    assert!(s.hold_outbox(id, NOW + 1_500).await.unwrap());
    assert!(worker(NOW + grace).await.unwrap().is_empty());
    assert!(worker(NOW + 1_500 + grace - 1).await.unwrap().is_empty());
    assert!(s.hold_outbox(id, NOW + 3_000).await.unwrap());
    assert!(worker(NOW + 3_000 + grace - 1).await.unwrap().is_empty());
    // A hold never moves the due time back, and a done message is not held.
    assert!(!s.hold_outbox(id, NOW + 2_000).await.unwrap());
    let t = Transition::new(
        "L-1",
        OrderState::Received,
        OrderState::Authorized,
        NOW + 3_100,
    )
    .complete(id)
    .send("capture", b"{}".to_vec());
    let applied = s.apply_transition(&t).await.unwrap().unwrap();
    assert!(!s.hold_outbox(id, NOW + 9_000).await.unwrap());
    // Never claimed: the run delivered it; the next message is due at once.
    let claimed = s.claim_outbox(NOW + 3_100, 1000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, applied.outbox[0].id);
    assert_eq!(claimed[0].kind, "capture");
    s.complete_outbox(claimed[0].id).await.unwrap();
    // A run that died stops holding: its message is claimed once the hold is over.
    let placed = s
        .insert_order_pinned(&pin("L-2", b"fp"), &new_order("L-2", 100), &[msg])
        .await
        .unwrap();
    let dead = placed.record.outbox[0].id;
    assert!(s.hold_outbox(dead, NOW + 10_000).await.unwrap());
    assert!(
        s.claim_outbox(NOW + 9_999, 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let late = s.claim_outbox(NOW + 10_000, 1000, 10).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].id, dead);
}

async fn a_transition_carries_facts_and_answers_and_returns_the_row(db: &TestDb) {
    let s = &db.store;
    s.insert_order(&new_order("T-1", 500), &[]).await.unwrap();
    let answer = StoredResponse {
        status: 200,
        body: b"{\"approved\":true}".to_vec(),
        fingerprint: Vec::new(),
        created_at_ms: NOW,
    };
    let t = Transition::new(
        "T-1",
        OrderState::Received,
        OrderState::ShippingRequested,
        NOW + 1,
    )
    .authorization_id("AUTH-1")
    .fact("payment", b"{\"captured\":0}".to_vec())
    .record("decision", "T-1", answer.clone())
    .send("ship", b"{}".to_vec());
    let applied = s.apply_transition(&t).await.unwrap().unwrap();
    // The row as it now is, without reading it back.
    assert_eq!(
        applied.order,
        s.get_order(&OrderId::from("T-1")).await.unwrap().unwrap()
    );
    assert_eq!(applied.order.version, 2);
    assert_eq!(applied.order.authorization_id.as_deref(), Some("AUTH-1"));
    assert_eq!(
        applied.outbox,
        s.outbox_for_order(&OrderId::from("T-1")).await.unwrap()
    );
    let facts = s.order_facts(&OrderId::from("T-1")).await.unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].body, b"{\"captured\":0}");
    assert_eq!(
        s.idempotency_get("decision", "T-1").await.unwrap(),
        Some(answer.clone())
    );
    // A transition that does not apply writes none of it; a first answer is never replaced.
    let stale = Transition::new("T-1", OrderState::Received, OrderState::Declined, NOW + 2)
        .fact("delivery", b"lost".to_vec())
        .record(
            "decision",
            "T-1",
            StoredResponse {
                body: b"{}".to_vec(),
                ..answer.clone()
            },
        )
        .send("void", b"{}".to_vec());
    assert!(s.apply_transition(&stale).await.unwrap().is_none());
    assert_eq!(s.order_facts(&OrderId::from("T-1")).await.unwrap().len(), 1);
    assert_eq!(
        s.outbox_for_order(&OrderId::from("T-1"))
            .await
            .unwrap()
            .len(),
        1
    );
    let replace = Transition::new(
        "T-1",
        OrderState::ShippingRequested,
        OrderState::Shipped,
        NOW + 3,
    )
    .fact("payment", b"{\"captured\":500}".to_vec())
    .record(
        "decision",
        "T-1",
        StoredResponse {
            body: b"{}".to_vec(),
            ..answer.clone()
        },
    );
    let applied = s.apply_transition(&replace).await.unwrap().unwrap();
    assert!(applied.outbox.is_empty());
    assert_eq!(
        s.order_facts(&OrderId::from("T-1")).await.unwrap()[0].body,
        b"{\"captured\":500}"
    );
    assert_eq!(
        s.idempotency_get("decision", "T-1").await.unwrap(),
        Some(answer)
    );
    // The compare-and-set still tells a missing order from a moved one.
    let missing = Transition::new("T-404", OrderState::Received, OrderState::Declined, NOW);
    assert!(matches!(
        s.apply_transition(&missing).await,
        Err(StoreError::NotFound(_))
    ));
}
