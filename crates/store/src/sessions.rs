//! Session replay records shared by a party's replicas (PROTOCOL.md §12.5): each request of a
//! session (its derived id and sequence number) is accepted once, whichever replica it
//! reaches; a record lives until the request's time window has closed.

use async_trait::async_trait;

use crate::error::Result;
use crate::impls::dispatch;
use crate::open::Store;

/// Replay records of session requests, in the party's database.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Records request `seq` of session `session` (the derived id), kept until `until_s`
    /// (Unix seconds). `true` if this is the first record of it, `false` if it was already
    /// recorded (a replay).
    async fn session_seen(&self, session: &str, seq: u64, until_s: u64) -> Result<bool>;

    /// Deletes the records kept until before `now_s`; returns how many.
    async fn session_seen_purge(&self, now_s: u64) -> Result<u64>;
}

#[async_trait]
impl SessionStore for Store {
    async fn session_seen(&self, session: &str, seq: u64, until_s: u64) -> Result<bool> {
        dispatch!(self, session_seen(session, seq, until_s))
    }

    async fn session_seen_purge(&self, now_s: u64) -> Result<u64> {
        dispatch!(self, session_seen_purge(now_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn check(store: &Store) {
        assert!(store.session_seen("s1", 1, 100).await.expect("first"));
        assert!(!store.session_seen("s1", 1, 100).await.expect("replay"));
        assert!(store.session_seen("s1", 2, 200).await.expect("next"));
        assert!(
            store
                .session_seen("s2", 1, 100)
                .await
                .expect("other session")
        );
        assert_eq!(store.session_seen_purge(150).await.expect("purge"), 2);
        // Once its window closed, a record is gone (the request is stale by then anyway).
        assert!(store.session_seen("s1", 1, 300).await.expect("after purge"));
        assert!(!store.session_seen("s1", 2, 300).await.expect("kept"));
    }

    #[tokio::test]
    async fn a_request_is_recorded_once_until_its_window_closes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        // (PostgreSQL: cli/tests/replicas.rs, whose replicas record here.)
        check(&Store::open(&url).await.expect("sqlite")).await;
    }
}
