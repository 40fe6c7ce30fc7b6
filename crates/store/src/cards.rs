//! The issuer operator's card administration beyond enrollment and status: changing a card's
//! credit limit, with its ledger movement, in one transaction.

use async_trait::async_trait;

use crate::error::Result;
use crate::impls::dispatch;
use crate::open::Store;

/// Card administration (every [`crate::IssuerStore`] has it).
#[async_trait]
pub trait CardAdminStore: Send + Sync {
    /// Sets a card's credit limit: its available credit moves by the difference and the
    /// ledger books it (card available ↔ issuer credit), so the audit still balances.
    /// `Ok(false)` if there is no such card; [`crate::StoreError::Conflict`] if the new limit
    /// is below what the card already uses (holds and captures net of refunds).
    async fn set_card_limit(&self, card_id: &str, credit_limit: u64, now_ms: i64) -> Result<bool>;
}

#[async_trait]
impl CardAdminStore for Store {
    async fn set_card_limit(&self, card_id: &str, credit_limit: u64, now_ms: i64) -> Result<bool> {
        dispatch!(self, set_card_limit(card_id, credit_limit, now_ms))
    }
}
