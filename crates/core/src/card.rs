//! A payment card number: checked once (digits, length, Luhn), compared in constant time,
//! never printed; only its last four digits leave it.

use crate::order::check_card_number;
use crate::secret::Secret;
use crate::{Error, Result};

/// A checked card number (12–19 digits with a valid Luhn digit). `Debug` and `Display` show
/// only the last four digits; equality is constant-time.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(Secret);

impl CardNumber {
    /// Checks `number` (spaces and dashes between digit groups are removed first).
    pub fn parse(number: &str) -> Result<CardNumber> {
        let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let secret = Secret::new(digits);
        check_card_number(&secret)?;
        Ok(CardNumber(secret))
    }

    /// The number, for the one party that holds it (the issuer).
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        last4(self.0.expose())
    }
}

impl TryFrom<&Secret> for CardNumber {
    type Error = Error;

    fn try_from(s: &Secret) -> Result<CardNumber> {
        CardNumber::parse(s.expose())
    }
}

/// The last four characters of a stored card number (all of it if shorter): what statements,
/// dashboards and wallets show.
pub fn last4(number: &str) -> &str {
    let cut = number
        .char_indices()
        .rev()
        .nth(3)
        .map(|(i, _)| i)
        .unwrap_or(0);
    &number[cut..]
}

impl core::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CardNumber(…{})", self.last4())
    }
}

impl core::fmt::Display for CardNumber {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "•••• {}", self.last4())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_masks_and_compares() {
        let n = CardNumber::parse("4539 1488-0343 6467").expect("valid");
        assert_eq!(n.expose(), "4539148803436467");
        assert_eq!(n.last4(), "6467");
        assert_eq!(format!("{n}"), "•••• 6467");
        assert_eq!(format!("{n:?}"), "CardNumber(…6467)");
        assert!(!format!("{n:?}{n}").contains("45391488"));
        assert_eq!(n, CardNumber::parse("4539148803436467").expect("valid"));
        assert_ne!(n, CardNumber::parse("4111111111111111").expect("valid"));
        for bad in [
            "4539148803436468",
            "12",
            "4539x48803436467",
            "",
            "45391488034364670000",
        ] {
            let e = CardNumber::parse(bad).expect_err(bad);
            assert!(!e.to_string().contains("453914"), "{e}");
        }
        assert_eq!(last4("12"), "12");
        assert_eq!(last4("123456"), "3456");
        assert_eq!(last4(""), "");
    }
}
