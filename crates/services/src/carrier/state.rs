//! The carrier's state: its keys, its shipments, its session guard, and its clients for the
//! issuers it asks whether an order's authorization still stands and the merchants it pushes
//! delivery events to.

use std::sync::Arc;

use tokio::sync::Notify;

use warifu_core::PartyId;
use warifu_core::keysource::KeySource;
use warifu_store::CarrierStore;

use crate::clock::Clock;
use crate::directory::SharedDirectory;
use crate::kem::KemKeys;
use crate::session::client::PeerClients;
use crate::session::server::{Guard, GuardLimits};

/// The carrier's state.
pub struct CarrierState {
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) store: Arc<dyn CarrierStore>,
    pub(super) guard: Arc<Guard>,
    /// The issuers and merchants, found in the key center's directory (`None`: the carrier
    /// was started without a directory and cannot ask an issuer, it accepts on the approval
    /// alone and warns; nor push delivery events, which wait in its outbox).
    pub(super) peers: Option<PeerClients>,
    pub(super) kem: Arc<KemKeys>,
    /// Wakes the delivery-event pusher when a move was committed.
    pub(super) wake: Arc<Notify>,
}

impl CarrierState {
    /// A carrier holding `keys` with its shipments in `store`, finding the issuers it asks
    /// (before it accepts a shipment, whether the order's authorization still stands) in
    /// `directory`, reading `clock`.
    pub fn with_directory(
        keys: Arc<dyn KeySource>,
        store: Arc<dyn CarrierStore>,
        directory: Arc<SharedDirectory>,
        clock: Clock,
    ) -> Arc<CarrierState> {
        Arc::new(CarrierState {
            guard: Arc::new(
                Guard::new(keys.clone(), GuardLimits::default()).with_clock(clock.clone()),
            ),
            peers: Some(PeerClients::new(keys.clone(), directory, clock.clone())),
            wake: Arc::new(Notify::new()),
            keys,
            kem: KemKeys::new(store.clone(), clock),
            store,
        })
    }

    /// A carrier without a directory: it cannot ask an issuer whether an authorization still
    /// stands, so it accepts a shipment on the issuer's approval alone (as before issue 12)
    /// and logs a warning for each; a voided order can then still be shipped. Serve with
    /// [`CarrierState::with_directory`].
    pub fn new(
        keys: Arc<dyn KeySource>,
        store: Arc<dyn CarrierStore>,
        clock: Clock,
    ) -> Arc<CarrierState> {
        Arc::new(CarrierState {
            guard: Arc::new(
                Guard::new(keys.clone(), GuardLimits::default()).with_clock(clock.clone()),
            ),
            peers: None,
            wake: Arc::new(Notify::new()),
            keys,
            kem: KemKeys::new(store.clone(), clock),
            store,
        })
    }

    /// Its KEM key ring (sealed format version 3).
    pub fn kem(&self) -> &Arc<KemKeys> {
        &self.kem
    }

    /// The carrier's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// The clock the carrier reads.
    pub fn clock(&self) -> &Clock {
        self.guard.clock()
    }

    /// Its session guard (also how it admits operators: `guard().operator().set(…)`).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn CarrierStore> {
        &self.store
    }
}
