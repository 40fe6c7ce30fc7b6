//! SQLite through rusqlite, without a thread hop per statement: one writer thread per
//! database commits many requests' write transactions together (group commit); reads run on
//! the caller's thread over a small pool of read-only connections.
//!
//! sqlx runs each SQLite connection on a thread of its own and sends it every statement
//! through a channel: two thread wake-ups per statement, some 60 per order in `warifu bench`,
//! which made the write path one slow serial queue (≈ 0.9 ms per write job under load). Here
//! a write job crosses threads once: the writer thread takes every queued job, runs them one
//! after another inside one `BEGIN IMMEDIATE` transaction, each under its own `SAVEPOINT` (a
//! job that fails is rolled back alone), then commits once. Each caller gets its result only
//! after that commit succeeded, so an answer is never given for something that could still be
//! lost; if the commit fails, every job in the batch fails.
//!
//! A job that panics fails alone, with an error, like a job that returns one (its savepoint
//! is rolled back); the writer thread goes on serving the others.
//!
//! An in-memory database (`sqlite::memory:`) is one connection shared by the writer and the
//! readers (each in-memory connection is a database of its own).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex, mpsc, oneshot};
use warifu_core::meter::{self, Section};

use crate::error::{Result, StoreError};
use crate::open::Synchronous;

/// A boxed, sendable future.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write operation run on a connection inside an open transaction.
pub(crate) type WriteFn<C, T> =
    Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFut<'c, Result<T>> + Send + 'static>;

/// Most jobs in one commit.
const MAX_BATCH: usize = 256;
/// Most jobs waiting for the writer (callers wait beyond that: backpressure).
const QUEUE: usize = 4096;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// One SQLite connection.
#[derive(Debug)]
pub(crate) struct Conn {
    c: Connection,
}

impl Conn {
    fn open(path: &Path, sync: Synchronous, busy: Duration, read_only: bool) -> Result<Conn> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let fail = |e: rusqlite::Error| {
            StoreError::Connect(format!(
                "{}: {}",
                path.display(),
                StoreError::lite("open", e)
            ))
        };
        let c = Connection::open_with_flags(path, flags).map_err(fail)?;
        Conn::setup(c, sync, busy, !read_only).map_err(fail)
    }

    fn memory(busy: Duration) -> Result<Conn> {
        let c = Connection::open_in_memory()
            .map_err(|e| StoreError::Connect(StoreError::lite("open", e).to_string()))?;
        Conn::setup(c, Synchronous::Full, busy, false)
            .map_err(|e| StoreError::Connect(StoreError::lite("open", e).to_string()))
    }

    fn setup(
        c: Connection,
        sync: Synchronous,
        busy: Duration,
        writer: bool,
    ) -> rusqlite::Result<Conn> {
        c.busy_timeout(busy)?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if writer {
            // `journal_mode` answers with the mode it set.
            let _: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            let sync = match sync {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            };
            c.execute_batch(&format!("PRAGMA synchronous = {sync}"))?;
        }
        c.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY")?;
        Ok(Conn { c })
    }

    /// The rusqlite connection (for statements run by the query kit).
    pub(crate) fn raw(&self) -> &Connection {
        &self.c
    }
}

/// A column value of a row, with the row's column names.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The first column's value.
    pub(crate) fn first(&self) -> Option<&Value> {
        self.values.first()
    }

    /// The value of column `name`, if the row has it.
    pub(crate) fn value(&self, name: &str) -> Option<&Value> {
        let i = self.names.iter().position(|n| n == name)?;
        self.values.get(i)
    }
}

/// Prepares `sql` (cached) and binds `args`: `$N` (and `?N`) take argument N, other
/// placeholders the next one in order, as sqlx binds them.
fn prepare<'c>(
    c: &'c Connection,
    sql: &str,
    args: &[Value],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut st = c.prepare_cached(sql)?;
    for i in 1..=st.parameter_count() {
        let n = st
            .parameter_name(i)
            .and_then(|name| name.get(1..))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(i);
        let v = n
            .checked_sub(1)
            .and_then(|k| args.get(k))
            .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        st.raw_bind_parameter(i, v)?;
    }
    Ok(st)
}

thread_local! {
    /// Whether this thread is a database's writer (for the CPU meter's split).
    static WRITER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The meter's section of a statement run on this thread.
fn section() -> Section {
    if WRITER_THREAD.with(std::cell::Cell::get) {
        Section::SqlWrite
    } else {
        Section::SqlRead
    }
}

/// Runs `sql` with `args` on `c`: every row it returns.
pub(crate) fn fetch(c: &Connection, sql: &str, args: &[Value]) -> rusqlite::Result<Vec<Row>> {
    meter::measure(section(), || fetch_rows(c, sql, args))
}

fn fetch_rows(c: &Connection, sql: &str, args: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut st = prepare(c, sql, args)?;
    let names: Arc<[String]> = st.column_names().iter().map(|n| (*n).to_owned()).collect();
    let width = names.len();
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(Value::from(r.get_ref(i)?));
        }
        out.push(Row {
            names: names.clone(),
            values,
        });
    }
    Ok(out)
}

/// Runs `sql` with `args` on `c`: how many rows it changed (0 for a query).
pub(crate) fn execute(c: &Connection, sql: &str, args: &[Value]) -> rusqlite::Result<u64> {
    meter::measure(section(), || {
        let mut st = prepare(c, sql, args)?;
        let read_only = st.readonly();
        let mut rows = st.raw_query();
        while rows.next()?.is_some() {}
        Ok(if read_only { 0 } else { c.changes() })
    })
}

// ------------------------------------------------------------------------------------------
// The writer thread

trait Job: Send {
    fn run<'c>(self: Box<Self>, c: &'c mut Conn) -> BoxFut<'c, Box<dyn Done>>;
    fn fail(self: Box<Self>, e: StoreError);
}

trait Done: Send {
    fn ok(&self) -> bool;
    /// Delivers the job's result, or `commit`'s error if the batch did not commit.
    fn finish(self: Box<Self>, commit: Option<&StoreError>);
}

struct TypedJob<T> {
    op: &'static str,
    f: WriteFn<Conn, T>,
    tx: oneshot::Sender<Result<T>>,
}

struct TypedDone<T> {
    r: Result<T>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T: Send + 'static> Job for TypedJob<T> {
    fn run<'c>(self: Box<Self>, c: &'c mut Conn) -> BoxFut<'c, Box<dyn Done>> {
        let TypedJob { op, f, tx } = *self;
        Box::pin(async move {
            // The job's future is polled under `catch_unwind`, so a panic fails this job
            // instead of ending the writer thread.
            let mut fut = f(c);
            let r = std::future::poll_fn(|cx| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx)))
                    .unwrap_or_else(|_| std::task::Poll::Ready(Err(panicked(op))))
            })
            .await;
            Box::new(TypedDone { r, tx }) as Box<dyn Done>
        })
    }
    fn fail(self: Box<Self>, e: StoreError) {
        let _ = self.tx.send(Err(e));
    }
}

impl<T: Send + 'static> Done for TypedDone<T> {
    fn ok(&self) -> bool {
        self.r.is_ok()
    }
    fn finish(self: Box<Self>, commit: Option<&StoreError>) {
        let r = match (commit, self.r) {
            (Some(e), Ok(_)) => Err(e.clone()),
            (_, r) => r,
        };
        let _ = self.tx.send(r);
    }
}

/// What the writer thread is asked to do.
enum Msg {
    /// A write transaction, committed with its batch.
    Write(Box<dyn Job>),
    /// A closure run on the connection outside any batch (a checkpoint, a migration, a read
    /// of an in-memory database).
    Direct(Box<dyn FnOnce(&mut Conn) + Send>),
    /// Finish what is queued, close the connection, answer.
    Stop(oneshot::Sender<()>),
}

/// The queue in front of a database's one writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl core::fmt::Debug for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Msg")
    }
}

fn panicked(op: &'static str) -> StoreError {
    StoreError::Database {
        op,
        message: "the write panicked; it was rolled back".into(),
    }
}

fn stopped(op: &'static str) -> StoreError {
    StoreError::Database {
        op,
        message: "the SQLite writer has stopped".into(),
    }
}

impl Writer {
    fn start(conn: Arc<Mutex<Conn>>, name: String) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || writer_thread(conn, rx))
            .map_err(|e| StoreError::Connect(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Writer { tx })
    }

    /// Runs `f` in the next batch; returns its result once the batch has committed.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        f: WriteFn<Conn, T>,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Write(Box::new(TypedJob { op, f, tx })))
            .await
            .map_err(|_| stopped(op))?;
        rx.await.map_err(|_| stopped(op))?
    }

    /// Runs `f` on the writer's connection outside any batch (autocommit).
    pub(crate) async fn direct<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let call = move |c: &mut Conn| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c)))
                .unwrap_or_else(|_| Err(panicked(op)));
            let _ = tx.send(r);
        };
        self.tx
            .send(Msg::Direct(Box::new(call)))
            .await
            .map_err(|_| stopped(op))?;
        rx.await.map_err(|_| stopped(op))?
    }

    /// Lets the queued work finish and closes the connection.
    pub(crate) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn writer_thread(conn: Arc<Mutex<Conn>>, mut rx: mpsc::Receiver<Msg>) {
    WRITER_THREAD.with(|w| w.set(true));
    // The jobs are the query kit's futures; they finish without waiting (rusqlite is
    // synchronous), and this runtime only polls them.
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the SQLite writer's runtime");
            return;
        }
    };
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut next = rx.blocking_recv();
    while let Some(msg) = next.take() {
        match msg {
            Msg::Write(job) => {
                jobs.push(job);
                // Take whatever else is queued, up to a batch; a direct call or a stop
                // waits for this batch.
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Msg::Write(j)) => jobs.push(j),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let mut c = conn.blocking_lock();
                run_batch(&rt, &mut c, std::mem::take(&mut jobs));
            }
            Msg::Direct(f) => f(&mut conn.blocking_lock()),
            Msg::Stop(done) => {
                rx.close();
                // Fail what was queued after the stop.
                while let Ok(m) = rx.try_recv() {
                    if let Msg::Write(j) = m {
                        j.fail(stopped("group commit"));
                    }
                }
                // The connection closes (SQLite checkpoints and removes its WAL when it is
                // the last one) before the caller hears that the store is closed.
                drop(conn);
                let _ = done.send(());
                return;
            }
        }
        if next.is_none() {
            next = rx.blocking_recv();
        }
    }
}

/// Runs one of the writer's own statements (`BEGIN`, savepoints, `COMMIT`), prepared once.
fn exec(c: &Conn, sql: &str) -> Result<()> {
    let run = || c.c.prepare_cached(sql)?.execute([]).map(drop);
    run().map_err(|e| StoreError::lite("group commit", e))
}

/// Runs a batch: `BEGIN IMMEDIATE`, each job under its own savepoint, one `COMMIT`.
fn run_batch(rt: &tokio::runtime::Runtime, conn: &mut Conn, jobs: Vec<Box<dyn Job>>) {
    let started = std::time::Instant::now();
    let fail_all = |jobs: Vec<Box<dyn Job>>, e: StoreError| {
        for j in jobs {
            j.fail(e.clone());
        }
    };
    if !conn.c.is_autocommit() {
        // A transaction left open by a job that failed oddly: close it first.
        let _ = exec(conn, "ROLLBACK");
    }
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return fail_all(jobs, e);
    }
    let savepoints = jobs.len() > 1;
    let total = jobs.len();
    let mut dones: Vec<Box<dyn Done>> = Vec::with_capacity(total);
    let mut broken: Option<StoreError> = None;
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        if savepoints && let Err(e) = exec(conn, "SAVEPOINT w") {
            job.fail(e.clone());
            broken = Some(e);
            break;
        }
        let done = rt.block_on(job.run(conn));
        let closed = match (savepoints, done.ok()) {
            (false, _) => Ok(()),
            (true, true) => exec(conn, "RELEASE w"),
            (true, false) => exec(conn, "ROLLBACK TO w").and_then(|()| exec(conn, "RELEASE w")),
        };
        dones.push(done);
        if let Err(e) = closed {
            broken = Some(e);
            break;
        }
    }
    if let Some(e) = broken {
        let _ = exec(conn, "ROLLBACK");
        for d in dones {
            d.finish(Some(&e));
        }
        return fail_all(jobs.collect(), e);
    }
    let worked = started.elapsed();
    let outcome = if dones.iter().any(|d| d.ok()) {
        exec(conn, "COMMIT")
    } else {
        exec(conn, "ROLLBACK")
    };
    match outcome {
        Ok(()) => {
            tracing::trace!(
                jobs = total,
                work_us = u64::try_from(worked.as_micros()).unwrap_or(u64::MAX),
                commit_us =
                    u64::try_from((started.elapsed() - worked).as_micros()).unwrap_or(u64::MAX),
                "group commit"
            );
            for d in dones {
                d.finish(None);
            }
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            for d in dones {
                d.finish(Some(&e));
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// The readers

/// Where reads run: a pool of read-only connections to the file, or the one connection of
/// an in-memory database.
#[derive(Debug)]
pub(crate) enum Reader {
    File {
        path: std::path::PathBuf,
        busy: Duration,
        /// Idle read connections, at most `max_idle` (reads are short and run without
        /// waiting, so few are in use at once).
        idle: std::sync::Mutex<Vec<Conn>>,
        max_idle: usize,
        closed: std::sync::atomic::AtomicBool,
    },
    Shared(Arc<Mutex<Conn>>),
}

/// A read connection taken from the pool (given back when dropped) or the shared one.
pub(crate) enum ReadConn<'r> {
    Pooled(&'r Reader, Option<Conn>),
    Shared(tokio::sync::MutexGuard<'r, Conn>),
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let ReadConn::Pooled(
            Reader::File {
                idle,
                closed,
                max_idle,
                ..
            },
            c,
        ) = self
            && let Some(c) = c.take()
            && !closed.load(std::sync::atomic::Ordering::Relaxed)
            && c.c.is_autocommit()
            && let Ok(mut idle) = idle.lock()
            && idle.len() < *max_idle
        {
            idle.push(c);
        }
    }
}

impl core::ops::Deref for ReadConn<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            ReadConn::Pooled(_, c) => c.as_ref().unwrap_or_else(|| unreachable!()),
            ReadConn::Shared(g) => g,
        }
    }
}

impl core::ops::DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match self {
            ReadConn::Pooled(_, c) => c.as_mut().unwrap_or_else(|| unreachable!()),
            ReadConn::Shared(g) => g,
        }
    }
}

/// A read transaction (a consistent snapshot) on a read connection; rolled back when dropped.
pub(crate) struct ReadTx<'r> {
    conn: ReadConn<'r>,
}

impl ReadTx<'_> {
    /// Ends the transaction (it only read).
    pub(crate) async fn rollback(self) -> rusqlite::Result<()> {
        Ok(())
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        let _ = self.conn.c.execute_batch("ROLLBACK");
    }
}

impl core::ops::Deref for ReadTx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl core::ops::DerefMut for ReadTx<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

impl Reader {
    /// A read connection.
    pub(crate) async fn conn(&self) -> rusqlite::Result<ReadConn<'_>> {
        match self {
            Reader::File {
                path,
                busy,
                idle,
                closed,
                ..
            } => {
                if closed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(rusqlite::Error::InvalidPath(path.clone()));
                }
                let pooled = idle.lock().ok().and_then(|mut v| v.pop());
                let c = match pooled {
                    Some(c) => c,
                    None => {
                        let flags =
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                        let c = Connection::open_with_flags(path, flags)?;
                        Conn::setup(c, Synchronous::Full, *busy, false)?
                    }
                };
                Ok(ReadConn::Pooled(self, Some(c)))
            }
            Reader::Shared(m) => Ok(ReadConn::Shared(m.lock().await)),
        }
    }

    /// Opens a read transaction: the reads through it see one snapshot.
    pub(crate) async fn begin(&self) -> rusqlite::Result<ReadTx<'_>> {
        let conn = self.conn().await?;
        conn.c.execute_batch("BEGIN")?;
        Ok(ReadTx { conn })
    }

    /// Closes the idle connections; later reads fail as on a closed store.
    pub(crate) fn close(&self) {
        if let Reader::File { idle, closed, .. } = self {
            closed.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut v) = idle.lock() {
                v.clear();
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Opening

/// A SQLite database: its writer thread and its readers.
#[derive(Debug)]
pub(crate) struct Lite {
    pub(crate) writer: Writer,
    pub(crate) reader: Reader,
}

impl Lite {
    /// Opens (creating if missing) the database file at `path`, keeping up to `readers` idle
    /// read connections.
    pub(crate) fn open_file(
        path: &Path,
        sync: Synchronous,
        busy: Duration,
        readers: usize,
    ) -> Result<Lite> {
        let conn = Conn::open(path, sync, busy, false)?;
        let name = path
            .file_stem()
            .map(|s| format!("sqlite-writer-{}", s.to_string_lossy()))
            .unwrap_or_else(|| "sqlite-writer".into());
        Ok(Lite {
            writer: Writer::start(Arc::new(Mutex::new(conn)), name)?,
            reader: Reader::File {
                path: path.to_owned(),
                busy,
                idle: std::sync::Mutex::new(Vec::new()),
                max_idle: readers.max(1),
                closed: std::sync::atomic::AtomicBool::new(false),
            },
        })
    }

    /// Opens a new in-memory database.
    pub(crate) fn open_memory(busy: Duration) -> Result<Lite> {
        let shared = Arc::new(Mutex::new(Conn::memory(busy)?));
        Ok(Lite {
            writer: Writer::start(shared.clone(), "sqlite-writer-memory".into())?,
            reader: Reader::Shared(shared),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(v: i64) -> WriteFn<Conn, u64> {
        Box::new(move |c: &mut Conn| {
            Box::pin(async move {
                execute(
                    c.raw(),
                    "INSERT INTO t (v) VALUES ($1)",
                    &[Value::Integer(v)],
                )
                .map_err(|e| StoreError::lite("insert", e))
            })
        })
    }

    fn count(c: &Conn) -> i64 {
        c.raw()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    /// A write that panics (alone or in a batch, before or after its statement) fails with
    /// an error and leaves nothing behind; the writer keeps serving, and so does a direct call
    /// after one that panicked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_write_fails_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Arc::new(
            Lite::open_file(
                &dir.path().join("w.db"),
                Synchronous::Full,
                Duration::from_secs(5),
                2,
            )
            .expect("open"),
        );
        let w = &db.writer;
        w.direct("create", |c| {
            c.raw()
                .execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
                .map_err(|e| StoreError::lite("create", e))
        })
        .await
        .expect("create");
        fn panics(after_insert: bool) -> WriteFn<Conn, u64> {
            Box::new(move |c: &mut Conn| {
                Box::pin(async move {
                    if after_insert {
                        execute(c.raw(), "INSERT INTO t (v) VALUES (99)", &[])
                            .map_err(|e| StoreError::lite("insert", e))?;
                    }
                    panic!("a bug in a write");
                })
            })
        }
        let e = w.run("alone", panics(true)).await.expect_err("panicked");
        assert!(e.to_string().contains("panicked"), "{e}");
        // Many jobs queued at once share batches: the panicking ones fail, the rest commit.
        let jobs: Vec<_> = (0..40)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let job = if i % 5 == 0 {
                        panics(i % 10 == 0)
                    } else {
                        insert(i)
                    };
                    db.writer.run("batched", job).await
                })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            let r = job.await.expect("task");
            assert_eq!(r.is_ok(), i % 5 != 0, "job {i}: {r:?}");
        }
        let e = w
            .direct("direct", |_| -> Result<()> {
                panic!("a bug in a direct call")
            })
            .await
            .expect_err("panicked");
        assert!(e.to_string().contains("panicked"), "{e}");
        assert_eq!(
            w.run("after", insert(7)).await.expect("the writer serves"),
            1
        );
        let n = w.direct("count", |c| Ok(count(c))).await.expect("count");
        assert_eq!(n, 32 + 1, "only the writes that did not panic are kept");
        w.close().await;
    }
}
