//! The orders that `warifu bench` and the test kits buy: Luhn-valid card numbers, one filled
//! order for a form, and a cardholder's error as a short code.

use warifu_core::order::{Card, Destination, Expiry, Order, OrderForm, PaymentMethod, luhn};

use crate::cardholder::CardholderError;
use crate::session::client::ClientError;

/// The expiry of every fixture card.
pub const EXPIRY: Expiry = Expiry {
    year: 2035,
    month: 7,
};

/// The addressee of every fixture order that ships.
pub const ADDRESSEE: &str = "Taro Suzuki";

/// The address of every fixture order that ships.
pub const ADDRESS: &str = "2-2 Umeda, Osaka";

/// A Luhn-valid 16-digit card number, a different one for each `i` below 10^7.
pub fn card_number(i: usize) -> String {
    let base = format!("45391488{:07}", i % 10_000_000);
    (0..10)
        .map(|d| format!("{base}{d}"))
        .find(|n| luhn(n))
        .unwrap_or_else(|| format!("{base}0"))
}

/// `picks` for `name`, paid in one sum with card `number` (expiring [`EXPIRY`]), shipped to
/// [`ADDRESSEE`] at [`ADDRESS`] when the form has a carrier.
pub fn order_for(
    form: &OrderForm,
    picks: &[(&str, u32)],
    name: &str,
    number: &str,
) -> warifu_core::Result<Order> {
    let (lines, amount) = Order::lines_from(form, picks)?;
    Ok(Order {
        cardholder_name: name.into(),
        cardholder_address: "1-1 Chiyoda, Tokyo".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: None,
        card: Card {
            number: number.into(),
            expiry: EXPIRY,
        },
        lines,
        amount,
        currency: form.currency.clone(),
        payment_method: PaymentMethod::LumpSum,
        destination: form.carrier.as_ref().map(|_| Destination {
            addressee: ADDRESSEE.into(),
            address: ADDRESS.into(),
        }),
    })
}

/// A cardholder's error as a short code: the peer's own code, else what kind of failure.
pub fn error_code(e: &CardholderError) -> String {
    match e {
        CardholderError::Client(ClientError::Refused { code, .. }) => code.clone(),
        CardholderError::Client(ClientError::Unavailable { .. }) => "unavailable".into(),
        CardholderError::Client(ClientError::NotAuthentic { .. }) => "not_authentic".into(),
        CardholderError::Client(_) => "client".into(),
        CardholderError::ReceiptInvalid => "receipt_invalid".into(),
        CardholderError::Form(_) => "form".into(),
        CardholderError::Core(_) => "core".into(),
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_pass_luhn_and_differ() {
        let a = card_number(1);
        assert!(luhn(&a));
        assert_eq!(a.len(), 16);
        assert_ne!(a, card_number(2));
    }
}
