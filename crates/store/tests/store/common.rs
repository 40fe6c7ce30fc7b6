//! Test databases: a SQLite file in a temporary directory, or a fresh PostgreSQL schema.

use std::sync::atomic::{AtomicU32, Ordering};

use warifu_store::{Store, StoreOptions};

/// Chart buckets as `(start, key, count)`, to compare with a literal.
pub fn triples(buckets: &[warifu_store::Bucket]) -> Vec<(i64, &str, u64)> {
    buckets
        .iter()
        .map(|b| (b.start_ms, b.key.as_str(), b.count))
        .collect()
}

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("WARIFU_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn skip_postgres() -> bool {
    std::env::var("WARIFU_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

/// One test's database, removed when dropped.
pub struct TestDb {
    /// The open store.
    pub store: Store,
    opts: StoreOptions,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = Store::party_url(dir.path(), warifu_store::Party::Merchant).expect("url");
        let opts = StoreOptions::new(url);
        let store = Store::open_with(opts.clone()).await.expect("open sqlite");
        TestDb {
            store,
            opts,
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A fresh schema on the PostgreSQL server; `None` only when WARIFU_SKIP_POSTGRES=1 and the
    /// server is not reachable. Otherwise an unreachable server fails the test.
    pub async fn postgres() -> Option<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let url = postgres_url();
        let schema = format!(
            "warifu_t{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        // A KEK of its own (kept in the options, so a reopen reads the same data keys).
        let kek = warifu_store::atrest::Kek::generate().expect("a KEK");
        let opts = StoreOptions::new(url.clone())
            .schema(schema.clone())
            .kek(warifu_store::atrest::KekSource::Key(kek));
        match Store::open_with(opts.clone()).await {
            Ok(store) => Some(TestDb {
                store,
                opts,
                _dir: None,
                schema: Some(schema),
            }),
            Err(e) if skip_postgres() => {
                eprintln!("PostgreSQL test skipped (WARIFU_SKIP_POSTGRES=1): {e}");
                None
            }
            Err(e) => panic!(
                "PostgreSQL at {url} is not reachable ({e}). Start it (CI's .ci/run does), point \
                 WARIFU_TEST_POSTGRES at a server, or set WARIFU_SKIP_POSTGRES=1 to skip these tests."
            ),
        }
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// The SQLite file (SQLite only).
    pub fn store_path(&self) -> std::path::PathBuf {
        let dir = self._dir.as_ref().expect("a SQLite test database");
        Store::party_path(dir.path(), warifu_store::Party::Merchant)
    }

    /// Opens the same database again (a restart).
    pub async fn reopen(&self) -> Store {
        Store::open_with(self.opts.clone()).await.expect("reopen")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let url = self.opts.url.clone();
        // Drop the schema from a thread with its own runtime: this runs in a test's runtime,
        // possibly while unwinding.
        let t = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Err(e) = Store::drop_postgres_schema(&url, &schema).await {
                    eprintln!("could not drop test schema {schema}: {e}");
                }
            });
        });
        let _ = t.join();
    }
}

/// Runs a test body against SQLite and PostgreSQL: `both!(name, name2, ...)` makes modules
/// `name::sqlite` and `name::postgres` calling `async fn name(db: &TestDb)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite().await;
                super::$name(&db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres().await {
                    super::$name(&db).await;
                }
            }
        }
    )*};
}

/// A fixed test time: 2026-06-15T00:00:00Z in milliseconds.
pub const NOW: i64 = 1_781_481_600_000;
