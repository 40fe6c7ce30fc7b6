//! Opening a store: URL parsing, SQLite pragmas (WAL, durable commits), PostgreSQL schemas.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use crate::error::{Result, StoreError};
use crate::lite::{Lite, Reader, Writer};
use crate::types::{Backend, Party};

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=FULL`: a commit survives a power loss (the default).
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives a process crash (SIGKILL) but the last commits
    /// may be lost on a power loss. Much faster in WAL mode.
    Normal,
}

/// How to open a store. [`StoreOptions::new`] takes a URL; the rest has defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// `sqlite://PATH` (created if missing), `sqlite::memory:`, or `postgres://…`.
    pub url: String,
    /// PostgreSQL only: the schema to use (created if missing) and put first on the
    /// `search_path`, so several parties or test runs can share one database.
    pub schema: Option<String>,
    /// The most connections (PostgreSQL), or idle read connections kept (SQLite; writes go
    /// through one connection on its own thread). Default 8.
    pub max_connections: u32,
    /// SQLite only: commit durability. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long to wait for a lock or a connection. Default 10 s.
    pub busy_timeout: Duration,
    /// Where the key-encryption key of card numbers and destinations comes from (default:
    /// the environment, else a SQLite file's `NAME.kek`; see [`crate::atrest`]).
    pub kek: Option<crate::atrest::KekSource>,
}

impl StoreOptions {
    /// Options for `url` with defaults.
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            schema: None,
            max_connections: 8,
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(10),
            kek: None,
        }
    }

    /// Sets where the key-encryption key comes from.
    pub fn kek(mut self, source: crate::atrest::KekSource) -> StoreOptions {
        self.kek = Some(source);
        self
    }

    /// Sets the PostgreSQL schema.
    pub fn schema(mut self, schema: impl Into<String>) -> StoreOptions {
        self.schema = Some(schema.into());
        self
    }

    /// Sets the SQLite durability.
    pub fn synchronous(mut self, s: Synchronous) -> StoreOptions {
        self.synchronous = s;
        self
    }

    /// Sets the connection count.
    pub fn max_connections(mut self, n: u32) -> StoreOptions {
        self.max_connections = n.max(1);
        self
    }
}

/// A PostgreSQL database's pool (one for reads and writes) and its keys at rest.
#[derive(Debug)]
pub(crate) struct Pools<DB: sqlx::Database> {
    pub(crate) writer: Pool<DB>,
    pub(crate) reader: Pool<DB>,
    /// The keys of the data encrypted at rest.
    pub(crate) at_rest: Arc<crate::atrest::AtRest>,
}

impl<DB: sqlx::Database> Clone for Pools<DB> {
    fn clone(&self) -> Self {
        Pools {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            at_rest: self.at_rest.clone(),
        }
    }
}

/// A SQLite database: its one writer thread (SQLite has one writer at a time; queueing
/// in-process beats polling its busy handler, and lets commits be shared), its readers, and
/// its keys at rest.
#[derive(Debug)]
pub(crate) struct LitePools {
    pub(crate) writer: Writer,
    pub(crate) reader: Reader,
    /// The keys of the data encrypted at rest.
    pub(crate) at_rest: Arc<crate::atrest::AtRest>,
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(Arc<LitePools>),
    Postgres(Pools<Postgres>),
}

/// A party's database: implements [`crate::MerchantStore`], [`crate::IssuerStore`] and
/// [`crate::CarrierStore`] over SQLite or PostgreSQL. Cheap to clone (pools are shared).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
}

impl Store {
    /// Opens `url` with default options and runs the migrations.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(StoreOptions::new(url)).await
    }

    /// Opens the SQLite file of `party` in the data directory `dir` (`dir/merchant.db`,
    /// `dir/issuer.db`, `dir/carrier.db`), creating the directory and the file if missing.
    pub async fn open_party(dir: &Path, party: Party) -> Result<Store> {
        Store::open_with(StoreOptions::new(Store::party_url(dir, party)?)).await
    }

    /// The SQLite file of `party` in the data directory `dir`.
    pub fn party_path(dir: &Path, party: Party) -> PathBuf {
        dir.join(format!("{}.db", party.as_str()))
    }

    /// The `sqlite://` URL of `party`'s file in `dir`, creating `dir` if missing.
    pub fn party_url(dir: &Path, party: Party) -> Result<String> {
        private_dir(dir)?;
        let path = Store::party_path(dir, party);
        let s = path
            .to_str()
            .ok_or_else(|| StoreError::Url("the data directory is not valid UTF-8".into()))?;
        Ok(format!("sqlite://{s}"))
    }

    /// Opens with `opts` and runs the migrations.
    pub async fn open_with(opts: StoreOptions) -> Result<Store> {
        let url = opts.url.trim();
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::Postgres(open_postgres(url, &opts).await?)
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            Db::Sqlite(Arc::new(open_sqlite(rest, &opts)?))
        } else {
            return Err(StoreError::Url(
                "expected sqlite://PATH, sqlite::memory: or postgres://…".into(),
            ));
        };
        let store = Store { db };
        crate::migrate::run(&store).await?;
        Ok(store)
    }

    /// Which database is behind the store.
    pub fn backend_kind(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        crate::migrate::current(self).await
    }

    /// Drops a PostgreSQL schema and everything in it (for tests and teardown of a
    /// deployment). The name is checked as in [`StoreOptions::schema`].
    pub async fn drop_postgres_schema(url: &str, schema: &str) -> Result<()> {
        if !valid_schema(schema) {
            return Err(StoreError::Url("not a valid schema name".into()));
        }
        let o = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(o)
            .await
            .map_err(|e| StoreError::Connect(StoreError::db("open", e).to_string()))?;
        let r = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
        pool.close().await;
        r.map(|_| ()).map_err(|e| StoreError::db("drop schema", e))
    }

    /// Closes every connection (waits for those in use to be returned).
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(p) => {
                p.reader.close();
                p.writer.close().await;
            }
            Db::Postgres(p) => p.writer.close().await,
        }
    }
}

fn open_sqlite(rest: &str, opts: &StoreOptions) -> Result<LitePools> {
    if rest == ":memory:" || rest == "//:memory:" {
        let Lite { writer, reader } = Lite::open_memory(opts.busy_timeout)?;
        return Ok(LitePools {
            at_rest: crate::atrest::AtRest::new(opts.kek.as_ref(), None, true)?,
            writer,
            reader,
        });
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(StoreError::Url("the SQLite URL has no file path".into()));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        private_dir(parent)?;
    }
    private_database(Path::new(path))?;
    let Lite { writer, reader } = Lite::open_file(
        Path::new(path),
        opts.synchronous,
        opts.busy_timeout,
        opts.max_connections as usize,
    )?;
    Ok(LitePools {
        at_rest: crate::atrest::AtRest::new(opts.kek.as_ref(), Some(Path::new(path)), false)?,
        writer,
        reader,
    })
}

/// Creates `dir` and any missing parents, each directory this creates 0700 (an existing one
/// is left as it is).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))
}

fn private_dir(dir: &Path) -> Result<()> {
    create_private_dir(dir).map_err(|e| StoreError::Connect(e.to_string()))
}

/// Makes the SQLite file `path` private before SQLite opens it: created 0600 if missing, an
/// existing file and its `-wal`/`-shm` companions narrowed to 0600. SQLite gives the
/// companions it creates the main file's mode, so they are private too.
fn private_database(path: &Path) -> Result<()> {
    let fail = |e: std::io::Error| StoreError::Connect(format!("{}: {e}", path.display()));
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::metadata(&file) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .map_err(fail)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

async fn open_postgres(url: &str, opts: &StoreOptions) -> Result<Pools<Postgres>> {
    use sqlx::Connection;
    let mut o = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    if let Some(schema) = &opts.schema
        && !valid_schema(schema)
    {
        return Err(StoreError::Url(
            "a schema name is 1–63 characters of a–z, 0–9 and '_', not starting with a digit"
                .into(),
        ));
    }
    // One plain connection first: it reports why the server cannot be reached (a pool would
    // only time out), and creates the schema before the pool pins it on every connection.
    let connect_err = |e| StoreError::Connect(StoreError::db("open", e).to_string());
    let mut boot = tokio::time::timeout(opts.busy_timeout, sqlx::PgConnection::connect_with(&o))
        .await
        .map_err(|_| StoreError::Connect("timed out connecting to PostgreSQL".into()))?
        .map_err(connect_err)?;
    if let Some(schema) = &opts.schema {
        let r = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .execute(&mut boot)
            .await;
        if let Err(e) = r {
            // A concurrent creator may win the race; the schema exists either way.
            let again = StoreError::db("create schema", e);
            if !again.to_string().contains("23505") {
                return Err(again);
            }
        }
        o = o.options([("search_path", schema.as_str())]);
    }
    let _ = boot.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.busy_timeout)
        .connect_with(o)
        .await
        .map_err(connect_err)?;
    Ok(Pools {
        writer: pool.clone(),
        reader: pool,
        at_rest: crate::atrest::AtRest::new(opts.kek.as_ref(), None, false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(valid_schema("warifu_test_1"));
        assert!(!valid_schema("1abc"));
        assert!(!valid_schema("a;drop"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("Upper"));
    }
}
