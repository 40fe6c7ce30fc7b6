//! The issuer's state: its keys, its books and its session guard.

use std::sync::Arc;

use warifu_core::PartyId;
use warifu_core::keysource::KeySource;
use warifu_store::IssuerStore;

use crate::clock::Clock;
use crate::kem::KemKeys;
use crate::session::server::{Guard, GuardLimits};

/// The issuer's state.
pub struct IssuerState {
    pub(super) keys: Arc<dyn KeySource>,
    pub(super) store: Arc<dyn IssuerStore>,
    pub(super) guard: Arc<Guard>,
    pub(super) kem: Arc<KemKeys>,
}

impl IssuerState {
    /// An issuer holding `keys` and keeping its books in `store`, reading `clock`.
    pub fn new(
        keys: Arc<dyn KeySource>,
        store: Arc<dyn IssuerStore>,
        clock: Clock,
    ) -> Arc<IssuerState> {
        Arc::new(IssuerState {
            guard: Arc::new(
                Guard::new(keys.clone(), GuardLimits::default()).with_clock(clock.clone()),
            ),
            keys,
            kem: KemKeys::new(store.clone(), clock),
            store,
        })
    }

    /// The issuer's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// The clock the issuer reads.
    pub fn clock(&self) -> &Clock {
        self.guard.clock()
    }

    /// Its session guard (also how it admits operators: `guard().operator().set(…)`).
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Its KEM key ring (sealed format version 3).
    pub fn kem(&self) -> &Arc<KemKeys> {
        &self.kem
    }

    /// Its store.
    pub fn store(&self) -> &Arc<dyn IssuerStore> {
        &self.store
    }
}
