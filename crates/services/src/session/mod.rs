//! Who is speaking: mutual confirmation (claim 5) over HTTP between parties, and the operator
//! token for the people who run a party.
//!
//! - [`server`]: the responder side: handshake routes, session tables, the middleware that
//!   verifies every request and signs every response; the JSON body extractor and fallbacks.
//! - [`client`]: the initiator side: a client per peer that runs the handshake lazily and
//!   verifies every answer, and [`client::PeerClients`], one per peer from the directory.
//! - [`headers`]: the four session headers, read and written by both sides.
//! - [`operator`]: operator access (bearer token or cookie) to a service's operator routes.

pub mod client;
pub mod headers;
pub mod operator;
pub mod server;
