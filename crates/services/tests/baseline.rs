//! The plaintext benchmark baseline: a deployment under it runs the whole purchase with the
//! parts unsealed, and a deployment with real keys refuses a baseline bundle
//! (`scheme_mismatch`), as it has no key file and no service option.

mod common;

use common::{Db, Fill};
use warifu_core::baseline::PlaintextBaseline;
use warifu_core::keysource::Scheme;
use warifu_core::rand::OsRandom;
use warifu_core::sealed;
use warifu_services::cardholder::CardholderError;
use warifu_services::dev::local::{Local, LocalOptions};
use warifu_services::session::client::ClientError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_keys_refuse_a_plaintext_baseline_bundle() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    let form = env
        .alice
        .order_form(&env.merchant(), false)
        .await
        .expect("form");
    let order = Fill::default().order(&form).expect("order");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let plain = sealed::seal(
        &form,
        &order,
        &env.issuer(),
        &PlaintextBaseline::new(env.alice_id.clone()),
        now,
        &mut OsRandom,
    )
    .expect("seal");
    assert_eq!(plain.header.scheme, Scheme::PlaintextBaseline);
    match env.alice.submit(&plain).await {
        Err(CardholderError::Client(ClientError::Refused { status, code, .. })) => {
            assert_eq!((status, code.as_str()), (422, "scheme_mismatch"));
        }
        other => panic!("a baseline bundle was not refused: {other:?}"),
    }
    // The same order sealed for real still goes through.
    let sealed = env
        .alice
        .seal(&form, &order, &env.issuer())
        .await
        .expect("seal");
    env.alice.submit(&sealed).await.expect("submit");
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_deployment_buys_end_to_end_and_writes_no_key_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut opts = LocalOptions::new(tmp.path(), common::K);
    opts.plaintext_baseline = true;
    let local = Local::start(opts).await.expect("start");
    let alice = common::id("cardholder:hanako@mail.example");
    local
        .enroll(
            "card-1",
            &alice,
            common::NAME,
            common::CARD,
            common::EXPIRY,
            100_000,
            "JPY",
        )
        .await
        .expect("enroll");
    let ch = local.cardholder(&alice).expect("cardholder");
    let merchant = local.merchant.id().clone();
    let issuer = local.issuer.id().clone();
    let p = ch
        .purchase(&merchant, &issuer, false, |f| Fill::default().order(f))
        .await
        .expect("purchase");
    assert_eq!(p.sealed.header.scheme, Scheme::PlaintextBaseline);
    assert!(
        p.outcome.decision.as_ref().is_some_and(|d| d.approved()),
        "{:?}",
        p.outcome
    );
    assert!(
        local
            .write_key(&alice, &tmp.path().join("alice.key"))
            .is_err()
    );
    local.stop().await;
}
