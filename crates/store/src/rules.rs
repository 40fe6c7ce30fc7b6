//! The issuer's and the carrier's rules as pure functions over loaded rows (issue 12): the SQL
//! loads the rows (locked), asks here, and saves what the rule answers. Nothing here touches a
//! database, so every rule is tested over every state without one.
//!
//! Issuer (an authorization's status, see [`AuthorizationStatus`]):
//!
//! | from \ step       | capture                    | void            | refund `id`, `x`                          |
//! |-------------------|----------------------------|-----------------|-------------------------------------------|
//! | held              | captured (≤ held)          | voided          | refused                                   |
//! | captured          | repeat (same amount)       | refused         | captured / refunded (≤ captured − refunded) |
//! | refunded          | repeat (same amount)       | refused         | refused (nothing left), repeat (same id)  |
//! | voided            | refused                    | repeat          | refused                                   |
//! | declined          | refused                    | refused         | refused                                   |
//!
//! A refund id is scoped to its order: the same id on another order is another refund; the
//! same id on the same order with the same amount is a repeat, with another amount refused.
//!
//! Carrier (a shipment's status, see [`ShipmentStatus`]): the operator moves accepted →
//! picked up → in transit → delivered, any of the first three → returned, returning →
//! returned; the merchant's cancel takes accepted → cancelled, picked up / in transit →
//! returning, and repeats on cancelled, returning or returned; a delivered shipment refuses it.

use warifu_core::order::year_month;

use crate::error::{Result, StoreError};
use crate::sql::{normalize_name, same_secret};
use crate::types::*;

/// What a payment step does to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Already done: answer the authorization as it is, move nothing.
    Repeat,
    /// The authorization after the step (the caller books the difference).
    Apply(AuthorizationRecord),
}

fn refused(a: &AuthorizationRecord, what: &str) -> StoreError {
    StoreError::Conflict(format!(
        "cannot {what} an authorization that is {}",
        a.status
    ))
}

/// The issuer's decision on a request given the cardholder's cards: the card to hold on, or
/// the decline (with the card, when one matched the number).
pub fn decide<'c>(
    req: &AuthorizeRequest,
    cards: &'c [CardRecord],
) -> core::result::Result<&'c CardRecord, (DeclineCode, Option<&'c CardRecord>)> {
    if cards.is_empty() {
        return Err((DeclineCode::UnknownCardholder, None));
    }
    let Some(card) = cards
        .iter()
        .find(|c| same_secret(c.number.expose(), req.card_number.expose()))
    else {
        return Err((DeclineCode::CardMismatch, None));
    };
    let decline = |code| Err((code, Some(card)));
    if normalize_name(&card.holder_name) != normalize_name(&req.holder_name) {
        return decline(DeclineCode::NameMismatch);
    }
    if card.expiry != req.expiry {
        return decline(DeclineCode::ExpiryMismatch);
    }
    if card.status == CardStatus::Blocked {
        return decline(DeclineCode::Blocked);
    }
    let now_s = u64::try_from(req.now_ms.max(0) / 1000).unwrap_or(0);
    let (y, m) = year_month(now_s);
    if card.status == CardStatus::Expired || (y, m) > (card.expiry.year, card.expiry.month) {
        return decline(DeclineCode::Expired);
    }
    if card.currency != req.currency {
        return decline(DeclineCode::CurrencyMismatch);
    }
    if req.amount == 0 || i64::try_from(req.amount).is_err() {
        return decline(DeclineCode::InvalidAmount);
    }
    if card.available < req.amount {
        return decline(DeclineCode::InsufficientCredit);
    }
    Ok(card)
}

/// Capture `amount` (all of the hold when `None`; the rest of the hold is released).
pub fn capture(a: &AuthorizationRecord, amount: Option<u64>) -> Result<Step> {
    match a.status {
        AuthorizationStatus::Held => {}
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded
            if amount.is_none_or(|x| x == a.captured) =>
        {
            return Ok(Step::Repeat);
        }
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded => {
            return Err(StoreError::Conflict(
                "already captured, with a different amount".into(),
            ));
        }
        _ => return Err(refused(a, "capture")),
    }
    let cap = amount.unwrap_or(a.held);
    if cap == 0 || cap > a.held {
        return Err(StoreError::Conflict(
            "the capture amount must be more than zero and at most the amount held".into(),
        ));
    }
    let mut next = a.clone();
    next.status = AuthorizationStatus::Captured;
    next.held = 0;
    next.captured = cap;
    Ok(Step::Apply(next))
}

/// Release the hold.
pub fn void(a: &AuthorizationRecord) -> Result<Step> {
    match a.status {
        AuthorizationStatus::Held => {
            let mut next = a.clone();
            next.status = AuthorizationStatus::Voided;
            next.held = 0;
            Ok(Step::Apply(next))
        }
        AuthorizationStatus::Voided => Ok(Step::Repeat),
        _ => Err(refused(a, "void")),
    }
}

/// A refund already recorded under the requested (merchant, order, refund id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorRefund {
    /// The authorization it refunded.
    pub authorization_id: String,
    /// Its amount.
    pub amount: u64,
}

/// Refund `amount` under a refund id whose earlier use on this order, if any, is `prior`.
/// Refunds never exceed the capture.
pub fn refund(a: &AuthorizationRecord, prior: Option<&PriorRefund>, amount: u64) -> Result<Step> {
    if let Some(p) = prior {
        if p.authorization_id == a.authorization_id && p.amount == amount {
            return Ok(Step::Repeat);
        }
        return Err(StoreError::Conflict(
            "this refund id was used on this order for another amount".into(),
        ));
    }
    if !matches!(
        a.status,
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded
    ) {
        return Err(refused(a, "refund"));
    }
    if amount == 0 || a.refunded.saturating_add(amount) > a.captured {
        return Err(StoreError::Conflict(
            "a refund must be more than zero and at most the captured amount not yet refunded"
                .into(),
        ));
    }
    let mut next = a.clone();
    next.refunded += amount;
    if next.refunded == next.captured {
        next.status = AuthorizationStatus::Refunded;
    }
    Ok(Step::Apply(next))
}

/// Whether an authorization still stands behind a shipment: held or captured (even partly
/// refunded). Voided, fully refunded and declined ones do not.
pub fn live(status: AuthorizationStatus) -> bool {
    matches!(
        status,
        AuthorizationStatus::Held | AuthorizationStatus::Captured
    )
}

/// Whether the carrier's operator may move a shipment from `from` to `to`. A cancelled
/// shipment never moves; a returning one only becomes returned, never delivered.
pub fn shipment_move(from: ShipmentStatus, to: ShipmentStatus) -> bool {
    use ShipmentStatus::*;
    matches!(
        (from, to),
        (Accepted, PickedUp)
            | (PickedUp, InTransit)
            | (InTransit, Delivered)
            | (Accepted | PickedUp | InTransit | Returning, Returned)
    )
}

/// Whether the carrier pushes a move to `to` to the order's merchant (a delivery event in its
/// outbox, written with the move): picked up, in transit, delivered, returned. A cancel's
/// outcome (cancelled, returning) is the answer to the merchant's own request instead.
pub fn shipment_pushed(to: ShipmentStatus) -> bool {
    use ShipmentStatus::*;
    matches!(to, PickedUp | InTransit | Delivered | Returned)
}

/// Where the merchant's cancel takes a shipment (`None`: the carrier holds none, so the
/// cancel leaves a cancelled tombstone). Refused for a delivered shipment.
pub fn shipment_cancel(from: Option<ShipmentStatus>) -> Result<ShipmentStatus> {
    use ShipmentStatus::*;
    match from {
        None | Some(Accepted) | Some(Cancelled) => Ok(Cancelled),
        Some(PickedUp | InTransit | Returning) => Ok(Returning),
        Some(Returned) => Ok(Returned),
        Some(Delivered) => Err(StoreError::Conflict(
            "the shipment was already delivered; it cannot be cancelled".into(),
        )),
    }
}

/// Whether a shipment in `status` was cancelled by its merchant (a late shipment request for
/// its order is refused).
pub fn shipment_cancelled(status: ShipmentStatus) -> bool {
    matches!(
        status,
        ShipmentStatus::Cancelled | ShipmentStatus::Returning
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use warifu_core::order::PaymentMethod;

    fn auth(
        status: AuthorizationStatus,
        held: u64,
        captured: u64,
        refunded: u64,
    ) -> AuthorizationRecord {
        AuthorizationRecord {
            authorization_id: "a1".into(),
            merchant_id: "m".into(),
            order_id: "o".into(),
            cardholder_id: "c".into(),
            card_id: Some("k".into()),
            amount: 1000,
            currency: "JPY".into(),
            payment_method: PaymentMethod::LumpSum,
            decline_code: None,
            status,
            held,
            captured,
            refunded,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn every_payment_step_from_every_status() {
        use AuthorizationStatus::*;
        for s in AuthorizationStatus::ALL {
            let a = match s {
                Held => auth(*s, 1000, 0, 0),
                Captured => auth(*s, 0, 1000, 400),
                Refunded => auth(*s, 0, 1000, 1000),
                _ => auth(*s, 0, 0, 0),
            };
            let cap = capture(&a, None);
            let vo = void(&a);
            let re = refund(&a, None, 100);
            match s {
                Held => {
                    assert!(
                        matches!(cap, Ok(Step::Apply(ref n)) if n.captured == 1000 && n.held == 0)
                    );
                    assert!(matches!(vo, Ok(Step::Apply(ref n)) if n.status == Voided));
                    assert!(re.is_err());
                }
                Captured => {
                    assert_eq!(cap.unwrap(), Step::Repeat);
                    assert!(vo.is_err());
                    assert!(
                        matches!(re, Ok(Step::Apply(ref n)) if n.refunded == 500 && n.status == Captured)
                    );
                    assert!(refund(&a, None, 601).is_err(), "beyond the capture");
                    let all = refund(&a, None, 600).unwrap();
                    assert!(matches!(all, Step::Apply(ref n) if n.status == Refunded));
                }
                Refunded => {
                    assert_eq!(cap.unwrap(), Step::Repeat);
                    assert!(vo.is_err());
                    assert!(re.is_err(), "nothing left to refund");
                }
                Voided => {
                    assert!(cap.is_err());
                    assert_eq!(vo.unwrap(), Step::Repeat);
                    assert!(re.is_err());
                }
                _ => {
                    assert!(cap.is_err() && vo.is_err() && re.is_err(), "{s}");
                }
            }
            assert_eq!(live(*s), matches!(s, Held | Captured), "{s}");
        }
    }

    #[test]
    fn a_refund_id_repeats_only_with_its_amount() {
        let a = auth(AuthorizationStatus::Captured, 0, 1000, 100);
        let prior = PriorRefund {
            authorization_id: "a1".into(),
            amount: 100,
        };
        assert_eq!(refund(&a, Some(&prior), 100).unwrap(), Step::Repeat);
        assert!(refund(&a, Some(&prior), 200).is_err());
        assert!(capture(&auth(AuthorizationStatus::Captured, 0, 1000, 0), Some(999)).is_err());
        assert!(capture(&auth(AuthorizationStatus::Held, 1000, 0, 0), Some(1001)).is_err());
    }

    #[test]
    fn every_shipment_move_and_cancel() {
        use ShipmentStatus::*;
        for from in ShipmentStatus::ALL {
            for to in ShipmentStatus::ALL {
                let ok = shipment_move(*from, *to);
                if matches!(from, Cancelled | Delivered | Returned) {
                    assert!(!ok, "{from} → {to}");
                }
                if matches!(to, Accepted | Cancelled | Returning) {
                    assert!(!ok, "{from} → {to}: only a cancel gets there");
                }
                if *to == Delivered {
                    assert_eq!(ok, *from == InTransit, "{from} → {to}");
                }
            }
            let c = shipment_cancel(Some(*from));
            match from {
                Accepted | Cancelled => assert_eq!(c.unwrap(), Cancelled),
                PickedUp | InTransit | Returning => assert_eq!(c.unwrap(), Returning),
                Returned => assert_eq!(c.unwrap(), Returned),
                Delivered => assert!(c.is_err()),
            }
        }
        assert_eq!(shipment_cancel(None).unwrap(), Cancelled);
    }
}
