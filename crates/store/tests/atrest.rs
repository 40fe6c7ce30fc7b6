//! Data at rest (issue 15), on SQLite and PostgreSQL: card numbers and destinations are stored
//! only as ciphertext under wrapped data keys; a wrong or missing key-encryption key is a
//! clear error; rotation moves rows to a new key while another store of the same database
//! keeps reading and writing; rows left in plaintext by older versions are encrypted in place
//! on first use (on SQLite without leaving the old text in the file); KEK rotation.

use warifu_core::OrderId;
use warifu_core::kem::KemSecretKey;
use warifu_core::order::Expiry;
use warifu_core::rand::OsRandom;
use warifu_core::secret::Secret;
use warifu_store::atrest::{Kek, KekSource};
use warifu_store::{
    CarrierStore, IssuerStore, KemKeyStore, NewCard, NewShipment, Party, Store, StoreError,
    StoreOptions,
};

const NUMBER: &str = "4539148803436467";
const NUMBER_2: &str = "5298473021193759";
const ADDRESSEE: &str = "Taro Suzuki-Rest";
const ADDRESS: &str = "2-2-2 Umeda, Kita-ku, Osaka 530-0001";

fn postgres_url() -> String {
    std::env::var("WARIFU_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn skip_postgres() -> bool {
    std::env::var("WARIFU_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file (KEK from the default file beside it unless
/// `kek` is given) or a fresh PostgreSQL schema (dropped at the end).
struct TestDb {
    db: Db,
    dir: tempfile::TempDir,
    url: String,
    schema: Option<String>,
}

impl TestDb {
    fn new(db: Db) -> Option<TestDb> {
        if db == Db::Postgres && skip_postgres() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tmp");
        let (url, schema) = match db {
            Db::Sqlite => (
                Store::party_url(dir.path(), Party::Issuer).expect("url"),
                None,
            ),
            Db::Postgres => {
                let n = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                (
                    postgres_url(),
                    Some(format!(
                        "warifu_atrest_{}_{}",
                        std::process::id(),
                        n % 1_000_000_000
                    )),
                )
            }
        };
        Some(TestDb {
            db,
            dir,
            url,
            schema,
        })
    }

    fn options(&self, kek: Option<&Kek>) -> StoreOptions {
        let mut o = StoreOptions::new(self.url.clone());
        if let Some(s) = &self.schema {
            o = o.schema(s.clone());
        }
        if let Some(k) = kek {
            o = o.kek(KekSource::Key(k.clone()));
        }
        o
    }

    async fn open(&self, kek: Option<&Kek>) -> Store {
        Store::open_with(self.options(kek)).await.expect("open")
    }

    /// Every byte the database holds: the SQLite file with its WAL, or every row as text.
    async fn raw(&self) -> Vec<u8> {
        match self.db {
            Db::Sqlite => {
                let mut all = Vec::new();
                for e in std::fs::read_dir(self.dir.path()).expect("dir") {
                    all.extend(std::fs::read(e.expect("entry").path()).expect("read"));
                }
                all
            }
            Db::Postgres => {
                let schema = self.schema.clone().expect("schema");
                let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
                let mut out = Vec::new();
                for t in [
                    "issuer_cards",
                    "carrier_shipments",
                    "data_keys",
                    "carrier_events",
                ] {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT x::text FROM {schema}.{t} x"))
                            .fetch_all(&pool)
                            .await
                            .expect("dump");
                    for r in rows {
                        out.extend_from_slice(r.as_bytes());
                        out.push(b'\n');
                    }
                }
                pool.close().await;
                out
            }
        }
    }

    async fn drop(self) {
        if let Some(s) = &self.schema {
            let _ = Store::drop_postgres_schema(&self.url, s).await;
        }
    }
}

fn found(hay: &[u8], secret: &str) -> bool {
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    [secret.as_bytes(), hex.as_bytes()]
        .iter()
        .any(|n| hay.windows(n.len()).any(|w| w == *n))
}

fn card(id: &str, number: &str) -> NewCard {
    NewCard {
        card_id: id.into(),
        cardholder_id: "cardholder:hanako@mail.example".into(),
        holder_name: "Hanako Yamada".into(),
        number: Secret::new(number),
        expiry: Expiry {
            year: 2031,
            month: 7,
        },
        credit_limit: 10_000,
        currency: "JPY".into(),
        now_ms: 1,
    }
}

fn shipment(order: &str, tracking: &str) -> NewShipment {
    NewShipment {
        merchant_id: "merchant:shop.example".into(),
        order_id: order.into(),
        cardholder_id: "cardholder:hanako@mail.example".into(),
        issuer_id: "issuer:bank.example".into(),
        tracking_number: tracking.into(),
        addressee: Secret::new(ADDRESSEE),
        address: Secret::new(ADDRESS),
        parcel: "small".into(),
        header_digest: [7; 32],
        now_ms: 1,
    }
}

fn kek_for(db: Db) -> Option<Kek> {
    // SQLite uses the default KEK file beside the database; PostgreSQL needs one given.
    (db == Db::Postgres).then(|| Kek::generate().expect("kek"))
}

async fn stored_encrypted(db: Db) {
    let Some(t) = TestDb::new(db) else { return };
    let kek = kek_for(db);
    let s = t.open(kek.as_ref()).await;
    s.enroll_card(&card("C-1", NUMBER)).await.expect("enroll");
    s.accept_shipment(&shipment("O-1", "TRK-1"))
        .await
        .expect("ship");
    // Read back in clear, through every read path.
    let c = s.get_card("C-1").await.expect("get").expect("card");
    assert_eq!(c.number.expose(), NUMBER);
    assert_eq!(
        s.list_cards(10, 0).await.expect("list")[0].number.expose(),
        NUMBER
    );
    let sh = s
        .shipment_by_tracking("TRK-1")
        .await
        .expect("get")
        .expect("shipment");
    assert_eq!(
        (sh.addressee.expose(), sh.address.expose()),
        (ADDRESSEE, ADDRESS)
    );
    let again = s
        .accept_shipment(&shipment("O-1", "TRK-9"))
        .await
        .expect("retry");
    assert!(!again.created);
    assert_eq!(again.record.address.expose(), ADDRESS);
    assert_eq!(s.card_ids_by_number(NUMBER).await.expect("lookup"), ["C-1"]);
    assert!(
        s.card_ids_by_number(NUMBER_2)
            .await
            .expect("lookup")
            .is_empty()
    );
    // Nothing in clear in the database.
    s.close().await;
    let raw = t.raw().await;
    assert!(
        found(&raw, "C-1") && found(&raw, "TRK-1"),
        "the scan reads the rows"
    );
    for secret in [NUMBER, ADDRESS, ADDRESSEE] {
        assert!(
            !found(&raw, secret),
            "{secret} in clear in the {db:?} database"
        );
    }
    #[cfg(unix)]
    if db == Db::Sqlite {
        use std::os::unix::fs::PermissionsExt as _;
        let kek_file = t.dir.path().join("issuer.kek");
        let mode = std::fs::metadata(&kek_file)
            .expect("kek file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Another KEK opens the database but not its data keys: a clear error, no data.
    let wrong = Kek::generate().expect("kek");
    let s = t.open(Some(&wrong)).await;
    let e = s.get_card("C-1").await.expect_err("wrong KEK");
    assert!(matches!(e, StoreError::DataKey(_)), "{e}");
    assert!(e.to_string().contains("wrong KEK"), "{e}");
    assert!(!e.to_string().contains(NUMBER));
    s.close().await;
    if db == Db::Postgres {
        // PostgreSQL without any KEK refuses, naming how to give one.
        let s = t.open(None).await;
        let e = s.get_card("C-1").await.expect_err("no KEK");
        assert!(e.to_string().contains("WARIFU_DATA_KEK_FILE"), "{e}");
        s.close().await;
    }
    t.drop().await;
}

async fn rotation_while_another_store_runs(db: Db) {
    let Some(t) = TestDb::new(db) else { return };
    let kek = kek_for(db);
    let service = t.open(kek.as_ref()).await;
    service
        .enroll_card(&card("C-1", NUMBER))
        .await
        .expect("enroll");
    service
        .accept_shipment(&shipment("O-1", "TRK-1"))
        .await
        .expect("ship");
    let first = service.data_keys().await.expect("keys");
    let active = first.iter().find(|k| k.active).expect("active").key_id;
    // The operator's command: another store on the same database rotates.
    let cli = t.open(kek.as_ref()).await;
    let new = cli.rotate_data_key(10).await.expect("rotate");
    assert!(new > active);
    // The service, not refreshed yet, still writes under the old key: still readable.
    service
        .enroll_card(&card("C-2", NUMBER_2))
        .await
        .expect("enroll under the old key");
    // The pass moves every row (the late one too).
    assert_eq!(cli.reencrypt(1).await.expect("reencrypt"), 3);
    assert_eq!(cli.reencrypt(100).await.expect("again"), 0, "nothing left");
    let keys = cli.data_keys().await.expect("keys");
    let old = keys.iter().find(|k| k.key_id == active).expect("old key");
    assert_eq!(
        (old.rows, old.active, old.retired_at_ms),
        (0, false, Some(10))
    );
    assert_eq!(keys.iter().find(|k| k.key_id == new).expect("new").rows, 3);
    // The service reads the moved rows (it loads the new key on meeting it) and, refreshed,
    // writes under the new key.
    let c1 = service.get_card("C-1").await.expect("get").expect("card");
    assert_eq!(c1.number.expose(), NUMBER);
    let sh = service
        .get_shipment("merchant:shop.example", &OrderId::from("O-1"))
        .await
        .expect("get")
        .expect("shipment");
    assert_eq!(sh.address.expose(), ADDRESS);
    service.refresh_data_keys().await.expect("refresh");
    service
        .accept_shipment(&shipment("O-2", "TRK-2"))
        .await
        .expect("ship");
    let keys = cli.data_keys().await.expect("keys");
    assert_eq!(keys.iter().find(|k| k.key_id == new).expect("new").rows, 4);
    // The old key, used by no row, is dropped; the active one never.
    assert_eq!(cli.retire_data_keys(11).await.expect("retire"), [active]);
    assert!(
        cli.retire_data_keys(i64::MAX)
            .await
            .expect("retire")
            .is_empty()
    );
    assert_eq!(
        service.card_ids_by_number(NUMBER_2).await.expect("lookup"),
        ["C-2"],
        "the lookup hash survives rotation"
    );
    // KEK rotation: the keys re-wrapped; the new KEK opens them, the old one no more.
    let next = Kek::generate().expect("kek");
    assert_eq!(
        cli.rewrap_data_keys(&next).await.expect("rewrap"),
        2,
        "lookup and data key"
    );
    cli.close().await;
    service.close().await;
    let s = t.open(Some(&next)).await;
    assert_eq!(
        s.get_card("C-2")
            .await
            .expect("get")
            .expect("card")
            .number
            .expose(),
        NUMBER_2
    );
    s.close().await;
    let s = t.open(kek.as_ref()).await;
    assert!(
        s.get_card("C-2").await.is_err(),
        "the old KEK opens nothing"
    );
    s.close().await;
    t.drop().await;
}

/// Rows written in plaintext (as before schema version 5) are encrypted in place the first
/// time the store loads its keys; on SQLite the old text is gone from the file and its WAL.
async fn plaintext_rows_are_encrypted_in_place(db: Db) {
    let Some(t) = TestDb::new(db) else { return };
    let kek = kek_for(db);
    let s = t.open(kek.as_ref()).await;
    s.close().await;
    // An older build's rows, written straight into the tables.
    let insert_card = "INSERT INTO issuer_cards (card_id, cardholder_id, holder_name, number, \
         expiry_year, expiry_month, status, credit_limit, available, currency, created_at_ms) \
         VALUES ('C-OLD', 'cardholder:hanako@mail.example', 'Hanako Yamada', $1, 2031, 7, \
         'active', 5000, 5000, 'JPY', 1)";
    let insert_ship = "INSERT INTO carrier_shipments (tracking_number, merchant_id, order_id, \
         cardholder_id, addressee, address, parcel, status, created_at_ms, updated_at_ms) \
         VALUES ('TRK-OLD', 'merchant:shop.example', 'O-OLD', 'c', $1, $2, 'p', 'accepted', 1, 1)";
    match db {
        Db::Sqlite => {
            let path = Store::party_path(t.dir.path(), Party::Issuer);
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("raw");
            sqlx::query(insert_card)
                .bind(NUMBER)
                .execute(&pool)
                .await
                .expect("card");
            sqlx::query(insert_ship)
                .bind(ADDRESSEE)
                .bind(ADDRESS)
                .execute(&pool)
                .await
                .expect("shipment");
            pool.close().await;
            assert!(found(&t.raw().await, NUMBER), "the old row is in clear");
        }
        Db::Postgres => {
            let schema = t.schema.clone().expect("schema");
            let pool = sqlx::PgPool::connect(&t.url).await.expect("raw");
            for (sql, binds) in [
                (insert_card, vec![NUMBER]),
                (insert_ship, vec![ADDRESSEE, ADDRESS]),
            ] {
                let sql = sql.replace("INTO ", &format!("INTO {schema}."));
                let mut q = sqlx::query(&sql);
                for b in binds {
                    q = q.bind(b);
                }
                q.execute(&pool).await.expect("insert");
            }
            pool.close().await;
        }
    }
    let s = t.open(kek.as_ref()).await;
    let c = s.get_card("C-OLD").await.expect("get").expect("card");
    assert_eq!(c.number.expose(), NUMBER);
    let sh = s
        .shipment_by_tracking("TRK-OLD")
        .await
        .expect("get")
        .expect("shipment");
    assert_eq!(sh.address.expose(), ADDRESS);
    assert_eq!(
        s.card_ids_by_number(NUMBER).await.expect("lookup"),
        ["C-OLD"]
    );
    let keys = s.data_keys().await.expect("keys");
    assert_eq!(keys.iter().map(|k| k.rows).sum::<u64>(), 2, "{keys:?}");
    s.close().await;
    let raw = t.raw().await;
    assert!(found(&raw, "C-OLD"), "the scan reads the rows");
    for secret in [NUMBER, ADDRESS, ADDRESSEE] {
        assert!(!found(&raw, secret), "{secret} left in clear ({db:?})");
    }
    t.drop().await;
}

/// The KEM key ring (issue 19): stored wrapped, never in clear; one row per epoch; deleted
/// epochs are gone; a KEK rotation re-wraps it with the data keys, and the old KEK opens
/// nothing.
async fn kem_keys_at_rest(db: Db) {
    let Some(t) = TestDb::new(db) else { return };
    let kek = kek_for(db);
    let s = t.open(kek.as_ref()).await;
    let one = KemSecretKey::generate(1, &mut OsRandom).expect("key 1");
    let two = KemSecretKey::generate(2, &mut OsRandom).expect("key 2");
    assert!(s.add_kem_key(&one, 10).await.expect("add 1"));
    assert!(s.add_kem_key(&two, 20).await.expect("add 2"));
    let again = KemSecretKey::generate(2, &mut OsRandom).expect("another 2");
    assert!(
        !s.add_kem_key(&again, 30).await.expect("taken"),
        "one key per epoch"
    );
    let stored = s.kem_keys().await.expect("keys");
    assert_eq!(
        stored
            .iter()
            .map(|k| (k.key.epoch(), k.key.public().clone(), k.created_at_ms))
            .collect::<Vec<_>>(),
        vec![(1, one.public().clone(), 10), (2, two.public().clone(), 20)]
    );
    // A key in the database only wrapped.
    if db == Db::Sqlite {
        s.close().await;
        let raw = t.raw().await;
        for k in [&one, &two] {
            assert!(
                !raw.windows(32).any(|w| w == k.expose_bytes()),
                "a KEM key in clear"
            );
        }
    }
    let s = t.open(kek.as_ref()).await;
    assert_eq!(s.delete_kem_keys(&[1]).await.expect("delete"), 1);
    // KEK rotation re-wraps the ring too.
    let next = Kek::generate().expect("kek");
    s.rewrap_data_keys(&next).await.expect("rewrap");
    s.close().await;
    let s = t.open(Some(&next)).await;
    let left: Vec<u32> = s
        .kem_keys()
        .await
        .expect("under the new KEK")
        .iter()
        .map(|k| k.key.epoch())
        .collect();
    assert_eq!(left, vec![2]);
    s.close().await;
    let s = t.open(kek.as_ref()).await;
    assert!(s.kem_keys().await.is_err(), "the old KEK opens nothing");
    s.close().await;
    t.drop().await;
}

macro_rules! both {
    ($scenario:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $scenario(Db::Sqlite).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $scenario(Db::Postgres).await;
        }
    };
}

both!(stored_encrypted: stored_encrypted_sqlite, stored_encrypted_postgres);
both!(rotation_while_another_store_runs: rotation_sqlite, rotation_postgres);
both!(plaintext_rows_are_encrypted_in_place: legacy_rows_sqlite, legacy_rows_postgres);
both!(kem_keys_at_rest: kem_keys_sqlite, kem_keys_postgres);
