//! The leak scan: after purchases with a known card number and a known destination, a
//! delivery, a refund and a rotation of the issuer's and the carrier's data keys, every byte
//! of each party's database (SQLite files with their WAL, or the PostgreSQL schema dumped as
//! text), every other file of the data directory and every captured log line is searched. The
//! card number and the destination are nowhere in clear (issue 15), in no log either.

mod common;

use common::{ADDRESS, ADDRESSEE, CARD, Db, Fill};
use warifu_store::{Party, ShipmentStatus};

async fn scan(db: Db) {
    let Some(env) = common::start(db).await else {
        return;
    };
    // An approved order with delivery, a declined one, a digital one.
    let p = env.buy(false, &Fill::default()).await;
    assert_eq!(p.outcome.state, "captured");
    let wrong = Fill {
        name: "Wrong Name".into(),
        ..Fill::default()
    };
    let d = env
        .alice
        .purchase(&env.merchant(), &env.issuer(), false, |f| wrong.order(f))
        .await
        .expect("declined");
    assert_eq!(d.outcome.state, "declined");
    let digital = env.buy(true, &Fill::default()).await;
    let order_id = p.form.order_id.clone();
    // Delivered, and the digital order refunded (cancelled after capture).
    let tracking = p.outcome.tracking_number.clone().expect("tracking");
    let road = [
        ShipmentStatus::Accepted,
        ShipmentStatus::PickedUp,
        ShipmentStatus::InTransit,
        ShipmentStatus::Delivered,
    ];
    for step in road.windows(2) {
        let moved = env
            .local
            .carrier
            .store()
            .advance_shipment(
                &tracking,
                step[0],
                step[1],
                None,
                warifu_services::clock::Clock::system().now_ms(),
            )
            .await
            .expect("advance");
        assert!(moved);
    }
    let c = env
        .alice
        .cancel(&env.merchant(), &digital.outcome.order_id)
        .await
        .expect("refund");
    assert_eq!(c.state, "refunded");
    // A data-key rotation, as `warifu issuer|carrier rotate-data-key` runs it.
    for party in [Party::Issuer, Party::Carrier] {
        let s = env.local.open_store(party).await.expect("open");
        s.rotate_data_key(warifu_services::clock::Clock::system().now_ms())
            .await
            .expect("rotate");
        assert!(s.reencrypt(64).await.expect("reencrypt") > 0);
        let dropped = s.retire_data_keys(i64::MAX).await.expect("retire");
        assert_eq!(dropped.len(), 1, "{}", party.as_str());
        s.close().await;
    }

    let mut contents = Vec::new();
    for party in [Party::Merchant, Party::Issuer, Party::Carrier] {
        let bytes = match db {
            Db::Sqlite => {
                let files = env.local.sqlite_files(party);
                assert!(!files.is_empty(), "no database file for {}", party.as_str());
                let mut all = Vec::new();
                for f in files {
                    all.extend(std::fs::read(&f).expect("read database file"));
                }
                all
            }
            Db::Postgres => {
                let prefix = env.schema_prefix.clone().expect("prefix");
                common::pg_dump(&prefix, party.as_str()).await
            }
        };
        contents.push((party, bytes));
    }
    let found = |bytes: &[u8], secret: &str| {
        common::encodings(secret)
            .iter()
            .any(|e| common::contains(bytes, e))
    };
    for (party, bytes) in &contents {
        let name = party.as_str();
        // Positive control: every party stored this order (so the scan reads real data).
        assert!(
            common::contains(bytes, order_id.as_bytes()),
            "{name}'s data does not mention the order: the scan would prove nothing"
        );
        // Encrypted at rest (issue 15): not even the issuer's file holds the card number in
        // clear, nor the carrier's the destination.
        assert!(!found(bytes, CARD), "card number in clear at the {name}");
        for secret in [ADDRESS, ADDRESSEE] {
            assert!(!found(bytes, secret), "destination in clear at the {name}");
        }
    }
    // Every other file of the data directory (keys, directory, key-encryption keys).
    let mut files = vec![env.local.data_dir.clone()];
    while let Some(f) = files.pop() {
        if f.is_dir() {
            files.extend(
                std::fs::read_dir(&f)
                    .expect("dir")
                    .flatten()
                    .map(|e| e.path()),
            );
            continue;
        }
        let bytes = std::fs::read(&f).expect("read");
        for secret in [CARD, ADDRESS, ADDRESSEE] {
            assert!(
                !found(&bytes, secret),
                "a secret in clear in {}",
                f.display()
            );
        }
    }
    let logs = common::logs().lock().expect("logs").clone();
    assert!(
        common::contains(&logs, order_id.as_bytes()),
        "the logs do not mention the order id: were they captured?"
    );
    for secret in [CARD, ADDRESS, ADDRESSEE] {
        assert!(!found(&logs, secret), "a secret in the logs");
    }
    common::finish(env).await;
}

common::on_both_databases!(scan: leak_scan_on_sqlite, leak_scan_on_postgres);
