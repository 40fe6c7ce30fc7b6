//! The storage error type: typed, and free of stored values (never a card number or address).

/// What went wrong in the store. Messages name the operation and the cause, never a stored
/// secret value (card numbers, addresses), so they are safe to log.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not one the store understands.
    #[error("bad database URL: {0}")]
    Url(String),
    /// The database could not be opened or reached.
    #[error("cannot open the database: {0}")]
    Connect(String),
    /// A migration failed or the schema is newer than this program.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The database reported an error.
    #[error("database error in {op}: {message}")]
    Database {
        /// The store operation that failed.
        op: &'static str,
        /// The database's message (no bound values).
        message: String,
    },
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The operation conflicts with what is stored (duplicate key, wrong state, over amount).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value cannot be decoded (a corrupt or foreign row).
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// A number does not fit the column (amounts are stored as signed 64-bit integers).
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
    /// The argument is invalid (empty identifier, zero amount, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The keys of the data encrypted at rest are missing or do not open (no or a wrong
    /// key-encryption key; see `atrest`).
    #[error("data keys: {0}")]
    DataKey(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = core::result::Result<T, E>;

impl StoreError {
    /// Wraps a database error for operation `op`, keeping only the database's message (bound
    /// values never appear in sqlx's messages; PostgreSQL's DETAIL, which can quote a key, is
    /// dropped).
    pub(crate) fn db(op: &'static str, e: sqlx::Error) -> StoreError {
        let message = match &e {
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                format!("{} (code {code})", d.message())
            }
            sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
            sqlx::Error::PoolClosed => "the store is closed".into(),
            sqlx::Error::Io(io) => format!("I/O error: {io}"),
            sqlx::Error::RowNotFound => "row not found".into(),
            sqlx::Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
            sqlx::Error::ColumnNotFound(c) => format!("column {c} not found"),
            other => {
                // Other variants carry configuration or protocol text, not row values.
                let s = other.to_string();
                s.chars().take(200).collect()
            }
        };
        StoreError::Database { op, message }
    }

    /// Wraps a SQLite (rusqlite) error for operation `op`: SQLite's message and extended
    /// code (rusqlite's messages carry no bound values).
    pub(crate) fn lite(op: &'static str, e: rusqlite::Error) -> StoreError {
        let message = match &e {
            rusqlite::Error::SqliteFailure(f, msg) => {
                let text = msg.clone().unwrap_or_else(|| f.to_string());
                format!("{text} (code {})", f.extended_code)
            }
            rusqlite::Error::QueryReturnedNoRows => "row not found".into(),
            rusqlite::Error::InvalidColumnType(i, ..) => format!("cannot decode column {i}"),
            rusqlite::Error::InvalidPath(_) => "the store is closed".into(),
            other => other.to_string().chars().take(200).collect(),
        };
        StoreError::Database { op, message }
    }

    /// Whether this error is a serialization failure or lock timeout that a retry can fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database { message, .. } => {
                message.contains("code 40001")
                    || message.contains("code 40P01")
                    || message.contains("database is locked")
                    || message.contains("code 5)")
                    || message.contains("code 517")
                    || message.contains("timed out waiting for a connection")
            }
            _ => false,
        }
    }
}
