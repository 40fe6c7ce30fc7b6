//! The SQL behind the traits, written once and compiled for each backend.
//!
//! - `kit_lite`, `kit_pg`: the query kit of each backend, with the same names and call shapes
//!   (one fetch helper per shape: `all`, `optional`, `one`, `scalar`, `exec`, …): SQLite
//!   through rusqlite (`crate::lite`), PostgreSQL through sqlx.
//! - `common`: the backend's kit, its constants, and the `PartyStore` operations (ping,
//!   idempotency).
//! - `merchant`: order forms, orders and their transitions, the outbox.
//! - `lifecycle`: the merchant's per-order facts (receipts, delivery status, proofs).
//! - `issuer`: cards, authorizations, capture/void/refund, the ledger and its audit.
//! - `carrier`: shipments and their tracking events.
//! - `sqlite`, `postgres`: each compiles the modules above for its backend (its kit and
//!   `SQLITE`) and re-exports their operations for `impls.rs`.
//!
//! Both backends accept `$N` placeholders (`crate::lite` maps them for SQLite), `ON CONFLICT`,
//! `RETURNING` and the same types (every integer is BIGINT), so one text serves both; the
//! differences are constants: SQLite write transactions start with `BEGIN IMMEDIATE` (take
//! the write lock first, so a read-then-write never fails halfway), PostgreSQL locks rows
//! with `FOR UPDATE`.

use crate::error::{Result, StoreError};
pub(crate) use crate::lite::WriteFn;

mod kit_lite;
mod kit_pg;

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
    warifu_core::secret::ct_eq(a, b)
}

/// Keeps an error note short (it is stored and may be shown).
pub(crate) fn short(s: &str) -> String {
    s.chars().take(500).collect()
}

/// A write operation: `$name(p, args…)` owns its arguments (`arg: &T => how to own it`; the
/// others are `Copy`) and runs `$inner(conn, args…)` in a write (`common::write`), or, written
/// `write_op!(autocommit $name = …)`, outside a transaction on PostgreSQL
/// (`common::autocommit`).
macro_rules! write_op {
    (@arg $arg:ident) => { $arg };
    (@arg $arg:ident $own:expr) => { &$arg };
    ($name:ident = $inner:ident($($arg:ident: $ty:ty $(=> $own:expr)?),* $(,)?) -> $ret:ty) => {
        write_op!(write $name = $inner($($arg: $ty $(=> $own)?),*) -> $ret);
    };
    ($how:ident $name:ident = $inner:ident($($arg:ident: $ty:ty $(=> $own:expr)?),* $(,)?) -> $ret:ty) => {
        pub(crate) async fn $name(p: &P, $($arg: $ty),*) -> Result<$ret> {
            $($(let $arg = $own;)?)*
            $how(
                p,
                stringify!($name),
                Box::new(move |c: &mut Conn| {
                    Box::pin(async move { $inner(c, $(write_op!(@arg $arg $($own)?)),*).await })
                }),
            )
            .await
        }
    };
}

/// A dashboard chart's query: `$name(p, since_ms, bucket_ms)` runs `$sql`, a `SELECT b, k,
/// COUNT(*) AS n … GROUP BY b, k` over `$1` = since, `$2` = bucket width (`common::buckets`).
macro_rules! bucket_query {
    ($(#[$doc:meta])* $name:ident = $sql:expr) => {
        $(#[$doc])*
        pub(crate) async fn $name(p: &P, since_ms: i64, bucket_ms: i64) -> Result<Vec<Bucket>> {
            buckets(p, $sql, stringify!($name), since_ms, bucket_ms).await
        }
    };
}

/// One backend's build of the SQL modules: its query kit and whether it is SQLite.
macro_rules! backend {
    ($(#[$doc:meta])* $name:ident: $kit:ident, $sqlite:expr) => {
        $(#[$doc])*
        #[path = "."]
        #[allow(clippy::duplicate_mod, reason = "each backend compiles the same SQL modules")]
        pub(crate) mod $name {
            const SQLITE: bool = $sqlite;
            use super::$kit as kit;

            mod cards;
            mod carrier;
            mod common;
            mod datakeys;
            mod issuer;
            mod kemkeys;
            mod lifecycle;
            mod merchant;
            mod sessions;
            mod webhooks;

            pub(crate) use {
                cards::*, carrier::*, common::*, datakeys::*, issuer::*, kemkeys::*,
                lifecycle::*, merchant::*, sessions::*, webhooks::*,
            };
        }
    };
}

backend!(
    /// The SQLite implementation.
    sqlite: kit_lite, true
);
backend!(
    /// The PostgreSQL implementation.
    postgres: kit_pg, false
);
