//! The query kit for SQLite (rusqlite, see `crate::lite`): the names and call shapes of
//! `kit_pg`, so the SQL of `sql/*` is written once. A statement runs where it is given: on
//! the caller's thread over a read connection (`&p.reader`), inside a write job on the writer
//! thread (`&mut *c`), or sent to the writer outside any batch (`&p.writer`).

use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;

use rusqlite::types::Value;

use crate::error::{Result, StoreError};
use crate::lite::{Reader, Row, Writer, execute, fetch};
use crate::open::LitePools;
use crate::sql::{WriteFn, to_u64};

pub(crate) use crate::lite::Conn;
pub(crate) type P = LitePools;
pub(crate) type DbRow = Row;

/// A statement with its bound values.
#[derive(Debug)]
pub(crate) struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Value>,
}

/// A statement.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql: Cow::Borrowed(sql),
        args: Vec::new(),
    }
}

impl Query<'_> {
    /// Binds the next `$N`.
    pub(crate) fn bind(mut self, v: impl Bind) -> Self {
        self.args.push(v.value());
        self
    }
}

/// A one-column statement whose values are `O`s.
#[derive(Debug)]
pub(crate) struct Scalar<'q, O> {
    q: Query<'q>,
    out: PhantomData<fn() -> O>,
}

/// A one-column statement.
pub(crate) fn query_scalar<O>(sql: &str) -> Scalar<'_, O> {
    Scalar {
        q: query(sql),
        out: PhantomData,
    }
}

impl<O> Scalar<'_, O> {
    /// Binds the next `$N`.
    pub(crate) fn bind(mut self, v: impl Bind) -> Self {
        self.q = self.q.bind(v);
        self
    }
}

/// A value that can be bound to a placeholder.
pub(crate) trait Bind {
    fn value(self) -> Value;
}

impl Bind for i64 {
    fn value(self) -> Value {
        Value::Integer(self)
    }
}
impl Bind for &i64 {
    fn value(self) -> Value {
        Value::Integer(*self)
    }
}
impl Bind for i32 {
    fn value(self) -> Value {
        Value::Integer(i64::from(self))
    }
}
impl Bind for bool {
    fn value(self) -> Value {
        Value::Integer(i64::from(self))
    }
}
impl Bind for &str {
    fn value(self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl Bind for String {
    fn value(self) -> Value {
        Value::Text(self)
    }
}
impl Bind for &String {
    fn value(self) -> Value {
        Value::Text(self.clone())
    }
}
impl Bind for &[u8] {
    fn value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl Bind for Vec<u8> {
    fn value(self) -> Value {
        Value::Blob(self)
    }
}
impl Bind for &Vec<u8> {
    fn value(self) -> Value {
        Value::Blob(self.clone())
    }
}
impl<T: Bind> Bind for Option<T> {
    fn value(self) -> Value {
        self.map_or(Value::Null, Bind::value)
    }
}
impl Bind for &Option<String> {
    fn value(self) -> Value {
        self.as_ref()
            .map_or(Value::Null, |s| Value::Text(s.clone()))
    }
}
impl Bind for &Option<Vec<u8>> {
    fn value(self) -> Value {
        self.as_ref()
            .map_or(Value::Null, |b| Value::Blob(b.clone()))
    }
}
impl Bind for &Option<i64> {
    fn value(self) -> Value {
        self.map_or(Value::Null, Value::Integer)
    }
}

/// A value read from a column.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for i32 {
    fn from_value(v: &Value) -> Option<i32> {
        i64::from_value(v).and_then(|i| i32::try_from(i).ok())
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.clone().into_bytes()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Where a statement runs.
pub(crate) trait Ex: Send {
    /// Every row `sql` returns.
    fn rows(
        self,
        sql: &str,
        args: &[Value],
    ) -> impl Future<Output = rusqlite::Result<Vec<Row>>> + Send;
    /// How many rows `sql` changed.
    fn changes(
        self,
        sql: &str,
        args: &[Value],
    ) -> impl Future<Output = rusqlite::Result<u64>> + Send;
}

impl Ex for &mut Conn {
    fn rows(
        self,
        sql: &str,
        args: &[Value],
    ) -> impl Future<Output = rusqlite::Result<Vec<Row>>> + Send {
        std::future::ready(fetch(self.raw(), sql, args))
    }
    fn changes(
        self,
        sql: &str,
        args: &[Value],
    ) -> impl Future<Output = rusqlite::Result<u64>> + Send {
        std::future::ready(execute(self.raw(), sql, args))
    }
}

impl Ex for &Reader {
    async fn rows(self, sql: &str, args: &[Value]) -> rusqlite::Result<Vec<Row>> {
        fetch(self.conn().await?.raw(), sql, args)
    }
    async fn changes(self, sql: &str, args: &[Value]) -> rusqlite::Result<u64> {
        execute(self.conn().await?.raw(), sql, args)
    }
}

/// The writer stopped: reported as a closed store.
fn writer_gone(_: StoreError) -> rusqlite::Error {
    rusqlite::Error::InvalidPath("the SQLite writer has stopped".into())
}

impl Ex for &Writer {
    fn rows(
        self,
        sql: &str,
        args: &[Value],
    ) -> impl Future<Output = rusqlite::Result<Vec<Row>>> + Send {
        let (sql, args) = (sql.to_owned(), args.to_vec());
        async move {
            self.direct("statement", move |c| Ok(fetch(c.raw(), &sql, &args)))
                .await
                .map_err(writer_gone)?
        }
    }
    fn changes(
        self,
        sql: &str,
        args: &[Value],
    ) -> impl Future<Output = rusqlite::Result<u64>> + Send {
        let (sql, args) = (sql.to_owned(), args.to_vec());
        async move {
            self.direct("statement", move |c| Ok(execute(c.raw(), &sql, &args)))
                .await
                .map_err(writer_gone)?
        }
    }
}

pub(crate) fn err(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::lite(op, e)
}

/// Runs a write operation through the group-commit writer; the result is returned only
/// after the commit.
pub(crate) async fn write<T: Send + 'static>(
    p: &P,
    op: &'static str,
    f: WriteFn<Conn, T>,
) -> Result<T> {
    p.writer.run(op, f).await
}

/// On SQLite a write that could run outside a transaction still joins the writer's next
/// batch (one commit for many): as [`write`].
pub(crate) async fn autocommit<T: Send + 'static>(
    p: &P,
    op: &'static str,
    f: WriteFn<Conn, T>,
) -> Result<T> {
    write(p, op, f).await
}

/// A column of a row; a missing or mistyped column is corrupt data.
pub(crate) fn get<T: FromValue>(r: &DbRow, col: &'static str) -> Result<T> {
    r.value(col)
        .and_then(T::from_value)
        .ok_or(StoreError::Corrupt(col))
}

/// Every row, mapped.
pub(crate) async fn all<T>(
    ex: impl Ex,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = ex.rows(&q.sql, &q.args).await.map_err(err(op))?;
    rows.iter().map(map).collect()
}

/// The row, if there is one, mapped.
pub(crate) async fn optional<T>(
    ex: impl Ex,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<Option<T>> {
    let rows = ex.rows(&q.sql, &q.args).await.map_err(err(op))?;
    rows.first().map(map).transpose()
}

/// The one row, mapped.
pub(crate) async fn one<T>(
    ex: impl Ex,
    op: &'static str,
    q: Query<'_>,
    map: impl Fn(&DbRow) -> Result<T>,
) -> Result<T> {
    optional(ex, op, q, map)
        .await?
        .ok_or_else(|| StoreError::lite(op, rusqlite::Error::QueryReturnedNoRows))
}

fn first<O: FromValue>(row: &Row) -> Result<O> {
    row.first()
        .and_then(O::from_value)
        .ok_or(StoreError::Corrupt("value"))
}

/// The value of a one-column query, if there is a row.
pub(crate) async fn scalar_opt<O: FromValue>(
    ex: impl Ex,
    op: &'static str,
    q: Scalar<'_, O>,
) -> Result<Option<O>> {
    let rows = ex.rows(&q.q.sql, &q.q.args).await.map_err(err(op))?;
    rows.first().map(first).transpose()
}

/// The one value of a one-column query.
pub(crate) async fn scalar<O: FromValue>(
    ex: impl Ex,
    op: &'static str,
    q: Scalar<'_, O>,
) -> Result<O> {
    scalar_opt(ex, op, q)
        .await?
        .ok_or_else(|| StoreError::lite(op, rusqlite::Error::QueryReturnedNoRows))
}

/// Every value of a one-column query.
pub(crate) async fn scalars<O: FromValue>(
    ex: impl Ex,
    op: &'static str,
    q: Scalar<'_, O>,
) -> Result<Vec<O>> {
    let rows = ex.rows(&q.q.sql, &q.q.args).await.map_err(err(op))?;
    rows.iter().map(first).collect()
}

/// A count (stored as a signed integer).
pub(crate) async fn count(ex: impl Ex, op: &'static str, q: Scalar<'_, i64>) -> Result<u64> {
    to_u64(scalar(ex, op, q).await?, "count")
}

/// Runs a statement; the number of rows it changed.
pub(crate) async fn exec(ex: impl Ex, op: &'static str, q: Query<'_>) -> Result<u64> {
    ex.changes(&q.sql, &q.args).await.map_err(err(op))
}

/// Runs an `INSERT` of a new row: a taken key is a conflict, `what` says which.
pub(crate) async fn insert_new(
    ex: impl Ex,
    op: &'static str,
    q: Query<'_>,
    what: &str,
) -> Result<()> {
    match ex.changes(&q.sql, &q.args).await {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
        {
            Err(StoreError::Conflict(format!("{what} with this id exists")))
        }
        Err(e) => Err(StoreError::lite(op, e)),
    }
}
