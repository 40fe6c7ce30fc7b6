//! What every party's SQL shares: the query kit (one fetch helper per shape) and `PartyStore`.

use sqlx::{Executor, Row};

use super::{Db, SQLITE, run_write};
use crate::error::{Result, StoreError};
use crate::open::Pools;
use crate::sql::{WriteFn, check_id, to_u64};
use crate::types::{Bucket, StoredResponse};

pub(super) type P = Pools<Db>;
pub(super) type Conn = <Db as sqlx::Database>::Connection;
pub(super) type DbRow = <Db as sqlx::Database>::Row;
type Args<'q> = <Db as sqlx::Database>::Arguments<'q>;
/// A query with its binds, as `sqlx::query(…).bind(…)` builds it.
pub(super) type Query<'q> = sqlx::query::Query<'q, Db, Args<'q>>;
/// A one-column query, as `sqlx::query_scalar(…).bind(…)` builds it.
pub(super) type Scalar<'q, O> = sqlx::query::QueryScalar<'q, Db, O, Args<'q>>;

pub(super) const FOR_UPDATE: &str = if SQLITE { "" } else { " FOR UPDATE" };
pub(super) const SKIP_LOCKED: &str = if SQLITE {
    ""
} else {
    " FOR UPDATE SKIP LOCKED"
};

pub(super) fn err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::db(op, e)
}

/// Runs a write operation in a transaction: SQLite through the group-commit writer,
/// PostgreSQL in its own transaction. The result is returned only after the commit.
pub(super) async fn write<T: Send + 'static>(
    p: &P,
    op: &'static str,
    f: WriteFn<Conn, T>,
) -> Result<T> {
    run_write(p, op, f).await
}

/// A column of a row; a missing or mistyped column is corrupt data.
pub(super) fn get<'r, T>(r: &'r DbRow, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    r.try_get(col).map_err(|_| StoreError::Corrupt(col))
}

/// `$from, $from+1, …` (`n` placeholders).
pub(super) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// The fetch helpers: each query states its SQL, binds and row mapping; these run it on a
// pool (`&p.reader`) or inside a write (`&mut *c`) and name the operation in any error.

/// Every row, mapped.
pub(super) async fn all<'c, T>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = q.fetch_all(ex).await.map_err(err(op))?;
    rows.iter().map(map).collect()
}

/// The row, if there is one, mapped.
pub(super) async fn optional<'c, T>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<Option<T>> {
    let row = q.fetch_optional(ex).await.map_err(err(op))?;
    row.as_ref().map(map).transpose()
}

/// The one row, mapped.
pub(super) async fn one<'c, T>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<T> {
    let row = q.fetch_one(ex).await.map_err(err(op))?;
    map(&row)
}

/// The one value of a one-column query.
pub(super) async fn scalar<'c, O>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Scalar<'_, O>,
) -> Result<O>
where
    O: Send + Unpin,
    (O,): Send + Unpin + for<'r> sqlx::FromRow<'r, DbRow>,
{
    q.fetch_one(ex).await.map_err(err(op))
}

/// The value of a one-column query, if there is a row.
pub(super) async fn scalar_opt<'c, O>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Scalar<'_, O>,
) -> Result<Option<O>>
where
    O: Send + Unpin,
    (O,): Send + Unpin + for<'r> sqlx::FromRow<'r, DbRow>,
{
    q.fetch_optional(ex).await.map_err(err(op))
}

/// A count (stored as a signed integer).
pub(super) async fn count<'c>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Scalar<'_, i64>,
) -> Result<u64> {
    to_u64(scalar(ex, op, q).await?, "count")
}

/// Runs a statement; the number of rows it changed.
pub(super) async fn exec<'c>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
) -> Result<u64> {
    let r = q.execute(ex).await.map_err(err(op))?;
    Ok(r.rows_affected())
}

/// Runs an `INSERT` of a new row: a taken key is a conflict, `what` says which.
pub(super) async fn insert_new<'c>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    what: &str,
) -> Result<()> {
    match q.execute(ex).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            Err(StoreError::Conflict(format!("{what} with this id exists")))
        }
        Err(e) => Err(StoreError::db(op, e)),
    }
}

/// Runs a `SELECT k, COUNT(*) AS n … GROUP BY k` and decodes each group's text key.
pub(super) async fn count_by<K>(
    p: &P,
    sql: &'static str,
    op: &'static str,
    decode: fn(&str) -> Result<K>,
) -> Result<Vec<(K, u64)>> {
    all(&p.reader, op, sqlx::query(sql), |r| {
        let k: String = get(r, "k")?;
        Ok((decode(&k)?, to_u64(get(r, "n")?, "count")?))
    })
    .await
}

/// Runs a `SELECT b, k, COUNT(*) AS n … GROUP BY b, k` whose `$1` is the window's start and
/// `$2` the bucket width (both milliseconds; `b` is the bucket's start, `k` the key).
pub(super) async fn buckets(
    p: &P,
    sql: &'static str,
    op: &'static str,
    since_ms: i64,
    bucket_ms: i64,
) -> Result<Vec<Bucket>> {
    if bucket_ms <= 0 {
        return Err(StoreError::Invalid("a bucket must be at least 1 ms wide".into()));
    }
    let q = sqlx::query(sql).bind(since_ms).bind(bucket_ms);
    all(&p.reader, op, q, |r| {
        Ok(Bucket {
            start_ms: get(r, "b")?,
            key: get(r, "k")?,
            count: to_u64(get(r, "n")?, "count")?,
        })
    })
    .await
}

// ------------------------------------------------------------------------------------------
// PartyStore

pub(crate) async fn ping(p: &P) -> Result<()> {
    exec(&p.reader, "ping", sqlx::query("SELECT 1")).await?;
    Ok(())
}

fn stored_response(r: &DbRow) -> Result<StoredResponse> {
    let status: i64 = get(r, "status")?;
    Ok(StoredResponse {
        status: u16::try_from(status).map_err(|_| StoreError::Corrupt("status"))?,
        body: get(r, "body")?,
        fingerprint: get(r, "fingerprint")?,
        created_at_ms: get(r, "created_at_ms")?,
    })
}

const IDEM_GET: &str = "SELECT status, body, fingerprint, created_at_ms FROM idempotency \
                        WHERE scope = $1 AND key = $2";

pub(crate) async fn idempotency_get(
    p: &P,
    scope: &str,
    key: &str,
) -> Result<Option<StoredResponse>> {
    let q = sqlx::query(IDEM_GET).bind(scope).bind(key);
    optional(&p.reader, "idempotency_get", q, stored_response).await
}

pub(super) async fn idempotency_put_in(
    c: &mut Conn,
    scope: &str,
    key: &str,
    resp: &StoredResponse,
) -> Result<StoredResponse> {
    const OP: &str = "idempotency_put";
    check_id("idempotency scope", scope)?;
    check_id("idempotency key", key)?;
    let q = sqlx::query(
        "INSERT INTO idempotency (scope, key, status, body, fingerprint, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING \
         RETURNING status, body, fingerprint, created_at_ms",
    )
    .bind(scope)
    .bind(key)
    .bind(i64::from(resp.status))
    .bind(&resp.body)
    .bind(&resp.fingerprint)
    .bind(resp.created_at_ms);
    if let Some(stored) = optional(&mut *c, OP, q, stored_response).await? {
        return Ok(stored);
    }
    let q = sqlx::query(IDEM_GET).bind(scope).bind(key);
    one(&mut *c, OP, q, stored_response).await
}

write_op!(idempotency_put = idempotency_put_in(scope: &str => scope.to_owned(),
    key: &str => key.to_owned(), resp: &StoredResponse => resp.clone()) -> StoredResponse);

async fn idempotency_purge_in(c: &mut Conn, before_ms: i64) -> Result<u64> {
    let q = sqlx::query("DELETE FROM idempotency WHERE created_at_ms < $1").bind(before_ms);
    exec(&mut *c, "idempotency_purge", q).await
}

write_op!(idempotency_purge = idempotency_purge_in(before_ms: i64) -> u64);
