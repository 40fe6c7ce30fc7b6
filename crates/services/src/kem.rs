//! A party's KEM key ring (issue 19, PROTOCOL.md §19.5): loaded from its database, published
//! to cardholders in a session (`GET /v1/kem-key`), used to open version-3 parts, rotated by
//! an operator's command with old epochs deleted after their grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warifu_core::kem::{KemPublicKey, KemRing, KemSecretKey};
use warifu_core::keysource::KeySource;
use warifu_core::policy::Policy;
use warifu_core::rand::OsRandom;
use warifu_core::sealed::{ForwardedPart, Recipient, View};
use warifu_store::{KemKeyStore, StoreError};

use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::http::service::store_error;
use crate::protocol::kem::PATH_KEM_KEY;
use crate::session::server::Peer;

/// How long a loaded ring is used before the party looks for a new epoch in its database
/// (a rotation by another process or replica). A part naming an epoch the ring lacks makes
/// it look at once.
pub const REFRESH: Duration = Duration::from_secs(30);

/// The default grace period of an old epoch: its private key is deleted once its successor
/// has been current this long (`rotate-kem-key --grace`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);

/// The shortest grace period a rotation accepts: longer than a cardholder keeps a party's
/// answer ([`crate::cardholder::KEM_KEY_TTL`]) plus a party's [`REFRESH`], so that a part
/// sealed to the key a cardholder was just given still opens.
pub const MIN_GRACE: Duration = Duration::from_secs(120);

/// A party's KEM key ring, shared by its handlers and refreshed from its database.
pub struct KemKeys {
    store: Arc<dyn KemKeyStore>,
    clock: Clock,
    loaded: tokio::sync::RwLock<Option<(Arc<KemRing>, Instant)>>,
}

impl core::fmt::Debug for KemKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KemKeys { .. }")
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new current epoch.
    pub epoch: u32,
    /// The epochs whose private keys were deleted (their grace period was over).
    pub deleted: Vec<u32>,
    /// The epochs kept in their grace period.
    pub kept: Vec<u32>,
}

impl KemKeys {
    /// The ring of the party whose database is `store` (loaded on first use), its first
    /// epoch dated by `clock`.
    pub fn new(store: Arc<dyn KemKeyStore>, clock: Clock) -> Arc<KemKeys> {
        Arc::new(KemKeys {
            store,
            clock,
            loaded: tokio::sync::RwLock::new(None),
        })
    }

    /// The ring, loaded again if older than [`REFRESH`] (or `force`); a party without any key
    /// makes its first epoch (replicas starting together: one insert wins, all load it).
    pub async fn ring(&self, force: bool) -> Result<Arc<KemRing>, StoreError> {
        if !force
            && let Some((ring, at)) = self.loaded.read().await.as_ref()
            && at.elapsed() < REFRESH
        {
            return Ok(ring.clone());
        }
        let mut slot = self.loaded.write().await;
        let mut stored = self.store.kem_keys().await?;
        if stored.is_empty() {
            let first = KemSecretKey::generate(1, &mut OsRandom)
                .map_err(|e| StoreError::DataKey(e.to_string()))?;
            self.store.add_kem_key(&first, self.clock.now_ms()).await?;
            stored = self.store.kem_keys().await?;
        }
        let ring = KemRing::new(stored.into_iter().map(|k| k.key).collect())
            .map_err(|_| StoreError::Corrupt("kem_keys"))?;
        let ring = Arc::new(ring);
        *slot = Some((ring.clone(), Instant::now()));
        Ok(ring)
    }

    /// The public key of the current epoch, as published.
    pub async fn current(&self) -> Result<KemPublicKey, StoreError> {
        let ring = self.ring(false).await?;
        ring.current()
            .map(|k| k.public().clone())
            .ok_or(StoreError::Corrupt("kem_keys"))
    }

    /// Opens `part` for `R` with `keys` and the ring; a part naming an epoch the ring lacks
    /// makes the ring reload once (another replica may have rotated). Errors as
    /// [`AppError::unopened`]: the epoch's key is gone (`kem_key_unavailable`), a revoked
    /// peer, or the opaque `sealed_part_invalid`.
    pub async fn open<R: Recipient>(
        &self,
        part: &ForwardedPart,
        policy: &Policy,
        keys: &dyn KeySource,
    ) -> AppResult<View<R>> {
        let mut ring = self
            .ring(false)
            .await
            .map_err(store_error("loading KEM keys"))?;
        for retry in [true, false] {
            match part.open_with_ring::<R>(policy, keys, &ring) {
                Err(warifu_core::Error::KemKeyUnavailable { .. }) if retry => {
                    ring = self
                        .ring(true)
                        .await
                        .map_err(store_error("loading KEM keys"))?;
                }
                other => return other.map_err(|e| AppError::unopened(&e)),
            }
        }
        Err(AppError::sealed())
    }

    /// Rotation: a new epoch becomes current; the keys of epochs whose successor has been
    /// current for longer than `grace` are deleted for good.
    pub async fn rotate(&self, grace: Duration, now_ms: i64) -> Result<Rotation, StoreError> {
        let stored = self.store.kem_keys().await?;
        let epoch = stored.iter().map(|k| k.key.epoch()).max().unwrap_or(0) + 1;
        let key = KemSecretKey::generate(epoch, &mut OsRandom)
            .map_err(|e| StoreError::DataKey(e.to_string()))?;
        if !self.store.add_kem_key(&key, now_ms).await? {
            return Err(StoreError::Conflict(
                "another rotation made this epoch first; run it again".into(),
            ));
        }
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        // Each stored epoch's successor: the next stored epoch, or the new one.
        let mut deleted = Vec::new();
        let mut kept = Vec::new();
        for (i, k) in stored.iter().enumerate() {
            let successor_since = stored.get(i + 1).map_or(now_ms, |n| n.created_at_ms);
            if now_ms.saturating_sub(successor_since) > grace_ms {
                deleted.push(k.key.epoch());
            } else {
                kept.push(k.key.epoch());
            }
        }
        self.store.delete_kem_keys(&deleted).await?;
        self.ring(true).await?;
        Ok(Rotation {
            epoch,
            deleted,
            kept,
        })
    }
}

/// `GET /v1/kem-key`, in a session: the party's current KEM public key and epoch.
pub fn routes(kem: Arc<KemKeys>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(kem_key))
        .with_state(kem)
}

#[utoipa::path(get, path = PATH_KEM_KEY, responses((status = 200, description = "This party's current KEM public key and its epoch, to seal version-3 parts to (authenticated by the session)", body = crate::protocol::schema::KemPublicKey)))]
async fn kem_key(State(kem): State<Arc<KemKeys>>, Peer(_): Peer) -> AppResult<Json<KemPublicKey>> {
    kem.current()
        .await
        .map(Json)
        .map_err(store_error("loading KEM keys"))
}
