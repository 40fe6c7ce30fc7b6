//! End to end in one process: approved purchases with and without a carrier, and a decline for
//! every reason, on SQLite and on PostgreSQL.

mod common;

use common::{ADDRESS, ADDRESSEE, CARD, Db, EXPIRY, Fill, NAME, OTHER_CARD};
use warifu_core::order::Expiry;
use warifu_services::cardholder::Purchase;
use warifu_services::protocol::merchant_issuer::DeclineReason;
use warifu_store::{CardStatus, OrderState};

async fn approved(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    // With a carrier: authorized, then shipped with a tracking number.
    let p = env.buy(false, &Fill::default()).await;
    let order_id = p.form.order_id.clone();
    assert_eq!(p.outcome.state, "captured", "{:?}", p.outcome);
    let d = p.outcome.decision.clone().expect("decision");
    assert!(d.approved() && d.reason.is_none());
    assert_eq!(d.amount, 2 * 1200 + 3500);
    assert_eq!(d.currency, "JPY");
    assert!(
        d.carrier_approval.is_none(),
        "the carrier's MAC is not relayed"
    );
    let tracking = p.outcome.tracking_number.clone().expect("tracking number");
    // The merchant's record agrees.
    let order = env
        .local
        .merchant
        .store()
        .get_order(&order_id)
        .await
        .expect("read")
        .expect("order");
    assert_eq!(order.state, OrderState::Captured);
    assert_eq!(order.tracking_number.as_deref(), Some(tracking.as_str()));
    assert!(order.carrier_part.is_none(), "carrier part kept after use");
    // The issuer holds the amount.
    assert_eq!(env.available().await, 100_000 - 5_900);
    // The cardholder tracks with the carrier and sees the destination it sealed; the status
    // at the merchant is the same.
    let t = env
        .alice
        .tracking(&env.carrier(), &env.merchant(), &order_id)
        .await
        .expect("tracking");
    assert_eq!(t.tracking_number, tracking);
    let dest = t.destination.expect("destination for the cardholder");
    assert_eq!(dest.address.expose(), ADDRESS);
    assert_eq!(dest.addressee.expose(), ADDRESSEE);
    let status = env
        .alice
        .order_status(&env.merchant(), &order_id)
        .await
        .expect("status");
    assert_eq!(status, p.outcome);

    // Without a carrier (digital goods, 【0052】): authorized, nothing shipped.
    let p = env.buy(true, &Fill::default()).await;
    assert_eq!(p.outcome.state, "captured", "{:?}", p.outcome);
    assert!(p.outcome.decision.as_ref().is_some_and(|d| d.approved()));
    assert!(p.outcome.carrier.is_none() && p.outcome.tracking_number.is_none());
    assert!(p.sealed.header.carrier.is_none());
    let shipments = env
        .local
        .carrier
        .store()
        .list_shipments(100, 0)
        .await
        .expect("list");
    assert_eq!(shipments.len(), 1, "only the first order was shipped");
    common::finish(env).await;
}

async fn declines(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let issuer_store = env.local.issuer.store().clone();
    // Each case: how to fill the order, what to do at the issuer first, the expected reason.
    let wrong_number = Fill {
        number: OTHER_CARD.into(),
        ..Fill::default()
    };
    let wrong_name = Fill {
        name: "Hanako Tanaka".into(),
        ..Fill::default()
    };
    let wrong_expiry = Fill {
        expiry: Expiry {
            year: 2036,
            month: 1,
        },
        ..Fill::default()
    };
    for (fill, reason) in [
        (wrong_number, DeclineReason::CardMismatch),
        (wrong_name, DeclineReason::CardMismatch),
        (wrong_expiry, DeclineReason::CardMismatch),
    ] {
        let p = env.buy(false, &fill).await;
        assert_declined(&env, &p, reason).await;
    }
    // Over the limit (100 000 JPY): 29 cups.
    let big = Fill {
        picks: vec![("CUP-002", 29)],
        ..Fill::default()
    };
    let p = env.buy(false, &big).await;
    assert_declined(&env, &p, DeclineReason::InsufficientCredit).await;
    // Blocked, then expired (by the issuer's status), with and without a carrier.
    assert!(
        issuer_store
            .set_card_status("card-1", CardStatus::Blocked)
            .await
            .expect("status")
    );
    let p = env.buy(false, &Fill::default()).await;
    assert_declined(&env, &p, DeclineReason::Blocked).await;
    let p = env.buy(true, &Fill::default()).await;
    assert_declined(&env, &p, DeclineReason::Blocked).await;
    issuer_store
        .set_card_status("card-1", CardStatus::Expired)
        .await
        .expect("status");
    let p = env.buy(false, &Fill::default()).await;
    assert_declined(&env, &p, DeclineReason::Expired).await;
    // A cardholder the issuer does not know (holding a genuine key).
    let bob_id = common::id("cardholder:bob@mail.example");
    let bob = env.local.cardholder(&bob_id).expect("bob");
    let p = bob
        .purchase(&env.merchant(), &env.issuer(), false, |f| {
            Fill::default().order(f)
        })
        .await
        .expect("purchase");
    assert_declined(&env, &p, DeclineReason::UnknownCardholder).await;
    // Nothing was held on any decline.
    let card = issuer_store
        .get_card("card-1")
        .await
        .expect("read")
        .expect("card");
    assert_eq!(card.available, 100_000);
    assert_eq!(issuer_store.ledger_sum().await.expect("sum"), 0);
    common::finish(env).await;
}

async fn assert_declined(env: &common::Env, p: &Purchase, reason: DeclineReason) {
    assert_eq!(p.outcome.state, "declined", "{reason}: {:?}", p.outcome);
    let d = p.outcome.decision.as_ref().expect("decision");
    assert!(!d.approved());
    assert_eq!(d.reason, Some(reason));
    assert!(d.authorization_id.is_none() && p.outcome.tracking_number.is_none());
    // The merchant recorded the reason; the carrier received nothing.
    let order = env
        .local
        .merchant
        .store()
        .get_order(&p.form.order_id)
        .await
        .expect("read")
        .expect("order");
    assert_eq!(order.state, OrderState::Declined);
    assert_eq!(order.decline_code.as_deref(), Some(reason.as_str()));
    assert!(order.carrier_part.is_none());
    assert!(
        env.local
            .carrier
            .store()
            .get_shipment(env.merchant().as_str(), &p.form.order_id)
            .await
            .expect("read")
            .is_none(),
        "the carrier got a declined order"
    );
}

common::on_both_databases!(approved: approved_on_sqlite, approved_on_postgres);

common::on_both_databases!(declines: declines_on_sqlite, declines_on_postgres);

#[test]
fn fixtures_are_consistent() {
    assert!(warifu_core::order::luhn(CARD) && warifu_core::order::luhn(OTHER_CARD));
    assert_ne!(NAME, "Hanako Tanaka");
    let (year, _) =
        warifu_core::order::year_month(warifu_services::clock::Clock::system().now_unix());
    assert!(EXPIRY.year > year, "the test card must not have expired");
}

/// Starts an extra service on a free loopback port and lists it in the directory.
async fn list(env: &common::Env, id: &warifu_core::PartyId) -> tokio::net::TcpListener {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let mut d = (*env.local.directory.get()).clone();
    d.insert(warifu_services::directory::Entry::new(id.clone(), &url).expect("entry"));
    env.local.directory.replace(d).expect("directory");
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_merchants_and_issuers_coexist() {
    use std::sync::Arc;
    use warifu_services::{issuer, merchant};
    use warifu_store::{Party, Store};
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    // A second issuer and a second merchant that accepts both issuers.
    let bank2 = common::id("issuer:card2.example");
    let books = common::id("merchant:books.example");
    let data = env.tmp.path().join("more");
    let bank2_store = Store::open_party(&data.join("i2"), Party::Issuer)
        .await
        .expect("store");
    let bank2_state = issuer::IssuerState::new(
        env.local.issue(&bank2).expect("key"),
        Arc::new(bank2_store),
        warifu_services::clock::Clock::system(),
    );
    let l = list(&env, &bank2).await;
    tokio::spawn(issuer::run(l, bank2_state.clone(), std::future::pending()));
    let mut config =
        warifu_services::merchant::MerchantConfig::example(env.issuer(), Some(env.carrier()));
    config.accepted_issuers.push(bank2.clone());
    let books_state = merchant::MerchantState::new(
        env.local.issue(&books).expect("key"),
        config,
        Arc::new(
            Store::open_party(&data.join("m2"), Party::Merchant)
                .await
                .expect("store"),
        ),
        env.local.directory.clone(),
        warifu_services::clock::Clock::system(),
    );
    let l = list(&env, &books).await;
    tokio::spawn(merchant::run(
        l,
        books_state.clone(),
        std::future::pending(),
    ));
    // Bob banks with the second issuer.
    let bob_id = common::id("cardholder:bob@mail.example");
    bank2_state
        .store()
        .enroll_card(&warifu_store::NewCard {
            card_id: "b-1".into(),
            cardholder_id: bob_id.to_string(),
            holder_name: NAME.into(),
            number: OTHER_CARD.into(),
            expiry: EXPIRY,
            credit_limit: 50_000,
            currency: "JPY".into(),
            now_ms: warifu_services::clock::Clock::system().now_ms(),
        })
        .await
        .expect("enroll");
    let bob = env.local.cardholder(&bob_id).expect("bob");
    let bob_fill = Fill {
        number: OTHER_CARD.into(),
        ..Fill::default()
    };
    let p = bob
        .purchase(&books, &bank2, false, |f| bob_fill.order(f))
        .await
        .expect("bob at books");
    assert_eq!(p.outcome.state, "captured");
    assert_eq!(p.outcome.decision.as_ref().map(|d| &d.issuer), Some(&bank2));
    // Alice buys at both merchants with the first issuer.
    for m in [&books, &env.merchant()] {
        let p = env
            .alice
            .purchase(m, &env.issuer(), false, |f| Fill::default().order(f))
            .await
            .expect("alice");
        assert_eq!(p.outcome.state, "captured", "{m}");
    }
    // Each issuer holds only its own cardholder's authorizations; the carrier serves both shops.
    let a1 = env
        .local
        .issuer
        .store()
        .authorizations_for_cardholder(env.alice_id.as_str())
        .await
        .expect("a1");
    assert_eq!(a1.len(), 2);
    assert!(
        bank2_state
            .store()
            .authorizations_for_cardholder(env.alice_id.as_str())
            .await
            .expect("a2")
            .is_empty()
    );
    let shipments = env.shipments().await;
    let mut merchants: Vec<_> = shipments.iter().map(|s| s.merchant_id.clone()).collect();
    merchants.sort();
    assert_eq!(
        merchants,
        [
            "merchant:books.example",
            "merchant:books.example",
            "merchant:shop.example"
        ]
    );
    // Bob's card is no good at the first issuer.
    let p = bob
        .purchase(&env.merchant(), &env.issuer(), false, |f| bob_fill.order(f))
        .await
        .expect("bob at shop");
    assert_eq!(
        p.outcome.decision.and_then(|d| d.reason),
        Some(DeclineReason::UnknownCardholder)
    );
    common::finish(env).await;
}
