//! Cardholder → any recipient (merchant, issuer, carrier): the recipient's current KEM public
//! key, asked in a session so that its answer is the party's (PROTOCOL.md §19.5). The body is
//! `warifu_core::kem::KemPublicKey`: `{"kem":"x25519-hkdf-sha256","epoch":3,"public_key":"…"}`.

/// The party's current KEM public key (`GET`, any session) → `KemPublicKey`.
pub const PATH_KEM_KEY: &str = "/v1/kem-key";
