//! A party's KEM key ring at rest (issue 19, PROTOCOL.md §19.5): one X25519 private key per
//! epoch, wrapped under the key-encryption key of the data at rest, shared by the party's
//! replicas; epochs past their grace period are deleted.

use async_trait::async_trait;
use warifu_core::kem::KemSecretKey;

use crate::error::Result;
use crate::impls::dispatch;
use crate::open::Store;

/// A `kem_keys` row.
#[derive(Debug, Clone)]
pub(crate) struct KemKeyRow {
    pub(crate) epoch: i64,
    pub(crate) kem: String,
    pub(crate) wrapped: Vec<u8>,
    pub(crate) created_at_ms: i64,
}

/// One stored epoch's key and when it was made.
#[derive(Debug, Clone)]
pub struct StoredKemKey {
    /// The private key (its epoch and public key inside).
    pub key: KemSecretKey,
    /// When it was stored, Unix milliseconds: its predecessor's grace period runs from here.
    pub created_at_ms: i64,
}

/// The party's KEM key ring in its database.
#[async_trait]
pub trait KemKeyStore: Send + Sync {
    /// Every stored epoch's key, oldest epoch first.
    async fn kem_keys(&self) -> Result<Vec<StoredKemKey>>;

    /// Stores `key` (wrapped); `false` if its epoch is already stored (another replica or
    /// command got there first).
    async fn add_kem_key(&self, key: &KemSecretKey, now_ms: i64) -> Result<bool>;

    /// Deletes the keys of `epochs` for good; returns how many were deleted.
    async fn delete_kem_keys(&self, epochs: &[u32]) -> Result<u64>;
}

#[async_trait]
impl KemKeyStore for Store {
    async fn kem_keys(&self) -> Result<Vec<StoredKemKey>> {
        dispatch!(self, kem_keys())
    }

    async fn add_kem_key(&self, key: &KemSecretKey, now_ms: i64) -> Result<bool> {
        dispatch!(self, add_kem_key(key, now_ms))
    }

    async fn delete_kem_keys(&self, epochs: &[u32]) -> Result<u64> {
        let epochs: Vec<i64> = epochs.iter().map(|e| i64::from(*e)).collect();
        dispatch!(self, delete_kem_keys(&epochs))
    }
}
