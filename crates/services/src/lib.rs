//! Warifu's parties as HTTP/JSON services: the merchant, the issuer (the patent's card
//! manager) and the carrier (the distributor), the cardholder's client, and the key center's
//! directory through which they find each other.
//!
//! - [`merchant`], [`issuer`], [`carrier`]: one `app(state) -> Router` and `run(listener,
//!   state, shutdown)` each; [`cardholder`]: the client.
//! - [`auth`] and [`peer`]: mutual confirmation (claim 5) over HTTP, server and client side;
//!   [`operator`]: the token that guards operator routes (lifecycle commands, dashboards).
//! - [`service`]: router assembly, `/healthz`, `/readyz`, graceful shutdown; [`metrics`]:
//!   Prometheus metrics at `/metrics`; [`openapi`]: each service's OpenAPI 3 document at
//!   `/openapi.json`.
//! - [`directory`]: identifier → role → endpoint.
//! - [`keys`]: a party's key source for its scheme, behind a pairwise-key cache.
//! - [`local`]: a whole deployment in one process (demo, `up`, tests); [`holdings`]: what each
//!   party holds, read back from its store.
//! - [`worker`]: the merchant's outbox worker (the order lifecycle after a crash or an
//!   outage).
//! - [`wire`]: the JSON bodies; [`error`]: stable error codes; [`attest`]: the issuer's MACs
//!   for the cardholder and the carrier.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attest;
pub mod auth;
pub mod cardholder;
pub mod carrier;
pub mod directory;
pub mod error;
pub mod holdings;
pub mod issuer;
pub mod keys;
pub mod local;
pub mod merchant;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod pages;
pub mod peer;
pub mod service;
pub mod wire;
pub mod worker;

/// The largest request body accepted, in bytes (512 KiB): room for the largest sealed order
/// the core accepts (three 64 KiB parts, about 263 KiB in base64 JSON). Larger bodies get 413.
pub const MAX_BODY: usize = 512 * 1024;

/// The Unix time now, in seconds (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The Unix time now, in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
