//! The merchant's configuration (what it sells and how) and state (keys, store, directory,
//! session guard, and its clients of issuers and carriers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use warifu_core::keysource::KeySource;
use warifu_core::order::CatalogItem;
use warifu_core::policy::Policy;
use warifu_core::{PartyId, Role};
use warifu_store::MerchantStore;

use super::worker::WorkerOptions;
use crate::clock::Clock;
use crate::directory::{DirectoryError, SharedDirectory};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::kem::KemKeys;
use crate::session::client::{PeerClient, PeerClients};
use crate::session::server::{Guard, GuardLimits};

/// What a merchant sells and how.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    /// The catalog (each item says whether it ships: an order of any item that ships needs
    /// the carrier).
    pub catalog: Vec<CatalogItem>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Issuers whose cards it accepts.
    pub accepted_issuers: Vec<PartyId>,
    /// The carrier it ships with (none: digital goods only).
    pub carrier: Option<PartyId>,
    /// The disclosure policy of its forms.
    pub policy: Policy,
    /// How long an order form stays valid, in seconds.
    pub form_ttl_secs: u64,
    /// The parcel description of its delivery requests.
    pub parcel: String,
    /// Where the carrier picks parcels up.
    pub pickup: String,
}

impl MerchantConfig {
    /// A small example shop: tea and cups (which ship) and an e-book (digital) in JPY, one issuer and one carrier, the patent's
    /// default policy.
    pub fn example(issuer: PartyId, carrier: Option<PartyId>) -> MerchantConfig {
        MerchantConfig {
            catalog: vec![
                CatalogItem {
                    product_number: "TEA-001".into(),
                    name: "Sencha green tea, 100 g".into(),
                    unit_price: 1200,
                    ships: true,
                },
                CatalogItem {
                    product_number: "CUP-002".into(),
                    name: "Arita porcelain cup".into(),
                    unit_price: 3500,
                    ships: true,
                },
                CatalogItem {
                    product_number: "EBOOK-003".into(),
                    name: "The Book of Tea (e-book)".into(),
                    unit_price: 800,
                    ships: false,
                },
            ],
            currency: "JPY".into(),
            accepted_issuers: vec![issuer],
            carrier,
            policy: Policy::patent_default(),
            form_ttl_secs: 3600,
            parcel: "box 60 size, 1 kg".into(),
            pickup: "shop counter, weekdays 10:00-17:00".into(),
        }
    }
}

/// The merchant's state.
pub struct MerchantState {
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) config: MerchantConfig,
    pub(super) store: Arc<dyn MerchantStore>,
    pub(super) guard: Arc<Guard>,
    pub(super) peers: PeerClients,
    pub(super) kem: Arc<KemKeys>,
    /// The outbox worker's grace in ms (how long it leaves a due message to the request that
    /// runs it inline); set when a worker starts or ticks.
    worker_grace_ms: AtomicU64,
    /// How long after capture the first tracking poll is due ([`WorkerOptions::track_first`]);
    /// set with the worker's grace.
    track_first_ms: AtomicU64,
}

impl MerchantState {
    /// A merchant holding `keys`, selling by `config`, with orders in `store`, finding its
    /// issuers and carriers in `directory`, reading `clock`.
    pub fn new(
        keys: Arc<dyn KeySource>,
        config: MerchantConfig,
        store: Arc<dyn MerchantStore>,
        directory: Arc<SharedDirectory>,
        clock: Clock,
    ) -> Arc<MerchantState> {
        Arc::new(MerchantState {
            guard: Arc::new(
                Guard::new(keys.clone(), GuardLimits::default()).with_clock(clock.clone()),
            ),
            peers: PeerClients::new(keys.clone(), directory, clock.clone()),
            kem: KemKeys::new(store.clone(), clock.clone()),
            keys,
            config,
            store,
            worker_grace_ms: AtomicU64::new(millis(WorkerOptions::default().grace)),
            track_first_ms: AtomicU64::new(millis(WorkerOptions::default().track_first)),
        })
    }

    /// Takes the worker's pacing that the request handlers also follow: its grace (see
    /// [`WorkerOptions::grace`]) and when a tracking poll is first due
    /// ([`WorkerOptions::track_first`]). [`super::worker::Worker`] sets them when it starts or
    /// ticks; a merchant driven without a worker may set them itself.
    pub fn set_worker_options(&self, opts: &WorkerOptions) {
        self.set_worker_grace(opts.grace);
        self.track_first_ms
            .store(millis(opts.track_first), Ordering::Relaxed);
    }

    /// When a tracking poll is first due after the transition that enqueues it.
    pub(crate) fn track_first(&self) -> Duration {
        Duration::from_millis(self.track_first_ms.load(Ordering::Relaxed))
    }

    /// The outbox worker's grace (see [`WorkerOptions::grace`]).
    pub(crate) fn worker_grace(&self) -> Duration {
        Duration::from_millis(self.worker_grace_ms.load(Ordering::Relaxed))
    }

    /// Records the outbox worker's grace: an inline step holds its message from the worker
    /// while it runs longer than half of it.
    pub(crate) fn set_worker_grace(&self, grace: Duration) {
        self.worker_grace_ms.store(millis(grace), Ordering::Relaxed);
    }

    /// Its KEM key ring (sealed format version 3).
    pub fn kem(&self) -> &Arc<KemKeys> {
        &self.kem
    }

    /// The clock the merchant reads.
    pub fn clock(&self) -> &Clock {
        self.guard.clock()
    }

    /// The merchant's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// Its session guard (also how it admits operators: `guard().operator().set(…)`).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn MerchantStore> {
        &self.store
    }

    /// How many authenticated sessions it holds.
    pub fn sessions(&self) -> usize {
        self.guard.counts().0
    }

    /// What it sells and how.
    pub fn config(&self) -> &MerchantConfig {
        &self.config
    }

    /// The authenticated client for a peer listed in the directory in `role`.
    pub(crate) fn peer(&self, id: &PartyId, role: Role) -> AppResult<Arc<PeerClient>> {
        self.peers.get(id, role).map_err(directory_error)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn directory_error(e: DirectoryError) -> AppError {
    AppError::new(ErrorCode::UnknownParty, e.to_string())
}

/// What another request under an order id already answered is told (a submission, and also a
/// cancellation or an operator's refund).
pub(super) const BUNDLE_CONFLICT: &str = "another bundle was already submitted under this order id";

/// Refuses every caller but a cardholder.
pub(super) fn require_cardholder(peer: &PartyId) -> AppResult<()> {
    if peer.role() != Role::Cardholder {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "only cardholders order from a merchant",
        ));
    }
    Ok(())
}
