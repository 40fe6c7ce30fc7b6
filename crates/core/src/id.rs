//! Public party identifiers (`role:name`), the roles of the patent's parties, and order ids.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 255;

/// The role of a party, the prefix of its identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The cardholder (terminal 1).
    Cardholder,
    /// The merchant, commodity seller (terminal 2).
    Merchant,
    /// The card manager, issuer (terminal 3).
    Issuer,
    /// The distributor, carrier (terminal 4).
    Carrier,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Cardholder,
        Role::Merchant,
        Role::Issuer,
        Role::Carrier,
    ];

    /// The prefix used in identifiers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cardholder => "cardholder",
            Role::Merchant => "merchant",
            Role::Issuer => "issuer",
            Role::Carrier => "carrier",
        }
    }

    /// The one-byte code used in binary encodings.
    pub fn code(self) -> u8 {
        match self {
            Role::Cardholder => 0,
            Role::Merchant => 1,
            Role::Issuer => 2,
            Role::Carrier => 3,
        }
    }

    /// The role for a one-byte code.
    pub fn from_code(c: u8) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == c)
    }
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public identifier such as `merchant:shop.example`: a role, a colon and a name of
/// printable ASCII or UTF-8 without control characters, at most [`MAX_ID_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyId(String);

impl PartyId {
    /// Parses and validates an identifier.
    pub fn parse(s: &str) -> Result<PartyId> {
        let bad = |why: &str| Error::InvalidIdentifier(format!("{:?}: {why}", truncate(s)));
        if s.len() > MAX_ID_LEN {
            return Err(bad("longer than 255 bytes"));
        }
        let (role, name) = s.split_once(':').ok_or_else(|| bad("expected role:name"))?;
        if !Role::ALL.iter().any(|r| r.as_str() == role) {
            return Err(bad("role must be cardholder, merchant, issuer or carrier"));
        }
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(
                "name must be non-empty without spaces or control characters",
            ));
        }
        if let Some((_, tail)) = name.rsplit_once(EPOCH_SEPARATOR)
            && !tail.is_empty()
            && tail.bytes().all(|b| b.is_ascii_digit())
            && epoch_number(tail).is_none()
        {
            return Err(bad("an epoch suffix is ~2, ~3, … (epoch 1 has none)"));
        }
        Ok(PartyId(s.to_owned()))
    }

    /// The key epoch: `cardholder:alice@mail.example~2` is the identity
    /// `cardholder:alice@mail.example` re-issued under epoch 2; an identifier without a
    /// suffix is epoch 1. Each epoch is a distinct identifier with its own keys, so revoking
    /// one epoch leaves the next working.
    pub fn epoch(&self) -> u32 {
        self.0
            .rsplit_once(EPOCH_SEPARATOR)
            .and_then(|(_, tail)| epoch_number(tail))
            .unwrap_or(1)
    }

    /// The identifier without its epoch suffix (the identity every epoch shares).
    pub fn identity(&self) -> &str {
        match self.0.rsplit_once(EPOCH_SEPARATOR) {
            Some((head, tail)) if epoch_number(tail).is_some() => head,
            _ => &self.0,
        }
    }

    /// The same identity under `epoch` (1: no suffix).
    pub fn with_epoch(&self, epoch: u32) -> Result<PartyId> {
        match epoch {
            0 => Err(Error::InvalidIdentifier("epochs start at 1".into())),
            1 => PartyId::parse(self.identity()),
            n => PartyId::parse(&format!("{}{EPOCH_SEPARATOR}{n}", self.identity())),
        }
    }

    /// The identifier's role.
    pub fn role(&self) -> Role {
        let prefix = self.0.split(':').next().unwrap_or_default();
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == prefix)
            .unwrap_or(Role::Cardholder)
    }

    /// The identifier as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Separates an identifier from its key epoch (see [`PartyId::epoch`]).
pub const EPOCH_SEPARATOR: char = '~';

/// A canonical epoch suffix: decimal, no leading zero, at least 2.
fn epoch_number(tail: &str) -> Option<u32> {
    if tail.starts_with('0') || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tail.parse::<u32>().ok().filter(|n| *n >= 2)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

impl core::fmt::Display for PartyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::str::FromStr for PartyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<PartyId> {
        PartyId::parse(s)
    }
}

impl TryFrom<String> for PartyId {
    type Error = Error;
    fn try_from(s: String) -> Result<PartyId> {
        PartyId::parse(&s)
    }
}

impl From<PartyId> for String {
    fn from(id: PartyId) -> String {
        id.0
    }
}

/// A merchant's order id, as it crosses crates: the order form, the sealed header, the wire
/// bodies, the store's records. A typed wrapper around the string, nothing more: it
/// serializes as the bare string (same JSON) and construction accepts any string, because
/// the checks stay where they were ([`crate::order::OrderForm::validate`] and the sealed
/// header's decoder). Bind [`OrderId::as_str`] at an SQL boundary.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(String);

impl OrderId {
    /// Wraps a string as an order id, unchecked.
    pub fn new(s: impl Into<String>) -> OrderId {
        OrderId(s.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Debug-prints as the bare string does (`"ord-1"`), as the `String` it replaced did.
impl core::fmt::Debug for OrderId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.0, f)
    }
}

impl core::fmt::Display for OrderId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::ops::Deref for OrderId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OrderId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl core::borrow::Borrow<str> for OrderId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl core::str::FromStr for OrderId {
    type Err = core::convert::Infallible;
    fn from_str(s: &str) -> core::result::Result<OrderId, Self::Err> {
        Ok(OrderId::from(s))
    }
}

impl From<String> for OrderId {
    fn from(s: String) -> OrderId {
        OrderId(s)
    }
}

impl From<&str> for OrderId {
    fn from(s: &str) -> OrderId {
        OrderId(s.to_owned())
    }
}

impl From<&String> for OrderId {
    fn from(s: &String) -> OrderId {
        OrderId(s.clone())
    }
}

impl From<&OrderId> for OrderId {
    fn from(id: &OrderId) -> OrderId {
        id.clone()
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> String {
        id.0
    }
}

impl From<&OrderId> for String {
    fn from(id: &OrderId) -> String {
        id.0.clone()
    }
}

impl PartialEq<str> for OrderId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrderId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for OrderId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<&OrderId> for OrderId {
    fn eq(&self, other: &&OrderId) -> bool {
        self.0 == other.0
    }
}

impl PartialEq<OrderId> for str {
    fn eq(&self, other: &OrderId) -> bool {
        self == other.0
    }
}

impl PartialEq<OrderId> for &str {
    fn eq(&self, other: &OrderId) -> bool {
        *self == other.0
    }
}

impl PartialEq<OrderId> for String {
    fn eq(&self, other: &OrderId) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_suffixes_of_one_identity() {
        let a = PartyId::parse("cardholder:alice@mail.example").expect("id");
        assert_eq!(a.epoch(), 1);
        let a2 = a.with_epoch(2).expect("epoch 2");
        assert_eq!(a2.as_str(), "cardholder:alice@mail.example~2");
        assert_eq!((a2.epoch(), a2.identity()), (2, a.as_str()));
        assert_eq!(
            a2.with_epoch(7).expect("7").as_str(),
            "cardholder:alice@mail.example~7"
        );
        assert_eq!(a2.with_epoch(1).expect("1"), a);
        assert_eq!(a2.role(), Role::Cardholder);
        for bad in ["cardholder:a~1", "cardholder:a~0", "cardholder:a~02"] {
            assert!(PartyId::parse(bad).is_err(), "{bad}");
        }
        let odd = PartyId::parse("cardholder:a~b").expect("not an epoch");
        assert_eq!((odd.epoch(), odd.identity()), (1, "cardholder:a~b"));
        assert!(a.with_epoch(0).is_err());
    }

    #[test]
    fn order_ids_read_and_print_as_the_bare_string() {
        let id = OrderId::from("ord-1");
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(json, "\"ord-1\"");
        assert_eq!(serde_json::from_str::<OrderId>(&json).expect("back"), id);
        assert_eq!(
            (format!("{id}"), format!("{id:?}")),
            ("ord-1".to_owned(), json)
        );
        assert_eq!(id, "ord-1");
        assert_eq!("ord-1", id.as_str());
        // No checks here: those stay in `OrderForm::validate` and the sealed header.
        assert_eq!(OrderId::from("").as_str(), "");
        assert_eq!(String::from(id), "ord-1");
    }

    #[test]
    fn parses_roles() {
        let id = PartyId::parse("merchant:shop.example").expect("valid");
        assert_eq!(id.role(), Role::Merchant);
        for bad in [
            "",
            "shop",
            "bank:x",
            "issuer:",
            "issuer:a b",
            "carrier:\u{7}",
        ] {
            assert!(PartyId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PartyId::parse(&format!("issuer:{}", "x".repeat(300))).is_err());
    }
}
