//! Revocation end to end over real services (issue 19): the key center's signed list reaches
//! the parties, which refuse a revoked cardholder's handshake, session and sealed order, a
//! revoked merchant's forwarded part, and serve the identity's next epoch; a forged or older
//! list changes nothing.

mod common;

use common::*;
use reqwest::Method;
use warifu_core::rand::OsRandom;
use warifu_core::revocation::CenterSigningKey;
use warifu_services::attest;
use warifu_services::cardholder::Cardholder;
use warifu_services::protocol::merchant_carrier::{
    DeliveryRequest, PATH_SHIPMENTS, ShipmentRequest,
};
use warifu_services::protocol::merchant_issuer::{AuthorizeRequest, PATH_AUTHORIZE};
use warifu_services::revocations::RevocationError;

/// Sends a hello of `keys` to `endpoint` by hand; the status and the error code.
async fn hello_refusal(
    keys: &dyn warifu_core::keysource::KeySource,
    peer: &warifu_core::PartyId,
    endpoint: &str,
) -> (u16, String) {
    let (_, hello) = warifu_core::session::Initiator::start(
        keys,
        peer,
        warifu_services::clock::Clock::system().now_unix(),
        &mut OsRandom,
    )
    .expect("start");
    let r = warifu_services::http::tls::client(|b| b)
        .expect("client")
        .post(format!("{endpoint}/v1/handshake/hello"))
        .json(&hello)
        .send()
        .await
        .expect("hello");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body");
    (status, error_code(&body))
}

/// Sends `body` to `path` in `session` and returns the status and the error code of the
/// answer, opened: a handler's refusal is an answer of the session, sealed and signed.
async fn sealed_refusal(
    session: &mut warifu_core::session::Session,
    url: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, String) {
    let (auth, _, status, headers, record) = signed(session, url, Method::POST, path, body).await;
    let answer = warifu_services::session::headers::read_auth(&headers).expect("signed");
    let body = session
        .open_response(
            &auth,
            &answer,
            status.as_u16(),
            &record,
            warifu_services::clock::Clock::system().now_unix(),
        )
        .expect("opens");
    (status.as_u16(), error_code(&body))
}

async fn revocation(db: Db) {
    let Some(env) = start(db).await else { return };
    let merchant = env.merchant();
    let issuer = env.issuer();
    let merchant_url = env.local.endpoint(&merchant).expect("merchant");
    let issuer_url = env.local.endpoint(&issuer).expect("issuer");
    assert_eq!(env.local.revocations.revocations().serial(), 0);
    let before = env.buy(false, &Fill::default()).await;
    assert_eq!(before.outcome.state, "captured");

    // Before the revocation: a session of the cardholder, an order it sealed, a session of
    // the merchant with the issuer.
    let (_, mut alice_session) = env.alice_session().await;
    let (form, order, sealed) = env.sealed_at(&merchant, true).await;
    let merchant_keys = env.local.issue(&merchant).expect("merchant key");
    let mut merchant_session = raw_handshake(merchant_keys.as_ref(), &issuer, &issuer_url).await;

    let first = env
        .local
        .revoke(std::slice::from_ref(&env.alice_id))
        .expect("revoke");
    assert_eq!(first.list.serial, 1);

    // A revoked cardholder cannot open a session, even with keys that ignore the list ...
    let alice_keys = env.local.issue(&env.alice_id).expect("key");
    assert_eq!(
        hello_refusal(alice_keys.as_ref(), &merchant, &merchant_url).await,
        (403, "identity_revoked".to_owned())
    );
    // ... its session from before is refused at the next request ...
    let (_, _, status, _, body) = signed(
        &mut alice_session,
        &merchant_url,
        Method::POST,
        "/v1/order-forms",
        br#"{"digital":true}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), error_code(&body)),
        (403, "identity_revoked".into())
    );
    // ... its own client refuses to act under the revoked identity ...
    let err = env
        .alice
        .purchase(&merchant, &issuer, false, |f| Fill::default().order(f))
        .await
        .expect_err("a revoked cardholder buys nothing");
    assert!(err.to_string().contains("revoked"), "{err}");
    // ... and the order it sealed before is refused by the issuer even through a merchant
    // that still forwards it, before anything is held.
    let available = env.available().await;
    let forward = AuthorizeRequest {
        forwarded: sealed
            .forward(warifu_core::Role::Issuer)
            .expect("issuer part"),
        policy: form.policy.clone(),
        amount: order.amount,
        currency: order.currency.clone(),
    };
    assert_eq!(
        sealed_refusal(
            &mut merchant_session,
            &issuer_url,
            PATH_AUTHORIZE,
            serde_json::to_vec(&forward).expect("json")
        )
        .await,
        (403, "identity_revoked".into())
    );
    assert_eq!(env.available().await, available, "nothing was held");

    // The identity re-issued under a new epoch buys.
    let alice2 = env.alice_id.with_epoch(2).expect("epoch 2");
    env.local
        .enroll("card-2", &alice2, NAME, OTHER_CARD, EXPIRY, 100_000, "JPY")
        .await
        .expect("enroll epoch 2");
    let alice2_client = env.local.cardholder(&alice2).expect("client");
    let card2 = Fill {
        number: OTHER_CARD.into(),
        ..Fill::default()
    };
    let p = alice2_client
        .purchase(&merchant, &issuer, false, |f| card2.order(f))
        .await
        .expect("the new epoch buys");
    assert_eq!(p.outcome.state, "captured", "{:?}", p.outcome);

    // A list signed by anyone but the key center is refused, by the feed and through the
    // file, and changes nothing.
    let impostor = CenterSigningKey::generate(&mut OsRandom).expect("key");
    let forged = impostor.sign(first.list.with(
        [alice2.clone()],
        warifu_services::clock::Clock::system().now_unix(),
    ));
    assert!(matches!(
        env.local.revocations.apply(&forged),
        Err(RevocationError::BadSignature { .. })
    ));
    std::fs::write(&env.local.revocations_path, forged.to_json()).expect("write");
    touch_later(&env.local.revocations_path);
    assert!(env.local.revocations.refresh().is_err());
    assert_eq!(env.local.revocations.revocations().serial(), 1);
    // An older list never replaces a newer one.
    let nobody = id("cardholder:nobody@mail.example");
    let second = env
        .local
        .revoke(std::slice::from_ref(&nobody))
        .expect("revoke");
    assert_eq!(second.list.serial, 2);
    assert!(matches!(
        env.local.revocations.apply(&first),
        Err(RevocationError::Older {
            found: 1,
            held: 2,
            ..
        })
    ));
    let held = env.local.revocations.revocations().list();
    assert!(held.is_revoked(&nobody) && held.is_revoked(&env.alice_id));
    assert!(!held.is_revoked(&alice2));
    let p = alice2_client
        .purchase(&merchant, &issuer, true, |f| card2.order(f))
        .await
        .expect("still buys");
    assert_eq!(p.outcome.state, "captured", "{:?}", p.outcome);

    // A revoked issuer's approval: the carrier refuses the shipment it would authorize (an
    // approval made with the issuer's real key, for a real order).
    let carrier = env.carrier();
    let carrier_url = env.local.endpoint(&carrier).expect("carrier");
    let mut to_carrier = raw_handshake(merchant_keys.as_ref(), &carrier, &carrier_url).await;
    let issuer_keys = env.local.issue(&issuer).expect("issuer key");
    let shipment = ShipmentRequest {
        forwarded: before
            .sealed
            .forward(warifu_core::Role::Carrier)
            .expect("carrier part"),
        policy: before.form.policy.clone(),
        approval: attest::carrier_approval(issuer_keys.as_ref(), &before.sealed.header)
            .expect("approval"),
        delivery: DeliveryRequest {
            parcel: "1 box, 2 kg".into(),
            pickup: "today".into(),
        },
    };
    env.local
        .revoke(std::slice::from_ref(&issuer))
        .expect("revoke");
    assert_eq!(
        sealed_refusal(
            &mut to_carrier,
            &carrier_url,
            PATH_SHIPMENTS,
            serde_json::to_vec(&shipment).expect("json")
        )
        .await,
        (403, "identity_revoked".into())
    );

    // The merchant refuses, before recording anything, an order naming a revoked issuer,
    // even from a cardholder whose software ignores the list.
    let unaware = Cardholder::new(
        env.local.issue(&alice2).expect("key"),
        env.local.directory.clone(),
    );
    let orders = || async {
        env.local
            .merchant
            .store()
            .list_orders(&warifu_store::OrderFilter::default())
            .await
            .expect("orders")
            .len()
    };
    let orders_before = orders().await;
    let err = unaware
        .purchase(&merchant, &issuer, true, |f| card2.order(f))
        .await
        .expect_err("an order for a revoked issuer");
    assert!(
        err.to_string().contains("identity_revoked") && err.to_string().contains(issuer.as_str()),
        "{err}"
    );
    assert_eq!(orders().await, orders_before, "nothing recorded");

    // A revoked merchant: the issuer refuses its session and its handshake, and the
    // cardholder's wallet refuses the merchant before sending anything.
    env.local
        .revoke(std::slice::from_ref(&merchant))
        .expect("revoke");
    let (_, _, status, _, body) = signed(
        &mut merchant_session,
        &issuer_url,
        Method::POST,
        PATH_AUTHORIZE,
        serde_json::to_vec(&forward).expect("json"),
    )
    .await;
    assert_eq!(
        (status.as_u16(), error_code(&body)),
        (403, "identity_revoked".into())
    );
    assert_eq!(
        hello_refusal(merchant_keys.as_ref(), &issuer, &issuer_url).await,
        (403, "identity_revoked".to_owned())
    );
    let err = alice2_client
        .order_form(&merchant, true)
        .await
        .expect_err("the wallet refuses a revoked merchant");
    assert!(err.to_string().contains("revoked"), "{err}");
    env.stop().await;
}

/// Moves the file's modification time forward, so a reader that compares it sees a change
/// even on a coarse clock.
fn touch_later(path: &std::path::Path) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .expect("touch");
}

on_both_databases!(revocation: revocation_on_sqlite, revocation_on_postgres);
