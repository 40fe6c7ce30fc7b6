//! Warifu's parties as HTTP/JSON services: the merchant, the issuer (the patent's card
//! manager) and the carrier (the distributor), the cardholder's client, and the key center's
//! directory through which they find each other.
//!
//! Dependencies point one way: a party ([`merchant`], [`issuer`], [`carrier`],
//! [`cardholder`]) uses [`http`], [`session`] and [`protocol`], and never another party; the
//! parties meet in [`protocol`]. [`dev`] alone sees every party.
//!
//! - [`protocol`]: the paths and JSON bodies of each link between two parties.
//! - [`session`]: mutual confirmation (claim 5) over HTTP, server and client side, and the
//!   operator token that guards operator routes.
//! - [`http`]: router assembly, health and readiness, metrics, OpenAPI, idempotent answers,
//!   the dashboards' kit.
//! - [`merchant`], [`issuer`], [`carrier`]: one `app(state) -> Router` and `run(listener,
//!   state, shutdown)` each, with their handlers and dashboards; the merchant's outbox worker.
//! - [`cardholder`]: the cardholder's client.
//! - [`clock`]: the one clock every party reads (the system's, or a test's).
//! - [`attest`]: the issuer's MACs for the cardholder and the carrier, the carrier's proof of
//!   delivery.
//! - [`directory`]: identifier → role → endpoint.
//! - [`kem`]: a party's KEM key ring (sealed format version 3): publication, opening, rotation.
//! - [`keys`]: a party's key source for its scheme, behind a pairwise-key cache.
//! - [`revocations`]: the key center's revocation list as a party holds it.
//! - [`error`]: stable error codes.
//! - [`files`]: reading files with a size limit.
//! - [`dev`]: a whole deployment in one process (demo, `up`, tests), what each party holds,
//!   the page of one order across every party.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attest;
pub mod cardholder;
pub mod carrier;
pub mod clock;
pub mod dev;
pub mod directory;
pub mod error;
pub mod files;
pub mod http;
pub mod issuer;
pub mod kem;
pub mod keys;
pub mod merchant;
pub mod protocol;
pub mod revocations;
pub mod session;

/// The largest request body accepted, in bytes (512 KiB): room for the largest sealed order
/// the core accepts (three 64 KiB parts, about 263 KiB in base64 JSON). Larger bodies get 413.
pub const MAX_BODY: usize = 512 * 1024;
