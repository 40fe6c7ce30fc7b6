//! CarrierStore: shipments (idempotent acceptance), status compare-and-set, events.

use warifu_core::OrderId;
use warifu_core::secret::Secret;
use warifu_store::*;

use crate::both;
use crate::common::{NOW, TestDb, triples};

pub const ADDRESS: &str = "1-2-3 Kanda, Chiyoda-ku, Tokyo";

pub fn shipment(order: &str, tracking: &str) -> NewShipment {
    NewShipment {
        merchant_id: "merchant:shop.example".into(),
        order_id: order.into(),
        cardholder_id: "cardholder:alice@mail.example".into(),
        issuer_id: "issuer:bank.example".into(),
        tracking_number: tracking.into(),
        addressee: Secret::new("Hanako Gift"),
        address: Secret::new(ADDRESS),
        parcel: r#"{"parcels":1,"weight_g":800}"#.into(),
        header_digest: [9; 32],
        now_ms: NOW,
    }
}

both!(
    accept_is_idempotent,
    lifecycle_is_compare_and_set,
    delivery_records_issuer_and_time,
    cancel_before_pickup_never_moves_again,
    cancel_after_pickup_returns,
    cancel_without_shipment_leaves_a_tombstone,
    buckets_by_minute,
    moves_enqueue_pushes_claimed_in_order,
);

async fn accept_is_idempotent(db: &TestDb) {
    let s = &db.store;
    let a = s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    assert!(a.created);
    assert_eq!(a.record.status, ShipmentStatus::Accepted);
    assert_eq!(a.record.issuer_id.as_deref(), Some("issuer:bank.example"));
    assert_eq!(a.record.delivered_at_ms, None);
    // A retried delivery request gets the first tracking number.
    let b = s.accept_shipment(&shipment("O-1", "TRK-2")).await.unwrap();
    assert!(!b.created);
    assert_eq!(b.record.tracking_number, "TRK-1");
    assert_eq!(b.record, a.record);
    assert!(s.shipment_by_tracking("TRK-2").await.unwrap().is_none());
    // A tracking number already used for another order is refused.
    assert!(matches!(
        s.accept_shipment(&shipment("O-2", "TRK-1")).await,
        Err(StoreError::Conflict(_))
    ));
    let got = s
        .get_shipment("merchant:shop.example", &OrderId::from("O-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.address.expose(), ADDRESS);
    assert_eq!(got, a.record);
    assert_eq!(s.list_shipments(10, 0).await.unwrap(), vec![got]);
    assert_eq!(s.shipment_events("TRK-1").await.unwrap().len(), 1);
}

async fn lifecycle_is_compare_and_set(db: &TestDb) {
    use ShipmentStatus::*;
    let s = &db.store;
    s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    assert!(
        s.advance_shipment("TRK-1", Accepted, PickedUp, None, NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        !s.advance_shipment("TRK-1", Accepted, PickedUp, None, NOW + 2)
            .await
            .unwrap()
    );
    assert!(
        s.advance_shipment("TRK-1", PickedUp, InTransit, Some("depot 7"), NOW + 3)
            .await
            .unwrap()
    );
    assert!(
        s.advance_shipment("TRK-1", InTransit, Delivered, Some("signed"), NOW + 4)
            .await
            .unwrap()
    );
    assert!(
        !s.advance_shipment("TRK-1", InTransit, Returned, None, NOW + 5)
            .await
            .unwrap()
    );
    assert!(matches!(
        s.advance_shipment("TRK-404", Accepted, PickedUp, None, NOW)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let ev = s.shipment_events("TRK-1").await.unwrap();
    assert_eq!(
        ev.iter().map(|e| (e.status, e.at_ms)).collect::<Vec<_>>(),
        [
            (Accepted, NOW),
            (PickedUp, NOW + 1),
            (InTransit, NOW + 3),
            (Delivered, NOW + 4)
        ]
    );
    assert_eq!(ev[3].note.as_deref(), Some("signed"));
    let sh = s.shipment_by_tracking("TRK-1").await.unwrap().unwrap();
    assert_eq!((sh.status, sh.updated_at_ms), (Delivered, NOW + 4));
}

async fn delivery_records_issuer_and_time(db: &TestDb) {
    use ShipmentStatus::*;
    let s = &db.store;
    s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    s.accept_shipment(&shipment("O-2", "TRK-2")).await.unwrap();
    for (from, to, at) in [(Accepted, PickedUp, 1), (PickedUp, InTransit, 2)] {
        assert!(
            s.advance_shipment("TRK-1", from, to, None, NOW + at)
                .await
                .unwrap()
        );
        let sh = s.shipment_by_tracking("TRK-1").await.unwrap().unwrap();
        assert_eq!(sh.delivered_at_ms, None, "not delivered yet after {to}");
    }
    assert!(
        s.advance_shipment("TRK-1", InTransit, Delivered, None, NOW + 7)
            .await
            .unwrap()
    );
    // A retried move does not change the delivery time.
    assert!(
        !s.advance_shipment("TRK-1", InTransit, Delivered, None, NOW + 9)
            .await
            .unwrap()
    );
    let sh = s.shipment_by_tracking("TRK-1").await.unwrap().unwrap();
    assert_eq!(sh.delivered_at_ms, Some(NOW + 7));
    assert_eq!(sh.issuer_id.as_deref(), Some("issuer:bank.example"));
    // A returned parcel has no delivery time.
    assert!(
        s.advance_shipment("TRK-2", Accepted, Returned, None, NOW + 3)
            .await
            .unwrap()
    );
    let other = s
        .get_shipment("merchant:shop.example", &OrderId::from("O-2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((other.status, other.delivered_at_ms), (Returned, None));
    // The issuer id is checked like every identifier.
    let mut bad = shipment("O-3", "TRK-3");
    bad.issuer_id = String::new();
    assert!(s.accept_shipment(&bad).await.is_err());
}

/// A carrier database written by schema version 1 (no issuer, no delivery time) is brought
/// to the current schema on open: its shipments keep working, with no issuer and so no
/// proof of delivery, and a delivery from then on records its time.
#[tokio::test]
async fn a_version_1_database_is_upgraded() {
    use ShipmentStatus::*;
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carrier.db");
    {
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
        let v1 = include_str!("../../src/migrations/0001_init.sql")
            .replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")
            .replace("{blob}", "BLOB");
        sqlx::raw_sql(&v1).execute(&mut c).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             applied_at_ms BIGINT NOT NULL); \
             INSERT INTO schema_version VALUES (1, 'init', 0); \
             INSERT INTO carrier_shipments (tracking_number, merchant_id, order_id, \
             cardholder_id, addressee, address, parcel, status, created_at_ms, updated_at_ms) \
             VALUES ('TRK-OLD', 'merchant:shop.example', 'O-OLD', 'cardholder:a@mail.example', \
             'A', 'B', 'p', 'in_transit', 1, 1);",
        )
        .execute(&mut c)
        .await
        .unwrap();
    }
    let s = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(s.schema_version().await.unwrap() >= 2);
    let old = s.shipment_by_tracking("TRK-OLD").await.unwrap().unwrap();
    assert_eq!((old.issuer_id, old.delivered_at_ms), (None, None));
    assert!(
        s.advance_shipment("TRK-OLD", InTransit, Delivered, None, NOW)
            .await
            .unwrap()
    );
    let old = s.shipment_by_tracking("TRK-OLD").await.unwrap().unwrap();
    assert_eq!((old.status, old.delivered_at_ms), (Delivered, Some(NOW)));
    s.close().await;
}

/// Issue 12.2: a shipment cancelled before pick-up never moves again; a delivered one refuses
/// the cancel. The header digest is kept for the proof of delivery.
async fn cancel_before_pickup_never_moves_again(db: &TestDb) {
    use ShipmentStatus::*;
    let s = &db.store;
    let m = "merchant:shop.example";
    s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    assert_eq!(
        s.shipment_header_digest("TRK-1").await.unwrap(),
        Some([9; 32])
    );
    let c = s
        .cancel_shipment(m, &OrderId::from("O-1"), "TOMB-1", NOW + 1)
        .await
        .unwrap();
    assert!(c.applied);
    assert_eq!(
        (c.record.status, c.record.tracking_number.as_str()),
        (Cancelled, "TRK-1")
    );
    let again = s
        .cancel_shipment(m, &OrderId::from("O-1"), "TOMB-2", NOW + 2)
        .await
        .unwrap();
    assert!(!again.applied);
    assert_eq!(again.record.status, Cancelled);
    for to in [PickedUp, InTransit, Delivered, Returned] {
        assert!(
            matches!(
                s.advance_shipment("TRK-1", Cancelled, to, None, NOW + 3)
                    .await,
                Err(StoreError::Conflict(_))
            ),
            "cancelled → {to}"
        );
    }
    // A retried shipment request finds it cancelled.
    let late = s.accept_shipment(&shipment("O-1", "TRK-9")).await.unwrap();
    assert!(!late.created);
    assert_eq!(late.record.status, Cancelled);
    // Delivered: the cancel is refused and nothing changes.
    s.accept_shipment(&shipment("O-2", "TRK-2")).await.unwrap();
    for (from, to) in [
        (Accepted, PickedUp),
        (PickedUp, InTransit),
        (InTransit, Delivered),
    ] {
        assert!(
            s.advance_shipment("TRK-2", from, to, None, NOW + 4)
                .await
                .unwrap()
        );
    }
    assert!(matches!(
        s.cancel_shipment(m, &OrderId::from("O-2"), "TOMB-3", NOW + 5)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let d = s.shipment_by_tracking("TRK-2").await.unwrap().unwrap();
    assert_eq!(d.status, Delivered);
    let ev = s.shipment_events("TRK-1").await.unwrap();
    assert_eq!(
        ev.iter().map(|e| e.status).collect::<Vec<_>>(),
        [Accepted, Cancelled]
    );
}

/// Issue 12.2: cancelled after pick-up, a parcel returns: it can become returned, never
/// delivered.
async fn cancel_after_pickup_returns(db: &TestDb) {
    use ShipmentStatus::*;
    let s = &db.store;
    let m = "merchant:shop.example";
    s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    s.advance_shipment("TRK-1", Accepted, PickedUp, None, NOW + 1)
        .await
        .unwrap();
    let c = s
        .cancel_shipment(m, &OrderId::from("O-1"), "TOMB-1", NOW + 2)
        .await
        .unwrap();
    assert!(c.applied);
    assert_eq!(c.record.status, Returning);
    assert!(
        !s.cancel_shipment(m, &OrderId::from("O-1"), "TOMB-1", NOW + 3)
            .await
            .unwrap()
            .applied
    );
    assert!(matches!(
        s.advance_shipment("TRK-1", Returning, Delivered, None, NOW + 4)
            .await,
        Err(StoreError::Conflict(_))
    ));
    // A move from the state before the cancel no longer applies.
    assert!(
        !s.advance_shipment("TRK-1", PickedUp, InTransit, None, NOW + 4)
            .await
            .unwrap()
    );
    assert!(
        s.advance_shipment("TRK-1", Returning, Returned, None, NOW + 5)
            .await
            .unwrap()
    );
    let r = s.shipment_by_tracking("TRK-1").await.unwrap().unwrap();
    assert_eq!((r.status, r.delivered_at_ms), (Returned, None));
    // Cancelling a returned parcel changes nothing.
    let again = s
        .cancel_shipment(m, &OrderId::from("O-1"), "TOMB-2", NOW + 6)
        .await
        .unwrap();
    assert_eq!((again.applied, again.record.status), (false, Returned));
}

/// Issue 12.2: a cancel for an order the carrier holds no shipment for leaves a tombstone, so a
/// late shipment request for it finds the cancellation, not a new shipment.
async fn cancel_without_shipment_leaves_a_tombstone(db: &TestDb) {
    use ShipmentStatus::*;
    let s = &db.store;
    let m = "merchant:shop.example";
    let c = s
        .cancel_shipment(m, &OrderId::from("O-1"), "TOMB-1", NOW)
        .await
        .unwrap();
    assert!(c.applied);
    assert_eq!(
        (c.record.status, c.record.tracking_number.as_str()),
        (Cancelled, "TOMB-1")
    );
    assert_eq!(c.record.address.expose(), "");
    let stored = s
        .get_shipment(m, &OrderId::from("O-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, c.record);
    assert_eq!(s.shipment_header_digest("TOMB-1").await.unwrap(), None);
    let again = s
        .cancel_shipment(m, &OrderId::from("O-1"), "TOMB-2", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        (again.applied, again.record.tracking_number.as_str()),
        (false, "TOMB-1")
    );
    let late = s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    assert!(!late.created);
    assert_eq!(
        (late.record.status, late.record.tracking_number.as_str()),
        (Cancelled, "TOMB-1")
    );
    assert!(s.shipment_by_tracking("TRK-1").await.unwrap().is_none());
}

/// The dashboard's chart: shipment events by minute and the status moved to.
async fn buckets_by_minute(db: &TestDb) {
    use ShipmentStatus::*;
    const MIN: i64 = 60_000;
    let s = &db.store;
    assert!(s.shipment_event_buckets(NOW, MIN).await.unwrap().is_empty());
    for (order, tracking) in [("O-1", "TRK-1"), ("O-2", "TRK-2")] {
        s.accept_shipment(&shipment(order, tracking)).await.unwrap();
    }
    s.advance_shipment("TRK-1", Accepted, PickedUp, None, NOW + 5)
        .await
        .unwrap();
    s.advance_shipment("TRK-1", PickedUp, InTransit, None, NOW + MIN)
        .await
        .unwrap();
    s.advance_shipment("TRK-1", InTransit, Delivered, None, NOW + MIN + 1)
        .await
        .unwrap();
    assert_eq!(
        triples(&s.shipment_event_buckets(NOW, MIN).await.unwrap()),
        [
            (NOW, "accepted", 2),
            (NOW, "picked_up", 1),
            (NOW + MIN, "delivered", 1),
            (NOW + MIN, "in_transit", 1)
        ]
    );
    assert!(
        s.shipment_event_buckets(NOW + 2 * MIN, MIN)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Each move to picked up, in transit, delivered or returned enqueues a delivery event with
/// it; a cancel's outcome does not. One shipment's events are claimed in order (the next only
/// once the previous is done), leased, retried, and ended as sent, refused or failed.
async fn moves_enqueue_pushes_claimed_in_order(db: &TestDb) {
    use ShipmentStatus::*;
    let s = &db.store;
    s.accept_shipment(&shipment("O-1", "TRK-1")).await.unwrap();
    s.accept_shipment(&shipment("O-2", "TRK-2")).await.unwrap();
    assert!(s.claim_pushes(NOW, 1000, 10).await.unwrap().is_empty());
    s.advance_shipment("TRK-1", Accepted, PickedUp, None, NOW + 1)
        .await
        .unwrap();
    s.advance_shipment("TRK-1", PickedUp, InTransit, None, NOW + 2)
        .await
        .unwrap();
    s.advance_shipment("TRK-1", InTransit, Delivered, Some("signed"), NOW + 3)
        .await
        .unwrap();
    // A move that does not apply enqueues nothing; a cancel's outcome is not pushed.
    assert!(
        !s.advance_shipment("TRK-1", InTransit, Delivered, None, NOW + 4)
            .await
            .unwrap()
    );
    s.cancel_shipment(
        "merchant:shop.example",
        &OrderId::from("O-2"),
        "TRK-TOMB",
        NOW + 4,
    )
    .await
    .unwrap();
    assert_eq!(s.pushes_pending().await.unwrap(), 3);
    assert!(s.pushes_for("TRK-2").await.unwrap().is_empty());
    let all = s.pushes_for("TRK-1").await.unwrap();
    let statuses: Vec<_> = all.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [PickedUp, InTransit, Delivered]);
    assert!(
        all.iter()
            .all(|p| p.state == PushState::Pending && p.attempts == 0)
    );
    assert_eq!(all[2].delivered_at_ms, Some(NOW + 3));
    assert_eq!(all[2].header_digest, Some([9; 32]));
    assert_eq!(all[2].issuer_id.as_deref(), Some("issuer:bank.example"));
    assert_eq!(all[2].merchant_id, "merchant:shop.example");
    // Only the first is claimable; leased, it is not claimed again.
    let c = s.claim_pushes(NOW + 10, 1000, 10).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].status, c[0].attempts), (PickedUp, 1));
    assert_eq!(c[0].first_attempt_at_ms, Some(NOW + 10));
    assert!(s.claim_pushes(NOW + 20, 1000, 10).await.unwrap().is_empty());
    // Retried: due again later, the next still waiting behind it.
    s.finish_push(
        c[0].id,
        &PushOutcome::Retry {
            at_ms: NOW + 500,
            error: "merchant unreachable".into(),
        },
        NOW + 30,
    )
    .await
    .unwrap();
    assert!(
        s.claim_pushes(NOW + 100, 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let c = s.claim_pushes(NOW + 500, 1000, 10).await.unwrap();
    assert_eq!((c.len(), c[0].attempts), (1, 2));
    assert_eq!(c[0].first_attempt_at_ms, Some(NOW + 10));
    s.finish_push(c[0].id, &PushOutcome::Sent, NOW + 510)
        .await
        .unwrap();
    // A second finish of a push no longer pending changes nothing.
    s.finish_push(c[0].id, &PushOutcome::GiveUp("late".into()), NOW + 511)
        .await
        .unwrap();
    let c = s.claim_pushes(NOW + 520, 1000, 10).await.unwrap();
    assert_eq!(c[0].status, InTransit);
    s.finish_push(
        c[0].id,
        &PushOutcome::Refused("unknown_order".into()),
        NOW + 530,
    )
    .await
    .unwrap();
    let c = s.claim_pushes(NOW + 540, 1000, 10).await.unwrap();
    assert_eq!(c[0].status, Delivered);
    s.finish_push(c[0].id, &PushOutcome::GiveUp("too long".into()), NOW + 550)
        .await
        .unwrap();
    let all = s.pushes_for("TRK-1").await.unwrap();
    let states: Vec<_> = all.iter().map(|p| p.state).collect();
    assert_eq!(
        states,
        [PushState::Sent, PushState::Refused, PushState::Failed]
    );
    assert_eq!(all[0].done_at_ms, Some(NOW + 510));
    assert_eq!(all[0].last_error.as_deref(), Some("merchant unreachable"));
    assert_eq!(all[1].last_error.as_deref(), Some("unknown_order"));
    assert_eq!(s.pushes_pending().await.unwrap(), 0);
    assert!(matches!(
        s.finish_push(9999, &PushOutcome::Sent, NOW).await,
        Err(StoreError::NotFound(_))
    ));
}
