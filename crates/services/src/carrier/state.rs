//! The carrier's state: its keys, its shipments and its session guard.

use std::sync::Arc;

use warifu_core::PartyId;
use warifu_core::keysource::KeySource;
use warifu_store::CarrierStore;

use crate::session::server::{Guard, GuardLimits};

/// The carrier's state.
pub struct CarrierState {
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) store: Arc<dyn CarrierStore>,
    pub(super) guard: Arc<Guard>,
}

impl CarrierState {
    /// A carrier holding `keys` with its shipments in `store`.
    pub fn new(keys: Arc<dyn KeySource>, store: Arc<dyn CarrierStore>) -> Arc<CarrierState> {
        Arc::new(CarrierState {
            guard: Arc::new(Guard::new(keys.clone(), GuardLimits::default())),
            keys,
            store,
        })
    }

    /// The carrier's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
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
