//! The wallet believes nothing past the issuer's approval without the issuer's receipt (issue
//! 12.5), and seals nothing beyond the cardholder's disclosure ceiling (issue 19.1).

mod common;

use common::{Db, Fill, start};
use warifu_core::Role;
use warifu_core::policy::{Field, Policy};
use warifu_services::cardholder::CardholderError;

/// A merchant answering `captured` (or any state past the approval) with no decision, or with a
/// decision that is not the issuer's, is refused with a typed error; the true answer passes.
#[tokio::test]
async fn a_post_authorization_state_needs_the_issuers_receipt() {
    let Some(env) = start(Db::Sqlite).await else {
        return;
    };
    let fill = Fill::default();
    let p = env.buy(false, &fill).await;
    assert!(p.outcome.decision.as_ref().is_some_and(|d| d.approved()));
    env.alice
        .check_outcome(&p.sealed, &p.outcome)
        .expect("the true answer");

    for state in [
        "authorized",
        "shipping_requested",
        "shipped",
        "captured",
        "delivered",
        "refunded",
        "voided",
        "cancelling",
        "returning",
        "something_new",
    ] {
        let mut forged = p.outcome.clone();
        forged.state = state.to_owned();
        forged.decision = None;
        forged.tracking_number = Some("MADE-UP-0001".into());
        match env.alice.check_outcome(&p.sealed, &forged) {
            Err(CardholderError::UnprovenState { state: s }) => assert_eq!(s, state),
            other => panic!("{state} without a decision: {other:?}"),
        }
        assert!(matches!(
            env.alice.check_claim(&forged),
            Err(CardholderError::UnprovenState { .. })
        ));
    }
    // A receipt whose MAC does not verify is refused too.
    let mut tampered = p.outcome.clone();
    if let Some(d) = tampered.decision.as_mut() {
        d.amount += 1;
    }
    assert!(matches!(
        env.alice.check_outcome(&p.sealed, &tampered),
        Err(CardholderError::ReceiptInvalid)
    ));
    // States before the decision need none.
    for state in ["received", "declined", "cancelled", "failed"] {
        let mut early = p.outcome.clone();
        early.state = state.to_owned();
        early.decision = None;
        env.alice
            .check_outcome(&p.sealed, &early)
            .unwrap_or_else(|e| panic!("{state}: {e}"));
    }
    // The merchant's own answer about the order passes the same check.
    let view = env
        .alice
        .order_status(&env.merchant(), &p.outcome.order_id)
        .await
        .expect("status");
    assert_eq!(view.order_id, p.outcome.order_id);
    env.stop().await;
}

/// A form giving the destination to the merchant is refused before sealing, naming the field
/// and the party; a cardholder who widened the ceiling for it seals it.
#[tokio::test]
async fn a_greedy_form_is_refused_unless_the_ceiling_allows_it() {
    let Some(env) = start(Db::Sqlite).await else {
        return;
    };
    let mut form = env
        .alice
        .order_form(&env.merchant(), false)
        .await
        .expect("form");
    form.policy = form
        .policy
        .widened(Field::DeliveryDestination, Role::Merchant)
        .expect("widen");
    let order = Fill::default().order(&form).expect("order");
    match env.alice.seal(&form, &order, &env.issuer()).await {
        Err(CardholderError::Core(warifu_core::Error::DisclosureRefused { field, party })) => {
            assert_eq!(field, "delivery_destination");
            assert_eq!(party.to_string(), "merchant");
        }
        other => panic!("a greedy form was not refused: {other:?}"),
    }
    let ceiling = Policy::patent_default()
        .widened(Field::DeliveryDestination, Role::Merchant)
        .expect("widen");
    let wider = env
        .local
        .cardholder(&env.alice_id)
        .expect("cardholder")
        .with_ceiling(ceiling);
    wider
        .seal(&form, &order, &env.issuer())
        .await
        .expect("sealed within the widened ceiling");
    env.stop().await;
}
