//! A party's key source as the services use it: the scheme's key source behind a bounded
//! cache of pairwise keys, so a repeat counterparty costs a lookup.

use std::sync::Arc;

use warifu_core::keycache::{self, CachedKeys};
use warifu_core::keysource::KeySource;
use warifu_core::secret::Secret;
use warifu_core::sok::{self, KeyScheme};

/// The default number of counterparties whose pairwise keys a party keeps in memory.
pub const DEFAULT_KEY_CACHE: usize = keycache::DEFAULT_CAPACITY;

/// Wraps a party's key source in a pairwise-key cache of `capacity` counterparties (0: no
/// caching). The result has the same owner and scheme and derives the same keys.
pub fn cached(source: Box<dyn KeySource>, capacity: usize) -> Arc<dyn KeySource> {
    Arc::new(CachedKeys::new(source, capacity))
}

/// Builds a party's cached key source for `scheme` from its encoded key files (a hybrid
/// bundle, or a Blom and a SOK personal key file from two key centers), each with its
/// passphrase if sealed.
pub fn party_keys(
    scheme: KeyScheme,
    files: &[(&[u8], Option<&Secret>)],
    cache: usize,
) -> warifu_core::Result<Arc<dyn KeySource>> {
    Ok(cached(sok::load_key_source(scheme, files)?, cache))
}
