//! Group commit for SQLite: concurrent write transactions share one durable commit.
//!
//! SQLite has one writer at a time and, with `synchronous=FULL`, every commit waits for an
//! fsync (about 2 ms here: ~550 commits/s). A single writer task takes every queued write
//! job, runs them one after another inside one `BEGIN IMMEDIATE` transaction, each under its
//! own `SAVEPOINT` (a job that fails is rolled back alone), then commits once. Each caller
//! gets its result only after that commit succeeded, so an answer is never given for
//! something that could still be lost; if the commit fails, every job in the batch fails.

use std::future::Future;
use std::pin::Pin;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Pool, Sqlite};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, StoreError};

/// A boxed, sendable future.
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write operation run on a connection inside an open transaction.
pub(crate) type WriteFn<C, T> =
    Box<dyn for<'c> FnOnce(&'c mut C) -> BoxFut<'c, Result<T>> + Send + 'static>;

/// Most jobs in one commit.
const MAX_BATCH: usize = 256;
/// Most jobs waiting for the writer (callers wait beyond that: backpressure).
const QUEUE: usize = 4096;

trait Job: Send {
    fn run<'c>(self: Box<Self>, c: &'c mut SqliteConnection) -> BoxFut<'c, Box<dyn Done>>;
    fn fail(self: Box<Self>, e: StoreError);
}

trait Done: Send {
    fn ok(&self) -> bool;
    /// Delivers the job's result, or `commit`'s error if the batch did not commit.
    fn finish(self: Box<Self>, commit: Option<&StoreError>);
}

struct TypedJob<T> {
    f: WriteFn<SqliteConnection, T>,
    tx: oneshot::Sender<Result<T>>,
}

struct TypedDone<T> {
    r: Result<T>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T: Send + 'static> Job for TypedJob<T> {
    fn run<'c>(self: Box<Self>, c: &'c mut SqliteConnection) -> BoxFut<'c, Box<dyn Done>> {
        let TypedJob { f, tx } = *self;
        Box::pin(async move {
            let r = f(c).await;
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

/// The queue in front of the single SQLite writer.
#[derive(Debug)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Box<dyn Job>>,
}

impl core::fmt::Debug for dyn Job {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Job")
    }
}

impl Batcher {
    /// Starts the writer task over `pool` (which should have one connection).
    pub(crate) fn start(pool: Pool<Sqlite>) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, rx));
        Batcher { tx }
    }

    /// Runs `f` in the next batch; returns its result once the batch has committed.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        f: WriteFn<SqliteConnection, T>,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let stopped = || StoreError::Database {
            op,
            message: "the SQLite writer has stopped".into(),
        };
        self.tx
            .send(Box::new(TypedJob { f, tx }))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Runs one statement (boxed: keeps the writer task's future `Send` for every lifetime).
fn exec<'c>(c: &'c mut SqliteConnection, sql: &'static str) -> BoxFut<'c, Result<()>> {
    Box::pin(async move {
        sqlx::query(sql)
            .execute(&mut *c)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::db("group commit", e))
    })
}

async fn writer(pool: Pool<Sqlite>, mut rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        run_batch(&pool, std::mem::take(&mut jobs)).await;
    }
}

/// Runs a batch: `BEGIN IMMEDIATE`, each job under its own savepoint, one `COMMIT`. The
/// savepoint statements ride with their neighbours (`RELEASE w; SAVEPOINT w` is one call to
/// the connection's worker thread), so a job costs one call more than its own statements.
async fn run_batch(pool: &Pool<Sqlite>, jobs: Vec<Box<dyn Job>>) {
    let fail_all = |jobs: Vec<Box<dyn Job>>, e: StoreError| {
        for j in jobs {
            j.fail(e.clone());
        }
    };
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return fail_all(jobs, StoreError::db("group commit", e)),
    };
    let savepoints = jobs.len() > 1;
    let begin = if savepoints {
        "BEGIN IMMEDIATE; SAVEPOINT w"
    } else {
        "BEGIN IMMEDIATE"
    };
    if exec(&mut conn, begin).await.is_err() {
        // A transaction left open by a cancelled batch: close it and try once more.
        let _ = exec(&mut conn, "ROLLBACK").await;
        if let Err(e) = exec(&mut conn, begin).await {
            return fail_all(jobs, e);
        }
    }
    let total = jobs.len();
    let mut dones: Vec<Box<dyn Done>> = Vec::with_capacity(total);
    let mut broken: Option<StoreError> = None;
    let mut jobs = jobs.into_iter();
    for (i, job) in jobs.by_ref().enumerate() {
        let done = job.run(&mut conn).await;
        if savepoints {
            // Close this job's savepoint and open the next job's in the same call.
            let last = i + 1 == total;
            let sql = match (done.ok(), last) {
                (true, false) => "RELEASE w; SAVEPOINT w",
                (true, true) => "RELEASE w",
                (false, false) => "ROLLBACK TO w; RELEASE w; SAVEPOINT w",
                (false, true) => "ROLLBACK TO w; RELEASE w",
            };
            let r = exec(&mut conn, sql).await;
            dones.push(done);
            if let Err(e) = r {
                broken = Some(e);
                break;
            }
        } else {
            dones.push(done);
        }
    }
    if let Some(e) = broken {
        let _ = exec(&mut conn, "ROLLBACK").await;
        for d in dones {
            d.finish(Some(&e));
        }
        return fail_all(jobs.collect(), e);
    }
    let outcome = if dones.iter().any(|d| d.ok()) {
        exec(&mut conn, "COMMIT").await
    } else {
        exec(&mut conn, "ROLLBACK").await
    };
    match outcome {
        Ok(()) => {
            for d in dones {
                d.finish(None);
            }
        }
        Err(e) => {
            let _ = exec(&mut conn, "ROLLBACK").await;
            for d in dones {
                d.finish(Some(&e));
            }
        }
    }
}
