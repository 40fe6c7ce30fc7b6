//! The SQL behind the traits, written once (`ops.rs`) and compiled for each backend.
//!
//! Both backends accept `$N` placeholders (sqlx maps them for SQLite), `ON CONFLICT`,
//! `RETURNING` and the same types (every integer is BIGINT), so one text serves both; the
//! differences are constants: SQLite write transactions start with `BEGIN IMMEDIATE` (take
//! the write lock first, so a read-then-write never fails halfway), PostgreSQL locks rows
//! with `FOR UPDATE`.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Postgres, Sqlite};

pub(crate) use crate::batch::WriteFn;
use crate::error::{Result, StoreError};
use crate::open::Pools;

/// The SQLite write path: through the group-commit writer.
pub(crate) async fn sqlite_write<T: Send + 'static>(
    p: &Pools<Sqlite>,
    op: &'static str,
    f: WriteFn<SqliteConnection, T>,
) -> Result<T> {
    match &p.batcher {
        Some(b) => b.run(op, f).await,
        None => Err(StoreError::Database {
            op,
            message: "no SQLite writer".into(),
        }),
    }
}

/// The PostgreSQL write path: one transaction per operation (PostgreSQL commits concurrent
/// transactions together by itself).
pub(crate) async fn postgres_write<T: Send + 'static>(
    p: &Pools<Postgres>,
    op: &'static str,
    f: WriteFn<PgConnection, T>,
) -> Result<T> {
    let mut tx = p.writer.begin().await.map_err(|e| StoreError::db(op, e))?;
    match f(&mut tx).await {
        Ok(v) => {
            tx.commit().await.map_err(|e| StoreError::db(op, e))?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// A `u64` amount as the signed column type.
pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(what))
}

/// A stored non-negative integer.
pub(crate) fn to_u64(v: i64, what: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

/// Whether a string is a usable identifier (non-empty, at most 256 bytes, no control chars).
pub(crate) fn check_id(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1–256 bytes without control characters"
        )));
    }
    Ok(())
}

/// A name compared loosely: case and runs of spaces do not matter.
pub(crate) fn normalize_name(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Constant-time comparison of two card numbers.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Keeps an error note short (it is stored and may be shown).
pub(crate) fn short(s: &str) -> String {
    s.chars().take(500).collect()
}

/// The SQLite implementation.
pub(crate) mod sqlite {
    pub(crate) type Db = sqlx::Sqlite;
    const SQLITE: bool = true;
    use super::sqlite_write as run_write;
    include!("ops.rs");
    include!("lifecycle.rs");
}

/// The PostgreSQL implementation.
pub(crate) mod postgres {
    pub(crate) type Db = sqlx::Postgres;
    const SQLITE: bool = false;
    use super::postgres_write as run_write;
    include!("ops.rs");
    include!("lifecycle.rs");
}
