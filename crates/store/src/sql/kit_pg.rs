//! The query kit for PostgreSQL (sqlx): one fetch helper per shape, each naming its operation
//! in any error. `kit_lite` has the same names and call shapes for SQLite, so the SQL of
//! `sql/*` is written once.

use sqlx::postgres::PgConnection;
use sqlx::{Executor, Postgres, Row};

use crate::error::{Result, StoreError};
use crate::open::Pools;
use crate::sql::{WriteFn, to_u64};

type Db = Postgres;
pub(crate) type P = Pools<Db>;
pub(crate) type Conn = PgConnection;
pub(crate) type DbRow = <Db as sqlx::Database>::Row;
type Args<'q> = <Db as sqlx::Database>::Arguments<'q>;
/// A query with its binds, as `query(…).bind(…)` builds it.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Db, Args<'q>>;
/// A one-column query, as `query_scalar(…).bind(…)` builds it.
pub(crate) type Scalar<'q, O> = sqlx::query::QueryScalar<'q, Db, O, Args<'q>>;

/// A statement.
pub(crate) fn query(sql: &str) -> Query<'_> {
    sqlx::query(sql)
}

/// A one-column statement.
pub(crate) fn query_scalar<O>(sql: &str) -> Scalar<'_, O>
where
    (O,): for<'r> sqlx::FromRow<'r, DbRow>,
{
    sqlx::query_scalar(sql)
}

pub(crate) fn err(op: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::db(op, e)
}

/// Runs a write operation in its own transaction (PostgreSQL commits concurrent
/// transactions together by itself). The result is returned only after the commit.
pub(crate) async fn write<T: Send + 'static>(
    p: &P,
    op: &'static str,
    f: WriteFn<Conn, T>,
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

/// Runs a write operation on a pooled connection outside any transaction: each of its
/// statements commits alone (for an operation of one statement, or of statements that each
/// stand alone). One round trip per statement instead of a BEGIN and a COMMIT more.
pub(crate) async fn autocommit<T: Send + 'static>(
    p: &P,
    op: &'static str,
    f: WriteFn<Conn, T>,
) -> Result<T> {
    let mut c = p
        .writer
        .acquire()
        .await
        .map_err(|e| StoreError::db(op, e))?;
    f(&mut c).await
}

/// A column of a row; a missing or mistyped column is corrupt data.
pub(crate) fn get<'r, T>(r: &'r DbRow, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    r.try_get(col).map_err(|_| StoreError::Corrupt(col))
}

/// Every row, mapped.
pub(crate) async fn all<'c, T>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = q.fetch_all(ex).await.map_err(err(op))?;
    rows.iter().map(map).collect()
}

/// The row, if there is one, mapped.
pub(crate) async fn optional<'c, T>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<Option<T>> {
    let row = q.fetch_optional(ex).await.map_err(err(op))?;
    row.as_ref().map(map).transpose()
}

/// The one row, mapped.
pub(crate) async fn one<'c, T>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<T> {
    let row = q.fetch_one(ex).await.map_err(err(op))?;
    map(&row)
}

/// The one value of a one-column query.
pub(crate) async fn scalar<'c, O>(
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
pub(crate) async fn scalar_opt<'c, O>(
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

/// Every value of a one-column query.
pub(crate) async fn scalars<'c, O>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Scalar<'_, O>,
) -> Result<Vec<O>>
where
    O: Send + Unpin,
    (O,): Send + Unpin + for<'r> sqlx::FromRow<'r, DbRow>,
{
    q.fetch_all(ex).await.map_err(err(op))
}

/// A count (stored as a signed integer).
pub(crate) async fn count<'c>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Scalar<'_, i64>,
) -> Result<u64> {
    to_u64(scalar(ex, op, q).await?, "count")
}

/// Runs a statement; the number of rows it changed.
pub(crate) async fn exec<'c>(
    ex: impl Executor<'c, Database = Db>,
    op: &'static str,
    q: Query<'_>,
) -> Result<u64> {
    let r = q.execute(ex).await.map_err(err(op))?;
    Ok(r.rows_affected())
}

/// Runs an `INSERT` of a new row: a taken key is a conflict, `what` says which.
pub(crate) async fn insert_new<'c>(
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
