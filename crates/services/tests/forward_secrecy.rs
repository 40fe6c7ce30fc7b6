//! Forward secrecy over the real services (issue 19, PROTOCOL.md §19), on SQLite and
//! PostgreSQL: purchases seal format version 3 to each party's published KEM key; a purchase
//! sealed to the old epoch goes through after a rotation, within the grace period; after the
//! grace the old epoch's private key is deleted, and a part captured before (the issuer's,
//! as a merchant's database or a wire tap keeps it) cannot be opened with the issuer's keys,
//! K included; the merchant keeps no forwarded part once its recipient answered.

mod common;

use std::time::Duration;

use common::{Db, Fill};
use warifu_core::sealed::ForIssuer;
use warifu_core::{Error, Role};
use warifu_services::kem::{KemKeys, MIN_GRACE};

async fn rotation(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    let issuer_kem: &KemKeys = env.local.issuer.kem();
    // A purchase seals version 3 to epoch 1 of each party.
    let first = env.buy(false, &Fill::default()).await;
    assert_eq!(first.outcome.state, "captured", "{:?}", first.outcome);
    assert_eq!(first.sealed.header.version, 3);
    for part in &first.sealed.parts {
        assert_eq!(part.kem.as_ref().map(|k| k.epoch), Some(1), "{part:?}");
    }
    // The merchant keeps no copy of the parts it forwarded once they were answered.
    let outbox = env
        .local
        .merchant
        .store()
        .outbox_for_order(&first.form.order_id)
        .await
        .expect("outbox");
    let forwarded: Vec<_> = outbox
        .iter()
        .filter(|m| m.kind == "authorize" || m.kind == "ship")
        .collect();
    assert_eq!(forwarded.len(), 2, "{outbox:?}");
    for m in forwarded {
        assert!(m.done && m.payload.is_empty(), "{} kept: {m:?}", m.kind);
    }
    // What an eavesdropper or the merchant's backup holds: the issuer's forwarded part.
    let captured = first.sealed.forward(Role::Issuer).expect("issuer part");

    // The issuer rotates (grace: a day). The cardholder still holds epoch 1 (its answer is
    // fresh), and its next purchase, sealed to epoch 1, goes through within the grace.
    let r = issuer_kem
        .rotate(
            Duration::from_secs(86_400),
            warifu_services::clock::Clock::system().now_ms(),
        )
        .await
        .expect("rotate");
    assert_eq!(
        (r.epoch, r.deleted.clone(), r.kept.clone()),
        (2, vec![], vec![1])
    );
    let second = env.buy(false, &Fill::default()).await;
    assert_eq!(second.outcome.state, "captured", "{:?}", second.outcome);
    assert_eq!(
        second.sealed.parts[1].kem.as_ref().map(|k| k.epoch),
        Some(1)
    );
    // A new cardholder asks afresh and seals to epoch 2.
    let fresh = env.local.cardholder(&env.alice_id).expect("cardholder");
    let form = fresh
        .order_form(&env.merchant(), false)
        .await
        .expect("form");
    let keys = fresh
        .recipient_keys(&form, &env.issuer())
        .await
        .expect("keys");
    assert_eq!(keys.get(&env.issuer()).map(|k| k.epoch), Some(2));
    assert_eq!(keys.get(&env.merchant()).map(|k| k.epoch), Some(1));
    let third = fresh
        .purchase(&env.merchant(), &env.issuer(), false, |f| {
            Fill::default().order(f)
        })
        .await
        .expect("purchase at epoch 2");
    assert_eq!(third.sealed.parts[1].kem.as_ref().map(|k| k.epoch), Some(2));
    assert_eq!(third.outcome.state, "captured", "{:?}", third.outcome);

    // After the grace period, epoch 1's private key is deleted: the captured part no longer
    // opens with anything the issuer holds, its personal key (K) included.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = issuer_kem
        .rotate(
            Duration::ZERO,
            warifu_services::clock::Clock::system().now_ms(),
        )
        .await
        .expect("rotate past the grace");
    // Epoch 2's successor has only just become current: it keeps its grace.
    assert_eq!((r.epoch, r.deleted, r.kept), (3, vec![1], vec![2]));
    let stored: Vec<u32> = env
        .local
        .issuer
        .store()
        .kem_keys()
        .await
        .expect("keys")
        .iter()
        .map(|k| k.key.epoch())
        .collect();
    assert_eq!(stored, vec![2, 3]);
    let ring = issuer_kem.ring(true).await.expect("ring");
    let issuer_keys = env.local.issue(&env.issuer()).expect("issuer's key");
    assert_eq!(
        captured
            .open_with_ring::<ForIssuer>(&first.form.policy, issuer_keys.as_ref(), &ring)
            .err(),
        Some(Error::KemKeyUnavailable { epoch: 1 })
    );
    // Through the service too: the issuer answers kem_key_unavailable to a part sealed to
    // the deleted epoch (the cardholder's answer from before is still cached).
    let (form, _, stale) = env.sealed_at(&env.merchant(), false).await;
    assert_eq!(stale.parts[1].kem.as_ref().map(|k| k.epoch), Some(1));
    let refused = env
        .local
        .issuer
        .kem()
        .open::<ForIssuer>(
            &stale.forward(Role::Issuer).expect("part"),
            &form.policy,
            issuer_keys.as_ref(),
        )
        .await
        .err()
        .map(|e| e.code.as_str());
    assert_eq!(refused, Some("kem_key_unavailable"));
    common::finish(env).await;
}

common::on_both_databases!(rotation: rotation_sqlite, rotation_postgres);

#[test]
fn the_shortest_grace_outlasts_the_cardholders_cache() {
    assert!(MIN_GRACE > warifu_services::cardholder::KEM_KEY_TTL + warifu_services::kem::REFRESH);
}
