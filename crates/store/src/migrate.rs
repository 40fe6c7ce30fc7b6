//! Embedded, versioned schema migrations for SQLite and PostgreSQL, run on open.
//!
//! The `schema_version` table lists the versions applied. Each migration runs in its own
//! transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: under an advisory lock, so replicas
//! starting together do not race). A database newer than this program is refused.

use crate::error::{Result, StoreError};
use crate::open::{Db, Store};

/// One migration: the same schema written for each backend.
struct Migration {
    version: i64,
    name: &'static str,
    /// SQL with `{id}` (auto-increment primary key) and `{blob}` (binary type) placeholders.
    sql: &'static str,
}

/// `migration!(version, "file in migrations/", "name")`.
macro_rules! migration {
    ($version:literal, $file:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("migrations/", $file)),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(
        1,
        "0001_init.sql",
        "parties: idempotency, merchant orders and outbox, issuer cards and ledger, carrier shipments"
    ),
    migration!(
        2,
        "0002_lifecycle.sql",
        "carrier lifecycle: each shipment's issuer and delivery time (proof of delivery)"
    ),
    migration!(
        3,
        "0003_merchant_lifecycle.sql",
        "merchant lifecycle: order facts (payment receipt, delivery status, proof of delivery)"
    ),
    migration!(
        4,
        "0004_issuer_carrier.sql",
        "issuer and carrier bindings: refunds keyed by order, each authorization's carrier and header digest, each shipment's header digest"
    ),
    migration!(
        5,
        "0005_at_rest.sql",
        "data at rest: card numbers and destinations encrypted under wrapped data keys"
    ),
    migration!(
        6,
        "0006_webhooks.sql",
        "merchant webhooks: endpoints, events recorded with each order transition, deliveries and their attempts"
    ),
    migration!(
        8,
        "0008_session_seen.sql",
        "sessions: replay records shared by a party's replicas"
    ),
    migration!(
        9,
        "0009_kem_keys.sql",
        "forward secrecy: the party's KEM key ring, wrapped under the key-encryption key"
    ),
    migration!(
        10,
        "0010_carrier_outbox.sql",
        "carrier outbox: delivery events pushed to the order's merchant"
    ),
];

/// The highest schema version this program knows.
pub(crate) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

fn render(sql: &str, sqlite: bool) -> String {
    let (id, blob) = if sqlite {
        ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB")
    } else {
        ("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA")
    };
    sql.replace("{id}", id).replace("{blob}", blob)
}

const CREATE_VERSION: &str = "CREATE TABLE IF NOT EXISTS schema_version (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn mig(e: sqlx::Error) -> StoreError {
    StoreError::Migration(StoreError::db("migrate", e).to_string())
}

fn lite_mig(e: rusqlite::Error) -> StoreError {
    StoreError::Migration(StoreError::lite("migrate", e).to_string())
}

/// Brings a SQLite database to [`LATEST`], each migration in its own transaction.
fn migrate_sqlite(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    c.execute_batch(CREATE_VERSION)?;
    for m in MIGRATIONS {
        c.execute_batch("BEGIN IMMEDIATE")?;
        let step = || -> rusqlite::Result<()> {
            let done = c
                .prepare("SELECT version FROM schema_version WHERE version = ?1")?
                .exists([m.version])?;
            if !done {
                c.execute_batch(&render(m.sql, true))?;
                c.execute(
                    "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
                    rusqlite::params![m.version, m.name, now_ms()],
                )?;
            }
            Ok(())
        };
        match step() {
            Ok(()) => c.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Brings the database to [`LATEST`].
pub(crate) async fn run(store: &Store) -> Result<()> {
    match &store.db {
        Db::Sqlite(p) => {
            p.writer
                .direct("migrate", |c| migrate_sqlite(c.raw()).map_err(lite_mig))
                .await?;
        }
        Db::Postgres(p) => {
            let mut tx = p.writer.begin().await.map_err(mig)?;
            // One migrator at a time per database (the key is "warifu" in ASCII).
            sqlx::query("SELECT pg_advisory_xact_lock(8675309773140)")
                .execute(&mut *tx)
                .await
                .map_err(mig)?;
            sqlx::query(CREATE_VERSION)
                .execute(&mut *tx)
                .await
                .map_err(mig)?;
            for m in MIGRATIONS {
                let done: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM schema_version WHERE version = $1")
                        .bind(m.version)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(mig)?;
                if done.is_none() {
                    sqlx::raw_sql(&render(m.sql, false))
                        .execute(&mut *tx)
                        .await
                        .map_err(mig)?;
                    sqlx::query(
                        "INSERT INTO schema_version (version, name, applied_at_ms) VALUES ($1, $2, $3)",
                    )
                    .bind(m.version)
                    .bind(m.name)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(mig)?;
                }
            }
            tx.commit().await.map_err(mig)?;
        }
    }
    let v = current(store).await?;
    if v > LATEST {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {v}, newer than this program's {LATEST}"
        )));
    }
    Ok(())
}

/// The highest version applied.
pub(crate) async fn current(store: &Store) -> Result<i64> {
    const Q: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
    match &store.db {
        Db::Sqlite(p) => {
            p.writer
                .direct("schema_version", |c| {
                    c.raw()
                        .query_row(Q, [], |r| r.get::<_, i64>(0))
                        .map_err(lite_mig)
                })
                .await
        }
        Db::Postgres(p) => sqlx::query_scalar::<_, i64>(Q)
            .fetch_one(&p.writer)
            .await
            .map_err(mig),
    }
}
