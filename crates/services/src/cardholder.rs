//! The cardholder's client (terminal 1): confirms the merchant before anything is sent, fetches
//! an order form in the session, seals the order in this process, submits the bundle once, and
//! checks the issuer's receipt of the decision the merchant relays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warifu_core::OrderId;

use warifu_core::kem::KemPublicKey;
use warifu_core::keysource::KeySource;
use warifu_core::order::{Order, OrderForm};
use warifu_core::policy::Policy;
use warifu_core::rand::OsRandom;
use warifu_core::sealed::{self, RecipientKeys, SealedOrder};
use warifu_core::{PartyId, Role};

use crate::attest;
use crate::clock::Clock;
use crate::directory::{DirectoryError, SharedDirectory};
use crate::protocol::cardholder_carrier::TrackingView;
use crate::protocol::cardholder_issuer::{PATH_STATEMENT, Statement, StatementEntry};
use crate::protocol::cardholder_merchant::{
    CancelRequest, CatalogView, FormRequest, OrderOutcome, SubmitRequest,
};
use crate::protocol::kem::PATH_KEM_KEY;
use crate::session::client::{ClientError, PeerClient, PeerClients};

/// How often [`Cardholder::cancel_and_wait`] asks the merchant again.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// What became of a cancellation, read from the merchant's answer (docs/LIFECYCLE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelFate {
    /// `cancelling`: the carrier has not answered yet; the order may still end delivered.
    Pending,
    /// Cancelled: the authorization voided or the payment refunded (or about to be).
    Cancelled,
    /// The parcel is on its way back; the payment is refunded when the carrier records it.
    Returning,
    /// The parcel was delivered before the carrier could stop it: the order and its payment
    /// stand.
    RefusedDelivered,
    /// Any other state: the cancellation did not apply.
    Other,
}

impl CancelFate {
    /// The fate an answer to a cancellation (or a later status) shows.
    pub fn of(outcome: &OrderOutcome) -> CancelFate {
        match outcome.state.as_str() {
            "cancelling" => CancelFate::Pending,
            "cancelled" | "voided" | "refunded" => CancelFate::Cancelled,
            "returning" => CancelFate::Returning,
            // A carrier that refuses to cancel has delivered: the order goes back to where
            // the payment stands (captured, or shipped with a capture) and ends delivered.
            "delivered" | "captured" | "shipped" => CancelFate::RefusedDelivered,
            _ => CancelFate::Other,
        }
    }

    /// The fate in words for the cardholder.
    pub fn words(self, outcome: &OrderOutcome) -> String {
        match self {
            CancelFate::Pending => {
                "cancellation pending: the carrier has not answered yet (see `wallet status`)"
                    .into()
            }
            CancelFate::Cancelled => "cancelled".into(),
            CancelFate::Returning => {
                "cancelled: the parcel is on its way back; the payment is refunded when the \
                 carrier records the return"
                    .into()
            }
            CancelFate::RefusedDelivered => {
                "not cancelled: the parcel was delivered before the carrier could stop it; the \
                 payment stands"
                    .into()
            }
            CancelFate::Other => format!("not cancelled: the order is {}", outcome.state),
        }
    }
}

/// What can go wrong for the cardholder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardholderError {
    /// A party is not in the directory.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// A call failed (unreachable, not authentic, refused).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Sealing or validating the order failed.
    #[error(transparent)]
    Core(#[from] warifu_core::Error),
    /// The merchant's form is not acceptable.
    #[error("the order form is not acceptable: {0}")]
    Form(String),
    /// The decision the merchant relayed is not the issuer's, or not about this order.
    #[error("the merchant relayed a decision the issuer did not make for this order")]
    ReceiptInvalid,
    /// The public catalog could not be fetched.
    #[error("cannot fetch the catalog of {0}: {1}")]
    Catalog(PartyId, String),
    /// The merchant claims a state past the issuer's approval (`authorized`, `shipped`,
    /// `captured`, …) without relaying an issuer's approval that verifies: nothing the
    /// merchant says about the payment or the delivery is believed without it.
    #[error(
        "the merchant says the order is {state}, but relays no approval of the issuer that verifies"
    )]
    UnprovenState {
        /// The state the merchant claimed.
        state: String,
    },
}

/// The result of a purchase.
#[derive(Debug, Clone)]
pub struct Purchase {
    /// The form it was placed on.
    pub form: OrderForm,
    /// The bundle as sent.
    pub sealed: SealedOrder,
    /// The merchant's answer, with the issuer's receipt checked.
    pub outcome: OrderOutcome,
}

/// One of the cardholder's orders as its client shows it: the merchant's state and payment
/// (from the merchant), and the delivery (from the carrier, with the destination it sealed).
#[derive(Debug, Clone)]
pub struct OrderView {
    /// The merchant's answer (state, the issuer's decision and last payment receipt).
    pub outcome: OrderOutcome,
    /// The carrier's tracking, when the order is shipped and the carrier answered.
    pub tracking: Option<TrackingView>,
    /// Why the carrier could not be asked, if it could not.
    pub tracking_error: Option<String>,
    /// The order's line on the issuer's statement (payment method and instalments), when
    /// the issuer decided and answered.
    pub statement: Option<StatementEntry>,
}

impl OrderView {
    /// The merchant's state of the order (`received`, `captured`, `delivered`, `refunded`, …).
    pub fn merchant_state(&self) -> &str {
        &self.outcome.state
    }

    /// The payment's state: the issuer's last receipt (`captured`, `voided`, `refunded`,
    /// `partially_refunded`), else the decision (`authorized`, `declined`), else `None`.
    pub fn payment_state(&self) -> Option<String> {
        if let Some(p) = &self.outcome.payment {
            return Some(p.state.clone());
        }
        self.outcome.decision.as_ref().map(|d| {
            if d.approved() {
                "authorized".to_owned()
            } else {
                "declined".to_owned()
            }
        })
    }

    /// How the cardholder pays (`lump_sum`, `installments(3)`, …), once the issuer said.
    pub fn payment_method(&self) -> Option<&str> {
        self.outcome
            .payment
            .as_ref()
            .map(|p| p.payment_method.as_str())
    }

    /// The monthly instalments still owed, as the issuer's statement shows them (empty for a
    /// lump sum or when nothing is owed; `None` if the issuer was not asked).
    pub fn instalments(&self) -> Option<&[u64]> {
        self.statement.as_ref().map(|e| e.instalments.as_slice())
    }

    /// The delivery's state: the carrier's own answer, else what the merchant last saw.
    pub fn delivery_state(&self) -> Option<&str> {
        self.tracking
            .as_ref()
            .map(|t| t.status.as_str())
            .or(self.outcome.delivery.as_deref())
    }
}

/// The merchant's states an answer may claim without an issuer's approval: before the
/// decision, a decline, a cancellation before any decision, a failure. Every other state
/// (`authorized`, `shipping_requested`, `shipped`, `captured`, `delivered`, `cancelling`,
/// `returning`, `voided`, `refunded`, and any state this client does not know) needs one.
pub const STATES_WITHOUT_APPROVAL: [&str; 4] = ["received", "declined", "cancelled", "failed"];

/// A cardholder's client.
pub struct Cardholder {
    keys: Arc<dyn KeySource>,
    directory: Arc<SharedDirectory>,
    peers: PeerClients,
    ceiling: Policy,
    /// The recipients' KEM public keys as they answered, with when (at most [`KEM_KEY_TTL`]).
    kem_keys: Mutex<HashMap<PartyId, (Instant, KemPublicKey)>>,
}

/// Whether a failed KEM key request means the party has no key to give now (unreachable, or
/// a party that does not serve `GET /v1/kem-key`), as opposed to a party that is not authentic.
fn no_kem_key(e: &ClientError) -> bool {
    match e {
        ClientError::Unavailable { .. } => true,
        ClientError::Refused { code, .. } => code == "not_found",
        _ => false,
    }
}

/// How long the cardholder seals to a party's KEM key answer before asking again: well
/// within the shortest grace period of an old epoch ([`crate::kem::MIN_GRACE`]).
pub const KEM_KEY_TTL: Duration = Duration::from_secs(60);

impl core::fmt::Debug for Cardholder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Cardholder {{ id: {}, keys: <redacted> }}",
            self.keys.owner()
        )
    }
}

impl Cardholder {
    /// A client for the holder of `keys` (a cardholder identifier), finding parties in
    /// `directory`.
    pub fn new(keys: Arc<dyn KeySource>, directory: Arc<SharedDirectory>) -> Cardholder {
        Cardholder {
            peers: PeerClients::new(keys.clone(), directory.clone(), Clock::system()),
            keys,
            directory,
            ceiling: Policy::patent_default(),
            kem_keys: Mutex::new(HashMap::new()),
        }
    }

    /// The same client reading `clock` (when it seals, its sessions) instead of the
    /// system's.
    pub fn with_clock(mut self, clock: Clock) -> Cardholder {
        self.peers = self.peers.with_clock(clock);
        self
    }

    /// The clock this client reads.
    pub fn clock(&self) -> &Clock {
        self.peers.clock()
    }

    /// The same client with `ceiling` as the most it discloses: a form whose policy gives a
    /// field to a party the ceiling does not is refused before anything is sealed
    /// ([`warifu_core::Error::DisclosureRefused`]). Without it, the patent's table.
    pub fn with_ceiling(mut self, ceiling: Policy) -> Cardholder {
        self.ceiling = ceiling;
        self
    }

    /// The most this client discloses (see [`Cardholder::with_ceiling`]).
    pub fn ceiling(&self) -> &Policy {
        &self.ceiling
    }

    /// The cardholder's identifier.
    pub fn id(&self) -> &PartyId {
        self.keys.owner()
    }

    /// The authenticated client for a listed party (a fresh one if its endpoint changed).
    pub fn peer(&self, id: &PartyId, role: Role) -> Result<Arc<PeerClient>, CardholderError> {
        Ok(self.peers.get(id, role)?)
    }

    /// The merchant's public catalog (unauthenticated: browsing only, never used to seal).
    pub async fn catalog(&self, merchant: &PartyId) -> Result<CatalogView, CardholderError> {
        let dir = self.directory.get();
        let entry = dir.lookup(merchant, Role::Merchant)?;
        let fail = |d: String| CardholderError::Catalog(merchant.clone(), d);
        let resp = self
            .peers
            .http()
            .get(format!("{}/v1/catalog", entry.endpoint))
            .send()
            .await
            .map_err(|_| fail("unreachable".into()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status().as_u16())));
        }
        resp.json().await.map_err(|_| fail("not a catalog".into()))
    }

    /// Confirms the merchant (claim 5) and asks it for a fresh order form in the session, so
    /// the form (its carrier, issuers and policy) is authenticated by the merchant.
    pub async fn order_form(
        &self,
        merchant: &PartyId,
        digital: bool,
    ) -> Result<OrderForm, CardholderError> {
        let client = self.peer(merchant, Role::Merchant)?;
        let form: OrderForm = client
            .post("/v1/order-forms", &FormRequest { digital })
            .await?;
        form.validate()?;
        if &form.merchant != merchant {
            return Err(CardholderError::Form(format!(
                "the form names {} instead of {merchant}",
                form.merchant
            )));
        }
        let dir = self.directory.get();
        if let Some(c) = &form.carrier {
            dir.lookup(c, Role::Carrier)?;
        }
        Ok(form)
    }

    /// The current KEM public keys of the form's recipients (merchant, `issuer`, carrier),
    /// each asked of the party in a session (so the answer is the party's, PROTOCOL.md
    /// §19.5) and kept for [`KEM_KEY_TTL`].
    pub async fn recipient_keys(
        &self,
        form: &OrderForm,
        issuer: &PartyId,
    ) -> Result<RecipientKeys, CardholderError> {
        let mut wanted = vec![(&form.merchant, Role::Merchant), (issuer, Role::Issuer)];
        if let Some(c) = &form.carrier {
            wanted.push((c, Role::Carrier));
        }
        let mut keys = RecipientKeys::new();
        for (id, role) in wanted {
            let cached = self
                .kem_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .filter(|(at, _)| at.elapsed() < KEM_KEY_TTL)
                .map(|(_, k)| k.clone());
            let key = match cached {
                Some(k) => k,
                None => {
                    let k: KemPublicKey = self.peer(id, role)?.get(PATH_KEM_KEY).await?;
                    self.kem_keys
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone(), (Instant::now(), k.clone()));
                    k
                }
            };
            keys.insert(id.clone(), key);
        }
        Ok(keys)
    }

    /// Seals `order` on `form` for a card of `issuer`, in this process, in format version 3
    /// (each part also sealed to its recipient's current KEM key: forward secrecy).
    pub async fn seal(
        &self,
        form: &OrderForm,
        order: &Order,
        issuer: &PartyId,
    ) -> Result<SealedOrder, CardholderError> {
        self.seal_within(form, order, issuer, &self.ceiling).await
    }

    /// Seals as [`Cardholder::seal`], under `ceiling` for this order instead of the client's
    /// own (a wallet page's explicit per-order acceptance of a wider disclosure).
    pub async fn seal_within(
        &self,
        form: &OrderForm,
        order: &Order,
        issuer: &PartyId,
        ceiling: &Policy,
    ) -> Result<SealedOrder, CardholderError> {
        self.directory.get().lookup(issuer, Role::Issuer)?;
        // The ceiling and the order are checked before any party is asked for a key.
        form.policy.within(ceiling)?;
        let now = self.clock().now_unix();
        order.validate(form, now)?;
        match self.recipient_keys(form, issuer).await {
            Ok(recipients) => Ok(sealed::seal_to(
                form,
                order,
                issuer,
                ceiling,
                self.keys.as_ref(),
                &recipients,
                now,
                &mut OsRandom,
            )?),
            // A recipient that cannot be reached now (the merchant queues what it forwards
            // until the peer is back) or that publishes no KEM key yet: version 2, under K
            // alone — as confidential, without forward secrecy for this order (PROTOCOL.md
            // §19.5). Any other failure (a peer that is not authentic) stops the purchase.
            Err(CardholderError::Client(e)) if no_kem_key(&e) => {
                tracing::warn!(
                    order_id = %form.order_id,
                    "no KEM key of a recipient ({e}); sealing format version 2, without forward secrecy"
                );
                Ok(sealed::seal_within(
                    form,
                    order,
                    issuer,
                    ceiling,
                    self.keys.as_ref(),
                    now,
                    &mut OsRandom,
                )?)
            }
            Err(e) => Err(e),
        }
    }

    /// Submits a sealed bundle to its merchant and checks the issuer's receipt of the
    /// decision that comes back.
    pub async fn submit(&self, sealed: &SealedOrder) -> Result<OrderOutcome, CardholderError> {
        let client = self.peer(&sealed.header.merchant, Role::Merchant)?;
        let outcome: OrderOutcome = client
            .post(
                "/v1/orders",
                &SubmitRequest {
                    sealed: sealed.clone(),
                },
            )
            .await?;
        self.check_outcome(sealed, &outcome)?;
        Ok(outcome)
    }

    /// Checks that the relayed decision is the issuer's, for this bundle.
    pub fn check_outcome(
        &self,
        sealed: &SealedOrder,
        outcome: &OrderOutcome,
    ) -> Result<(), CardholderError> {
        if outcome.order_id != sealed.header.order_id {
            return Err(CardholderError::ReceiptInvalid);
        }
        if let Some(d) = &outcome.decision
            && (d.header_digest != sealed.header.digest() || d.issuer != sealed.header.issuer)
        {
            return Err(CardholderError::ReceiptInvalid);
        }
        self.check_claim(outcome)
    }

    /// Checks what the merchant says of an order against the issuer's receipt it relays: the
    /// receipt must verify under this cardholder's key and name this order, and a state past
    /// the approval needs an approving receipt ([`STATES_WITHOUT_APPROVAL`]).
    pub fn check_claim(&self, outcome: &OrderOutcome) -> Result<(), CardholderError> {
        if let Some(d) = &outcome.decision {
            attest::verify_cardholder_receipt(self.keys.as_ref(), d)
                .map_err(|_| CardholderError::ReceiptInvalid)?;
            if d.order_id != outcome.order_id {
                return Err(CardholderError::ReceiptInvalid);
            }
        }
        let approved = outcome.decision.as_ref().is_some_and(|d| d.approved());
        if !approved && !STATES_WITHOUT_APPROVAL.contains(&outcome.state.as_str()) {
            return Err(CardholderError::UnprovenState {
                state: outcome.state.clone(),
            });
        }
        Ok(())
    }

    /// The whole purchase: confirm the merchant, get a form, fill it with `fill`, seal, submit.
    pub async fn purchase(
        &self,
        merchant: &PartyId,
        issuer: &PartyId,
        digital: bool,
        fill: impl FnOnce(&OrderForm) -> Result<Order, warifu_core::Error>,
    ) -> Result<Purchase, CardholderError> {
        let form = self.order_form(merchant, digital).await?;
        let order = fill(&form)?;
        let sealed = self.seal(&form, &order, issuer).await?;
        let outcome = self.submit(&sealed).await?;
        Ok(Purchase {
            form,
            sealed,
            outcome,
        })
    }

    /// The merchant's view of one of this cardholder's orders.
    pub async fn order_status(
        &self,
        merchant: &PartyId,
        order_id: &OrderId,
    ) -> Result<OrderOutcome, CardholderError> {
        let client = self.peer(merchant, Role::Merchant)?;
        let outcome: OrderOutcome = client.get(&format!("/v1/orders/{order_id}")).await?;
        if outcome.order_id != order_id {
            return Err(CardholderError::ReceiptInvalid);
        }
        self.check_claim(&outcome)?;
        Ok(outcome)
    }

    /// One of this cardholder's orders: the merchant's state and payment, and the delivery
    /// as the carrier tells it (asked only once the order is shipped; an unreachable carrier
    /// leaves `tracking` empty and says why in `tracking_error`).
    pub async fn order_view(
        &self,
        merchant: &PartyId,
        order_id: &OrderId,
    ) -> Result<OrderView, CardholderError> {
        let outcome = self.order_status(merchant, order_id).await?;
        let (mut tracking, mut tracking_error) = (None, None);
        if let (Some(carrier), Some(_)) = (&outcome.carrier, &outcome.tracking_number) {
            match self.tracking(carrier, merchant, order_id).await {
                Ok(t) => tracking = Some(t),
                Err(e) => tracking_error = Some(e.to_string()),
            }
        }
        let mut statement = None;
        if let Some(d) = outcome.decision.as_ref().filter(|d| d.approved())
            && let Ok(s) = self.statement(&d.issuer).await
        {
            statement = s
                .entries
                .into_iter()
                .find(|e| e.order_id == order_id && e.merchant == merchant.as_str());
        }
        Ok(OrderView {
            outcome,
            tracking,
            tracking_error,
            statement,
        })
    }

    /// This cardholder's statement at `issuer`: its cards (never the full number) and its
    /// orders with their payment state and instalments.
    pub async fn statement(&self, issuer: &PartyId) -> Result<Statement, CardholderError> {
        let client = self.peer(issuer, Role::Issuer)?;
        Ok(client.get(PATH_STATEMENT).await?)
    }

    /// Cancels one of this cardholder's orders at its merchant: before shipping the
    /// authorization is voided (`voided`), after capture the payment is refunded
    /// (`refunded`). A retry returns the first answer.
    pub async fn cancel(
        &self,
        merchant: &PartyId,
        order_id: &OrderId,
    ) -> Result<OrderOutcome, CardholderError> {
        let client = self.peer(merchant, Role::Merchant)?;
        Ok(client
            .post(&format!("/v1/orders/{order_id}/cancel"), &CancelRequest {})
            .await?)
    }

    /// Cancels an order and waits up to `wait` for what becomes of it
    /// ([`Cardholder::settle_cancel`]). A parcel the carrier reports delivered at once is
    /// refused as before (`invalid_transition`).
    pub async fn cancel_and_wait(
        &self,
        merchant: &PartyId,
        order_id: &OrderId,
        wait: std::time::Duration,
    ) -> Result<(OrderOutcome, CancelFate), CardholderError> {
        let outcome = self.cancel(merchant, order_id).await?;
        self.settle_cancel(merchant, outcome, wait).await
    }

    /// While the merchant's answer to a cancel is `cancelling` (the carrier has not answered
    /// yet, say it was down), asks for the order again every 250 ms for up to `wait`; the
    /// last answer and its [`CancelFate`].
    pub async fn settle_cancel(
        &self,
        merchant: &PartyId,
        mut outcome: OrderOutcome,
        wait: std::time::Duration,
    ) -> Result<(OrderOutcome, CancelFate), CardholderError> {
        let deadline = tokio::time::Instant::now() + wait;
        while CancelFate::of(&outcome) == CancelFate::Pending
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(CANCEL_POLL.min(wait)).await;
            outcome = self.order_status(merchant, &outcome.order_id).await?;
        }
        let fate = CancelFate::of(&outcome);
        Ok((outcome, fate))
    }

    /// The carrier's tracking of one of this cardholder's orders, with the destination it
    /// sealed (authenticated with the cardholder's own key with the carrier).
    pub async fn tracking(
        &self,
        carrier: &PartyId,
        merchant: &PartyId,
        order_id: &OrderId,
    ) -> Result<TrackingView, CardholderError> {
        let client = self.peer(carrier, Role::Carrier)?;
        Ok(client
            .get(&format!("/v1/shipments/{merchant}/{order_id}"))
            .await?)
    }
}
