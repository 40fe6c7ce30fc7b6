//! IssuerStore: cards, authorization (idempotent, concurrency-safe), capture, void, refund and
//! the double-entry ledger.

use warifu_core::OrderId;
use warifu_core::order::{Expiry, PaymentMethod};
use warifu_core::secret::Secret;
use warifu_store::*;

use crate::both;
use crate::common::{NOW, TestDb, triples};

pub const NUMBER: &str = "4111111111111111";
const ALICE: &str = "cardholder:alice@mail.example";
const SHOP: &str = "merchant:shop.example";

pub fn card(id: &str, limit: u64) -> NewCard {
    NewCard {
        card_id: id.into(),
        cardholder_id: ALICE.into(),
        holder_name: "Alice Example".into(),
        number: Secret::new(NUMBER),
        expiry: Expiry {
            year: 2028,
            month: 4,
        },
        credit_limit: limit,
        currency: "JPY".into(),
        now_ms: NOW,
    }
}

pub fn request(order: &str, amount: u64) -> AuthorizeRequest {
    AuthorizeRequest {
        merchant_id: SHOP.into(),
        order_id: order.into(),
        authorization_id: format!("AUTH-{order}"),
        cardholder_id: ALICE.into(),
        holder_name: "ALICE  example".into(),
        card_number: Secret::new(NUMBER),
        expiry: Expiry {
            year: 2028,
            month: 4,
        },
        amount,
        currency: "JPY".into(),
        payment_method: PaymentMethod::Installments { count: 3 },
        carrier_id: Some("carrier:post.example".into()),
        header_digest: [7; 32],
        now_ms: NOW,
    }
}

/// The books balance and each card's available credit matches its ledger account and
/// limit − holds − captures + refunds.
pub async fn assert_books(s: &Store) {
    let audit = s.audit().await.unwrap();
    assert!(audit.is_clean(), "{audit:?}");
    assert_eq!(
        audit.cards,
        s.list_cards(1000, 0).await.unwrap().len() as u64
    );
    assert_eq!(s.ledger_sum().await.unwrap(), 0, "ledger sums to zero");
    assert_eq!(s.unbalanced_movements().await.unwrap(), 0);
    for c in s.cards_for_cardholder(ALICE).await.unwrap() {
        let auths: Vec<_> = s
            .authorizations_for_cardholder(ALICE)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.card_id.as_deref() == Some(c.card_id.as_str()))
            .collect();
        let held: u64 = auths.iter().map(|a| a.held).sum();
        let captured: u64 = auths.iter().map(|a| a.captured).sum();
        let refunded: u64 = auths.iter().map(|a| a.refunded).sum();
        assert_eq!(c.available + held + captured, c.credit_limit + refunded);
        let bal = s
            .ledger_balance(&format!("card:{}:available", c.card_id))
            .await
            .unwrap();
        assert_eq!(bal, c.available as i64);
        let bal = s
            .ledger_balance(&format!("card:{}:held", c.card_id))
            .await
            .unwrap();
        assert_eq!(bal, held as i64);
    }
}

both!(
    enroll_cards,
    authorize_declines_with_reasons,
    authorize_is_idempotent,
    answers_are_kept_with_their_step,
    concurrent_authorizations_never_exceed_the_limit,
    concurrent_retries_hold_once,
    capture_void_refund,
    refund_ids_are_scoped_to_the_order,
    authorizations_record_carrier_and_digest,
    partial_capture_and_settlement,
    buckets_by_minute,
);

async fn enroll_cards(db: &TestDb) {
    let s = &db.store;
    let c = s.enroll_card(&card("C-1", 50_000)).await.unwrap();
    assert_eq!(c.available, 50_000);
    assert_eq!(c.status, CardStatus::Active);
    assert_eq!(s.get_card("C-1").await.unwrap(), Some(c.clone()));
    assert_eq!(
        s.get_card("C-1").await.unwrap().unwrap().number.expose(),
        NUMBER
    );
    assert!(matches!(
        s.enroll_card(&card("C-1", 1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.cards_for_cardholder(ALICE).await.unwrap(), vec![c]);
    assert!(s.set_card_status("C-1", CardStatus::Blocked).await.unwrap());
    assert!(!s.set_card_status("C-9", CardStatus::Blocked).await.unwrap());
    assert_eq!(
        s.get_card("C-1").await.unwrap().unwrap().status,
        CardStatus::Blocked
    );
    assert_eq!(s.ledger_balance("issuer:credit").await.unwrap(), -50_000);
    assert_books(s).await;
}

async fn authorize_declines_with_reasons(db: &TestDb) {
    let s = &db.store;
    let mut unknown = request("O-0", 100);
    unknown.cardholder_id = "cardholder:nobody@mail.example".into();
    let d = s.authorize(&unknown).await.unwrap();
    assert_eq!(d.record.decline_code, Some(DeclineCode::UnknownCardholder));
    assert_eq!(d.record.card_id, None);

    s.enroll_card(&card("C-1", 1000)).await.unwrap();
    type Change = Box<dyn Fn(&mut AuthorizeRequest)>;
    let cases: Vec<(&str, Change, DeclineCode)> = vec![
        (
            "O-1",
            Box::new(|r| r.card_number = Secret::new("4000000000000002")),
            DeclineCode::CardMismatch,
        ),
        (
            "O-2",
            Box::new(|r| r.holder_name = "Mallory".into()),
            DeclineCode::NameMismatch,
        ),
        (
            "O-3",
            Box::new(|r| r.expiry.month = 5),
            DeclineCode::ExpiryMismatch,
        ),
        (
            "O-4",
            Box::new(|r| r.now_ms = 1_830_297_600_000), // 2028-01-01 is fine...
            DeclineCode::InsufficientCredit,
        ),
        (
            "O-5",
            Box::new(|r| r.now_ms = 1_841_011_200_000), // 2028-05-05: past 2028-04
            DeclineCode::Expired,
        ),
        (
            "O-6",
            Box::new(|r| r.currency = "USD".into()),
            DeclineCode::CurrencyMismatch,
        ),
        (
            "O-7",
            Box::new(|r| r.amount = 0),
            DeclineCode::InvalidAmount,
        ),
        (
            "O-8",
            Box::new(|r| r.amount = 1001),
            DeclineCode::InsufficientCredit,
        ),
    ];
    for (order, change, code) in cases {
        let mut r = request(order, if order == "O-4" { 5000 } else { 100 });
        change(&mut r);
        let a = s.authorize(&r).await.unwrap();
        assert!(a.created);
        assert_eq!(a.record.decline_code, Some(code), "order {order}");
        assert_eq!(a.record.status, AuthorizationStatus::Declined);
        assert_eq!(a.record.held, 0);
        assert!(!a.record.approved());
    }
    s.set_card_status("C-1", CardStatus::Blocked).await.unwrap();
    let b = s.authorize(&request("O-9", 100)).await.unwrap();
    assert_eq!(b.record.decline_code, Some(DeclineCode::Blocked));
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 1000);
    // Declines are stored: a retry returns the decline, even once the card is usable.
    s.set_card_status("C-1", CardStatus::Active).await.unwrap();
    let again = s.authorize(&request("O-9", 100)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.record.decline_code, Some(DeclineCode::Blocked));
    assert_books(s).await;
}

async fn authorize_is_idempotent(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 10_000)).await.unwrap();
    let first = s.authorize(&request("O-1", 2500)).await.unwrap();
    assert!(first.created);
    assert!(first.record.approved());
    assert_eq!(first.record.status, AuthorizationStatus::Held);
    assert_eq!(first.record.held, 2500);
    assert_eq!(
        first.record.payment_method,
        PaymentMethod::Installments { count: 3 }
    );
    // The same order again, even with another authorization id: the first decision, no
    // second hold.
    let mut retry = request("O-1", 2500);
    retry.authorization_id = "AUTH-other".into();
    let second = s.authorize(&retry).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.record, first.record);
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 7500);
    let holds = s.ledger_entries("card:C-1:held").await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].movement_id, "AUTH-O-1:hold");
    assert_eq!(
        s.get_authorization(SHOP, &OrderId::from("O-1"))
            .await
            .unwrap(),
        Some(first.record)
    );
    // An authorization id reused for another order is refused.
    let mut clash = request("O-2", 10);
    clash.authorization_id = "AUTH-O-1".into();
    assert!(matches!(
        s.authorize(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        s.get_authorization(SHOP, &OrderId::from("O-2"))
            .await
            .unwrap()
            .is_none()
    );
    assert_books(s).await;
}

/// An answer made from a step's result, under `scope`/`key` (fingerprint `[1]`).
fn answer<T>(
    scope: &str,
    key: &str,
    body: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> Answer<T> {
    Answer {
        scope: scope.into(),
        key: key.into(),
        fingerprint: vec![1],
        created_at_ms: NOW,
        body: std::sync::Arc::new(body),
    }
}

/// A step and its answer commit together or not at all; a retry keeps the first answer; an
/// answer not made keeps none.
async fn answers_are_kept_with_their_step(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 10_000)).await.unwrap();
    let held = |i: &Inserted<AuthorizationRecord>| {
        Some(format!("{} held {}", i.record.authorization_id, i.record.held).into_bytes())
    };
    let (first, kept) = s
        .authorize_answered(&request("O-1", 2500), &answer("authorize", "O-1", held))
        .await
        .unwrap();
    assert!(first.created);
    let kept = kept.expect("an answer is kept");
    assert_eq!(kept.body, b"AUTH-O-1 held 2500");
    assert_eq!(
        s.idempotency_get("authorize", "O-1").await.unwrap(),
        Some(kept.clone())
    );
    // A retry gets the first answer back, not the one it would make.
    let other = |_: &Inserted<AuthorizationRecord>| Some(b"other".to_vec());
    let (again, first_answer) = s
        .authorize_answered(&request("O-1", 2500), &answer("authorize", "O-1", other))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(first_answer, Some(kept));
    // No answer made: the authorization stands, no answer is stored.
    let none = |_: &Inserted<AuthorizationRecord>| None;
    let (made, no_answer) = s
        .authorize_answered(&request("O-2", 100), &answer("authorize", "O-2", none))
        .await
        .unwrap();
    assert!(made.created && no_answer.is_none());
    assert_eq!(s.idempotency_get("authorize", "O-2").await.unwrap(), None);
    // An answer that cannot be stored (an empty scope) undoes its authorization.
    let failed = s
        .authorize_answered(&request("O-3", 100), &answer("", "O-3", held))
        .await;
    assert!(matches!(failed, Err(StoreError::Invalid(_))), "{failed:?}");
    assert_eq!(
        s.get_authorization(SHOP, &OrderId::from("O-3"))
            .await
            .unwrap(),
        None
    );
    // A payment step: its receipt is kept with it; a refused step keeps nothing.
    let order = OrderId::from("O-1");
    let captured =
        |a: &Applied| Some(format!("captured {}", a.authorization.captured).into_bytes());
    let capture = PaymentStep::Capture { amount: None };
    let (done, kept) = s
        .payment_step_answered(
            SHOP,
            &order,
            &capture,
            NOW,
            &answer("capture", "O-1", captured),
        )
        .await
        .unwrap();
    assert!(done.applied);
    assert_eq!(kept.unwrap().body, b"captured 2500");
    let void = |_: &Applied| Some(b"voided".to_vec());
    let refused = s
        .payment_step_answered(
            SHOP,
            &order,
            &PaymentStep::Void,
            NOW,
            &answer("void", "O-1", void),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(s.idempotency_get("void", "O-1").await.unwrap(), None);
    let refund = PaymentStep::Refund {
        refund_id: "R-1".into(),
        amount: 500,
    };
    let refunded =
        |a: &Applied| Some(format!("refunded {}", a.authorization.refunded).into_bytes());
    let (done, kept) = s
        .payment_step_answered(
            SHOP,
            &order,
            &refund,
            NOW,
            &answer("refund", "O-1/R-1", refunded),
        )
        .await
        .unwrap();
    assert!(done.applied);
    assert_eq!(kept.unwrap().body, b"refunded 500");
    assert_books(s).await;
}

async fn concurrent_authorizations_never_exceed_the_limit(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 1000)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.authorize(&request(&format!("O-{i}"), 100)).await.unwrap()
        }));
    }
    let mut approved = 0;
    let mut declined = 0;
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.created);
        match a.record.decline_code {
            None => approved += 1,
            Some(DeclineCode::InsufficientCredit) => declined += 1,
            Some(other) => panic!("unexpected decline {other}"),
        }
    }
    assert_eq!((approved, declined), (10, 30));
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 0);
    assert_books(s).await;
}

async fn concurrent_retries_hold_once(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 1000)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = request("O-1", 300);
            r.authorization_id = format!("AUTH-{i}");
            s.authorize(&r).await.unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let a = t.await.unwrap();
        created += usize::from(a.created);
        ids.insert(a.record.authorization_id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every retry sees the one decision");
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 700);
    assert_books(s).await;
}

async fn capture_void_refund(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 10_000)).await.unwrap();
    for o in ["O-1", "O-2", "O-3"] {
        assert!(
            s.authorize(&request(o, 1000))
                .await
                .unwrap()
                .record
                .approved()
        );
    }
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 7000);

    // Capture in full; a retry does not capture twice.
    let c = s
        .capture(SHOP, &OrderId::from("O-1"), None, NOW + 1)
        .await
        .unwrap();
    assert!(c.applied);
    assert_eq!(
        (
            c.authorization.status,
            c.authorization.captured,
            c.authorization.held
        ),
        (AuthorizationStatus::Captured, 1000, 0)
    );
    assert_eq!(c.authorization.schedule(), vec![334, 333, 333]);
    let again = s
        .capture(SHOP, &OrderId::from("O-1"), None, NOW + 2)
        .await
        .unwrap();
    assert!(!again.applied);
    assert!(
        !s.capture(SHOP, &OrderId::from("O-1"), Some(1000), NOW + 2)
            .await
            .unwrap()
            .applied
    );
    assert!(matches!(
        s.capture(SHOP, &OrderId::from("O-1"), Some(10), NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.void(SHOP, &OrderId::from("O-1"), NOW).await,
        Err(StoreError::Conflict(_))
    ));

    // Void releases the hold; a retry is a no-op; capture after void is refused.
    let v = s.void(SHOP, &OrderId::from("O-2"), NOW + 3).await.unwrap();
    assert!(v.applied);
    assert_eq!(v.authorization.status, AuthorizationStatus::Voided);
    assert!(
        !s.void(SHOP, &OrderId::from("O-2"), NOW + 4)
            .await
            .unwrap()
            .applied
    );
    assert!(matches!(
        s.capture(SHOP, &OrderId::from("O-2"), None, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 8000);

    // Refunds: partial, idempotent per refund id, never more than captured.
    assert!(matches!(
        s.refund(SHOP, &OrderId::from("O-3"), "R-0", 10, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    let r1 = s
        .refund(SHOP, &OrderId::from("O-1"), "R-1", 400, NOW + 5)
        .await
        .unwrap();
    assert!(r1.applied);
    assert_eq!(r1.authorization.refunded, 400);
    assert_eq!(r1.authorization.status, AuthorizationStatus::Captured);
    assert_eq!(r1.authorization.schedule(), vec![200, 200, 200]);
    assert!(
        !s.refund(SHOP, &OrderId::from("O-1"), "R-1", 400, NOW + 6)
            .await
            .unwrap()
            .applied
    );
    assert!(matches!(
        s.refund(SHOP, &OrderId::from("O-1"), "R-1", 500, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.refund(SHOP, &OrderId::from("O-1"), "R-2", 601, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    let r2 = s
        .refund(SHOP, &OrderId::from("O-1"), "R-2", 600, NOW + 7)
        .await
        .unwrap();
    assert_eq!(r2.authorization.status, AuthorizationStatus::Refunded);
    assert!(matches!(
        s.refund(SHOP, &OrderId::from("O-1"), "R-3", 1, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 9000);
    assert!(matches!(
        s.capture(SHOP, &OrderId::from("O-404"), None, NOW).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.ledger_balance("merchant:merchant:shop.example")
            .await
            .unwrap(),
        0
    );
    assert_books(s).await;
}

async fn partial_capture_and_settlement(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 10_000)).await.unwrap();
    s.authorize(&request("O-1", 3000)).await.unwrap();
    s.authorize(&request("O-2", 500)).await.unwrap();
    assert!(matches!(
        s.capture(SHOP, &OrderId::from("O-1"), Some(3001), NOW)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.capture(SHOP, &OrderId::from("O-1"), Some(0), NOW).await,
        Err(StoreError::Conflict(_))
    ));
    let c = s
        .capture(SHOP, &OrderId::from("O-1"), Some(2000), NOW)
        .await
        .unwrap();
    assert_eq!((c.authorization.captured, c.authorization.held), (2000, 0));
    // The rest of the hold went back to the card.
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 7500);
    const DAY: i64 = 86_400_000;
    s.capture(SHOP, &OrderId::from("O-2"), None, NOW + DAY)
        .await
        .unwrap();
    s.refund(SHOP, &OrderId::from("O-1"), "R-1", 250, NOW + DAY)
        .await
        .unwrap();
    let report = s.settlement_report(SHOP).await.unwrap();
    assert_eq!(
        report,
        vec![
            SettlementDay {
                day: NOW / DAY,
                captured: 2000,
                refunded: 0
            },
            SettlementDay {
                day: NOW / DAY + 1,
                captured: 500,
                refunded: 250
            },
        ]
    );
    assert_eq!(
        s.ledger_balance("merchant:merchant:shop.example")
            .await
            .unwrap(),
        2250
    );
    assert!(
        s.settlement_report("merchant:other.example")
            .await
            .unwrap()
            .is_empty()
    );
    assert_books(s).await;
}

#[tokio::test]
async fn audit_finds_a_tampered_card() {
    let db = TestDb::sqlite().await;
    let s = &db.store;
    s.enroll_card(&card("C-1", 1000)).await.unwrap();
    s.enroll_card(&card("C-2", 1000)).await.unwrap();
    s.authorize(&request("O-1", 100)).await.unwrap();
    assert!(s.audit().await.unwrap().is_clean());
    assert_eq!(s.list_authorizations(10, 0).await.unwrap().len(), 1);
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", db.store_path().display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE issuer_cards SET available = available + 1 WHERE card_id = 'C-2'")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let audit = s.audit().await.unwrap();
    assert!(!audit.is_clean());
    assert_eq!(audit.card_mismatches, vec!["C-2".to_string()]);
    assert_eq!((audit.ledger_sum, audit.cards), (0, 2));
}

/// Issue 12.1: the merchant names refunds per order ("cancel", "returned", "op-1"), so the
/// issuer keys them on (merchant, order, refund id). Before, the second order refunded under
/// "cancel" was refused as a reused refund id.
async fn refund_ids_are_scoped_to_the_order(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 10_000)).await.unwrap();
    for o in ["O-1", "O-2", "O-3"] {
        s.authorize(&request(o, 1000)).await.unwrap();
        s.capture(SHOP, &OrderId::from(o), None, NOW + 1)
            .await
            .unwrap();
    }
    // Two orders refunded under the same id: both refund.
    for o in ["O-1", "O-2"] {
        let r = s
            .refund(SHOP, &OrderId::from(o), "cancel", 1000, NOW + 2)
            .await
            .unwrap();
        assert!(r.applied, "{o}");
        assert_eq!(r.authorization.status, AuthorizationStatus::Refunded);
    }
    // A retry of either is a repeat, not a second refund.
    assert!(
        !s.refund(SHOP, &OrderId::from("O-2"), "cancel", 1000, NOW + 3)
            .await
            .unwrap()
            .applied
    );
    // Equal partial refunds on one order under distinct ids; never beyond the capture.
    for id in ["op-1", "op-2", "op-3"] {
        let r = s
            .refund(SHOP, &OrderId::from("O-3"), id, 300, NOW + 4)
            .await
            .unwrap();
        assert!(r.applied, "{id}");
    }
    assert!(matches!(
        s.refund(SHOP, &OrderId::from("O-3"), "op-4", 300, NOW + 5)
            .await,
        Err(StoreError::Conflict(_))
    ));
    // The same id on the same order with another amount is a conflict.
    assert!(matches!(
        s.refund(SHOP, &OrderId::from("O-3"), "op-1", 100, NOW + 5)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let r = s
        .refund(SHOP, &OrderId::from("O-3"), "op-4", 100, NOW + 6)
        .await
        .unwrap();
    assert_eq!(
        (r.authorization.refunded, r.authorization.status),
        (1000, AuthorizationStatus::Refunded)
    );
    assert_eq!(s.get_card("C-1").await.unwrap().unwrap().available, 10_000);
    assert_books(s).await;
}

/// Issue 12.7: each authorization records the order's carrier (or none) and header digest.
async fn authorizations_record_carrier_and_digest(db: &TestDb) {
    let s = &db.store;
    s.enroll_card(&card("C-1", 10_000)).await.unwrap();
    s.authorize(&request("O-1", 1000)).await.unwrap();
    let mut digital = request("O-2", 500);
    digital.carrier_id = None;
    digital.header_digest = [8; 32];
    s.authorize(&digital).await.unwrap();
    // A declined one is bound too.
    let mut declined = request("O-3", 1_000_000);
    declined.header_digest = [3; 32];
    assert!(!s.authorize(&declined).await.unwrap().record.approved());
    let b = |o: &'static str| async move {
        s.authorization_binding(SHOP, &OrderId::from(o))
            .await
            .unwrap()
    };
    assert_eq!(
        b("O-1").await,
        Some(AuthorizationBinding {
            carrier_id: Some("carrier:post.example".into()),
            header_digest: Some([7; 32]),
        })
    );
    assert_eq!(
        b("O-2").await,
        Some(AuthorizationBinding {
            carrier_id: None,
            header_digest: Some([8; 32]),
        })
    );
    assert_eq!(b("O-3").await.unwrap().header_digest, Some([3; 32]));
    assert_eq!(b("O-404").await, None);
    let mut bad = request("O-4", 10);
    bad.carrier_id = Some(String::new());
    assert!(matches!(
        s.authorize(&bad).await,
        Err(StoreError::Invalid(_))
    ));
}

/// A version-3 issuer database (refunds keyed by merchant and refund id) is brought to version
/// 4: its refunds keep their order, and a retry of one still repeats.
#[tokio::test]
async fn a_version_3_refund_table_is_upgraded() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    {
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
        let render = |sql: &str| {
            sql.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                .replace("{blob}", "BLOB")
        };
        for sql in [
            include_str!("../../src/migrations/0001_init.sql"),
            include_str!("../../src/migrations/0002_lifecycle.sql"),
            include_str!("../../src/migrations/0003_merchant_lifecycle.sql"),
        ] {
            sqlx::raw_sql(&render(sql)).execute(&mut c).await.unwrap();
        }
        sqlx::raw_sql(
            "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             applied_at_ms BIGINT NOT NULL); \
             INSERT INTO schema_version VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0); \
             INSERT INTO issuer_authorizations (authorization_id, merchant_id, order_id, \
             cardholder_id, card_id, amount, currency, payment_method, decline_code, status, \
             held, captured, refunded, created_at_ms, updated_at_ms) VALUES ('A-OLD', \
             'merchant:shop.example', 'O-OLD', 'cardholder:a@mail.example', NULL, 1000, 'JPY', \
             '{\"kind\":\"lump_sum\"}', NULL, 'captured', 0, 1000, 300, 1, 1); \
             INSERT INTO issuer_refunds (merchant_id, refund_id, authorization_id, amount, \
             created_at_ms) VALUES ('merchant:shop.example', 'cancel', 'A-OLD', 300, 1);",
        )
        .execute(&mut c)
        .await
        .unwrap();
    }
    let s = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(s.schema_version().await.unwrap() >= 4);
    // The old refund is found under its order: the same request repeats.
    let again = s
        .refund(SHOP, &OrderId::from("O-OLD"), "cancel", 300, NOW)
        .await
        .unwrap();
    assert!(!again.applied);
    assert_eq!(
        s.authorization_binding(SHOP, &OrderId::from("O-OLD"))
            .await
            .unwrap(),
        Some(AuthorizationBinding {
            carrier_id: None,
            header_digest: None,
        })
    );
    s.close().await;
}

/// The dashboard's chart: decisions by minute and decline code (`approved` for approvals).
async fn buckets_by_minute(db: &TestDb) {
    const MIN: i64 = 60_000;
    let s = &db.store;
    assert!(s.authorization_buckets(NOW, MIN).await.unwrap().is_empty());
    s.enroll_card(&card("C-1", 1000)).await.unwrap();
    for (order, amount, at) in [
        ("O-old", 100, NOW - 2 * MIN),
        ("O-1", 100, NOW),
        ("O-2", 5000, NOW + 10),
        ("O-3", 100, NOW + 20),
        ("O-4", 100, NOW + MIN + 1),
    ] {
        let mut r = request(order, amount);
        r.now_ms = at;
        s.authorize(&r).await.unwrap();
    }
    assert_eq!(
        triples(&s.authorization_buckets(NOW - MIN, MIN).await.unwrap()),
        [
            (NOW, "approved", 2),
            (NOW, "insufficient_credit", 1),
            (NOW + MIN, "approved", 1)
        ]
    );
}
