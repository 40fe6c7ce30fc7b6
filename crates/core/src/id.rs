//! Public party identifiers (`role:name`) and the roles of the patent's parties.

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
        Ok(PartyId(s.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
