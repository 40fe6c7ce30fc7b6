//! The disclosure policy (claims 1–3, Fig. 2): which party receives which field of an order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::id::Role;
use crate::{Error, Result};

/// The label hashed in front of a policy's encoding to give its digest.
pub const POLICY_DIGEST_LABEL: &[u8] = b"warifu/v1/policy";

/// A field of the order of Fig. 2, the unit of disclosure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Cardholder's name.
    CardholderName,
    /// Cardholder's address.
    CardholderAddress,
    /// Telephone number.
    Telephone,
    /// FAX number.
    Fax,
    /// Card number and expiry (one field: they always travel together).
    Card,
    /// Product names.
    ProductName,
    /// Quantities.
    Quantity,
    /// Product numbers.
    ProductNumber,
    /// Line amounts, the total and the currency.
    Amount,
    /// Payment method (lump sum, installments, revolving, bonus).
    PaymentMethod,
    /// Delivery destination: addressee and address.
    DeliveryDestination,
}

impl Field {
    /// Every field, in encoding order (code = index).
    pub const ALL: [Field; 11] = [
        Field::CardholderName,
        Field::CardholderAddress,
        Field::Telephone,
        Field::Fax,
        Field::Card,
        Field::ProductName,
        Field::Quantity,
        Field::ProductNumber,
        Field::Amount,
        Field::PaymentMethod,
        Field::DeliveryDestination,
    ];

    /// The field's name as used in TOML and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Field::CardholderName => "cardholder_name",
            Field::CardholderAddress => "cardholder_address",
            Field::Telephone => "telephone",
            Field::Fax => "fax",
            Field::Card => "card",
            Field::ProductName => "product_name",
            Field::Quantity => "quantity",
            Field::ProductNumber => "product_number",
            Field::Amount => "amount",
            Field::PaymentMethod => "payment_method",
            Field::DeliveryDestination => "delivery_destination",
        }
    }

    fn code(self) -> u8 {
        Field::ALL.iter().position(|f| *f == self).unwrap_or(0) as u8
    }
}

/// A party that can receive a part: the cardholder seals for these three.
pub const RECIPIENTS: [Role; 3] = [Role::Merchant, Role::Issuer, Role::Carrier];

fn bit(role: Role) -> u8 {
    match role {
        Role::Cardholder => 0,
        Role::Merchant => 1,
        Role::Issuer => 2,
        Role::Carrier => 4,
    }
}

/// Which parties receive each field. Construct with [`Policy::patent_default`] or
/// [`Policy::from_toml`]; both validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    masks: [u8; 11],
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::patent_default()
    }
}

impl Policy {
    /// The table of 【0032】 / Fig. 2.
    pub fn patent_default() -> Policy {
        use Field::*;
        let (m, i, c) = (bit(Role::Merchant), bit(Role::Issuer), bit(Role::Carrier));
        let mut p = Policy { masks: [0; 11] };
        for (f, mask) in [
            (CardholderName, m | i | c),
            (CardholderAddress, m | i),
            (Telephone, m | i | c),
            (Fax, m | i | c),
            (Card, i),
            (ProductName, m),
            (Quantity, m),
            (ProductNumber, m | i),
            (Amount, m | i),
            (PaymentMethod, m | i),
            (DeliveryDestination, c),
        ] {
            p.masks[f.code() as usize] = mask;
        }
        p
    }

    /// Builds a policy from `field → recipients` and validates it. Fields not listed go to
    /// nobody.
    pub fn from_map(map: &BTreeMap<Field, Vec<Role>>) -> Result<Policy> {
        let mut p = Policy { masks: [0; 11] };
        for (field, roles) in map {
            for &role in roles {
                if role == Role::Cardholder {
                    return Err(Error::InvalidPolicy(format!(
                        "{}: the cardholder is the sender, not a recipient",
                        field.name()
                    )));
                }
                if p.masks[field.code() as usize] & bit(role) != 0 {
                    return Err(Error::InvalidPolicy(format!(
                        "{}: {role} is listed twice",
                        field.name()
                    )));
                }
                p.masks[field.code() as usize] |= bit(role);
            }
        }
        p.validate()?;
        Ok(p)
    }

    /// Parses a TOML table `field = ["merchant", "issuer", …]`; unknown fields or roles are
    /// refused.
    pub fn from_toml(text: &str) -> Result<Policy> {
        let map: BTreeMap<Field, Vec<Role>> =
            toml::from_str(text).map_err(|e| Error::InvalidPolicy(e.message().to_owned()))?;
        Policy::from_map(&map)
    }

    /// The policy as a TOML document.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# field = the parties that receive it\n");
        for f in Field::ALL {
            let roles: Vec<String> = self.recipients(f).map(|r| format!("\"{r}\"")).collect();
            out.push_str(&format!("{} = [{}]\n", f.name(), roles.join(", ")));
        }
        out
    }

    /// The rules every policy keeps: the card goes to the issuer only (claim 3); the issuer
    /// gets the amount and payment method it authorizes; the merchant gets the amount; the
    /// carrier gets the destination (claim 2).
    fn validate(&self) -> Result<()> {
        let need = |f: Field, r: Role, why: &str| {
            if self.receives(r, f) {
                Ok(())
            } else {
                Err(Error::InvalidPolicy(format!(
                    "{} must go to the {r}: {why}",
                    f.name()
                )))
            }
        };
        if self.mask(Field::Card) != bit(Role::Issuer) {
            return Err(Error::InvalidPolicy(
                "card must go to the issuer and no one else (claim 3)".into(),
            ));
        }
        need(Field::Amount, Role::Issuer, "it authorizes the amount")?;
        need(
            Field::PaymentMethod,
            Role::Issuer,
            "it settles by the payment method",
        )?;
        need(
            Field::Amount,
            Role::Merchant,
            "it must know what it is paid",
        )?;
        need(
            Field::DeliveryDestination,
            Role::Carrier,
            "it delivers there",
        )?;
        Ok(())
    }

    fn mask(&self, f: Field) -> u8 {
        self.masks[f.code() as usize]
    }

    /// The first `(field, party)` this policy discloses beyond `ceiling`, the most the
    /// cardholder allows; `None` if it stays within.
    pub fn beyond(&self, ceiling: &Policy) -> Option<(Field, Role)> {
        Field::ALL.into_iter().find_map(|f| {
            RECIPIENTS
                .into_iter()
                .find(|r| self.receives(*r, f) && !ceiling.receives(*r, f))
                .map(|r| (f, r))
        })
    }

    /// Checks this (a form's) policy against the cardholder's `ceiling`:
    /// [`Error::DisclosureRefused`] names the first field and party beyond it.
    pub fn within(&self, ceiling: &Policy) -> Result<()> {
        match self.beyond(ceiling) {
            None => Ok(()),
            Some((field, party)) => Err(Error::DisclosureRefused {
                field: field.name(),
                party,
            }),
        }
    }

    /// This policy with `field` also given to `role`: how a cardholder widens its ceiling,
    /// knowingly. Widening never removes a recipient, so the result stays valid; the card
    /// stays the issuer's alone (claim 3) whatever is asked.
    pub fn widened(&self, field: Field, role: Role) -> Result<Policy> {
        if role == Role::Cardholder {
            return Err(Error::InvalidPolicy(format!(
                "{}: the cardholder is the sender, not a recipient",
                field.name()
            )));
        }
        let mut p = self.clone();
        p.masks[field.code() as usize] |= bit(role);
        p.validate()?;
        Ok(p)
    }

    /// Parses `field=party` (as in `--allow delivery_destination=merchant`).
    pub fn parse_grant(text: &str) -> Result<(Field, Role)> {
        let bad = || {
            Error::InvalidPolicy(format!(
                "{text:?}: expected field=party, e.g. delivery_destination=merchant"
            ))
        };
        let (field, party) = text.split_once('=').ok_or_else(bad)?;
        let field = Field::ALL
            .into_iter()
            .find(|f| f.name() == field.trim())
            .ok_or_else(bad)?;
        let party = RECIPIENTS
            .into_iter()
            .find(|r| r.to_string() == party.trim())
            .ok_or_else(bad)?;
        Ok((field, party))
    }

    /// Whether `role` receives `field`.
    pub fn receives(&self, role: Role, field: Field) -> bool {
        self.mask(field) & bit(role) != 0
    }

    /// The fields `role` receives.
    pub fn fields_for(&self, role: Role) -> impl Iterator<Item = Field> + '_ {
        Field::ALL
            .into_iter()
            .filter(move |f| self.receives(role, *f))
    }

    /// The roles that receive `field`.
    pub fn recipients(&self, field: Field) -> impl Iterator<Item = Role> + '_ {
        RECIPIENTS
            .into_iter()
            .filter(move |r| self.receives(*r, field))
    }

    /// The canonical encoding: for each field in order, `u8(code) ‖ u8(mask)` with merchant =
    /// 1, issuer = 2, carrier = 4.
    pub fn encode(&self) -> Vec<u8> {
        Field::ALL
            .iter()
            .flat_map(|f| [f.code(), self.mask(*f)])
            .collect()
    }

    /// `SHA-256(POLICY_DIGEST_LABEL ‖ encode())`, carried in every sealed order's header.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(POLICY_DIGEST_LABEL);
        h.update(self.encode());
        h.finalize().into()
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let map: BTreeMap<Field, Vec<Role>> = Field::ALL
            .into_iter()
            .map(|f| (f, self.recipients(f).collect()))
            .collect();
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Policy, D::Error> {
        let map = BTreeMap::<Field, Vec<Role>>::deserialize(d)?;
        Policy::from_map(&map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_refuses_a_greedy_form_and_widens_only_knowingly() {
        let ceiling = Policy::patent_default();
        assert_eq!(ceiling.within(&ceiling), Ok(()));
        let greedy = ceiling
            .widened(Field::DeliveryDestination, Role::Merchant)
            .expect("valid");
        assert_eq!(
            greedy.within(&ceiling),
            Err(Error::DisclosureRefused {
                field: "delivery_destination",
                party: Role::Merchant
            })
        );
        // A narrower form (no FAX to anyone) is within the ceiling.
        let mut narrow = ceiling.clone();
        narrow.masks[Field::Fax.code() as usize] = 0;
        assert_eq!(narrow.within(&ceiling), Ok(()));
        // Widened knowingly, the greedy form is accepted.
        let (f, r) = Policy::parse_grant("delivery_destination=merchant").expect("grant");
        assert_eq!(
            greedy.within(&ceiling.widened(f, r).expect("wider")),
            Ok(())
        );
        // The card never goes beyond the issuer, even when asked.
        assert!(ceiling.widened(Field::Card, Role::Merchant).is_err());
        for bad in [
            "card",
            "card=bank",
            "colour=merchant",
            "card=cardholder",
            "",
        ] {
            assert!(Policy::parse_grant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_is_the_patent_table() {
        let p = Policy::patent_default();
        assert!(p.receives(Role::Issuer, Field::Card));
        assert!(!p.receives(Role::Merchant, Field::Card));
        assert!(!p.receives(Role::Merchant, Field::DeliveryDestination));
        assert!(p.receives(Role::Carrier, Field::DeliveryDestination));
        assert_eq!(p.fields_for(Role::Carrier).count(), 4);
    }

    #[test]
    fn toml_round_trips_and_rejects_bad_policies() {
        let p = Policy::patent_default();
        assert_eq!(Policy::from_toml(&p.to_toml()).expect("round trip"), p);
        // 【0033】: a country where FAX is not needed and the merchant needs the destination.
        let custom = p
            .to_toml()
            .replace("fax = [\"merchant\", \"issuer\", \"carrier\"]", "fax = []")
            .replace(
                "delivery_destination = [\"carrier\"]",
                "delivery_destination = [\"merchant\", \"carrier\"]",
            );
        let q = Policy::from_toml(&custom).expect("custom");
        assert!(q.receives(Role::Merchant, Field::DeliveryDestination));
        assert_eq!(q.recipients(Field::Fax).count(), 0);
        assert_ne!(q.digest(), p.digest());
        for bad in [
            "card = [\"issuer\", \"merchant\"]\namount=[\"merchant\",\"issuer\"]",
            "colour = [\"merchant\"]",
            "card = [\"bank\"]",
            "card = [\"issuer\"]",
            "not toml",
        ] {
            assert!(Policy::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_party_listed_twice_is_refused() {
        let twice = Policy::patent_default().to_toml().replace(
            "fax = [\"merchant\", \"issuer\", \"carrier\"]",
            "fax = [\"carrier\", \"issuer\", \"carrier\"]",
        );
        assert!(twice.contains("\"carrier\", \"issuer\", \"carrier\""));
        let err = Policy::from_toml(&twice).expect_err("duplicate refused");
        assert!(err.to_string().contains("carrier is listed twice"), "{err}");
        let json = serde_json::to_string(&Policy::patent_default())
            .expect("json")
            .replace(
                "\"fax\":[\"merchant\",",
                "\"fax\":[\"merchant\",\"merchant\",",
            );
        assert!(json.contains("\"merchant\",\"merchant\""));
        assert!(serde_json::from_str::<Policy>(&json).is_err());
    }
}
