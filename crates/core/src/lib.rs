//! Warifu's core: the cryptography and formats of JP H10-78988, with no I/O.
//!
//! A cardholder splits an order by a disclosure policy and seals each party's part under a
//! pairwise key derived from its own secret personal key and the party's public identifier
//! (Blom's scheme). The merchant relays; each party opens only its part.
//!
//! - [`field`], [`blom`], [`keycenter`], [`collusion`]: the key predistribution scheme.
//! - [`keysource`]: pairwise keys behind one interface (Blom, predistributed, hybrid).
//! - [`sok`]: SOK identity-based key agreement and the Blom ⊕ SOK hybrid (the default);
//!   [`keycache`]: a bounded cache of derived pairwise keys.
//! - [`order`], [`policy`]: the order of Fig. 2 and who receives which field.
//! - [`sealed`]: the sealed order format ([`kem`]: the recipients' KEM keys of version 3;
//!   [`hpke`]: RFC 9180 PSK mode, its one suite); [`keyfile`]: key files; [`envelope`]: the
//!   passphrase envelope of key files and the wallet file.
//! - [`secret`], [`card`]: secret values and card numbers (redacted, constant-time equal).
//! - [`session`]: mutual confirmation (claim 5) and authenticated sessions.
//! - [`meter`]: where the CPU goes (sections summed while a benchmark measures).
//! - `baseline` (feature `baseline`): the plaintext benchmark baseline, for `warifu bench`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "baseline")]
pub mod baseline;
pub mod blom;
pub mod card;
pub mod codec;
pub mod collusion;
pub mod envelope;
mod error;
pub mod field;
pub mod hpke;
pub mod id;
pub mod kem;
pub mod keycache;
pub mod keycenter;
pub mod keyfile;
pub mod keysource;
pub mod meter;
pub mod order;
pub mod policy;
pub mod purpose;
pub mod rand;
pub mod revocation;
pub mod sealed;
pub mod secret;
pub mod session;
pub mod sok;
pub mod sok_threshold;

pub use error::{Error, Result};
pub use id::{OrderId, PartyId, Role};
