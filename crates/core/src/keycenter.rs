//! The key issuing center: the master plus the register of issued identifiers.

use std::collections::BTreeMap;

use crate::blom::{LANES, Master, PersonalKey, id_to_field};
use crate::id::PartyId;
use crate::{Error, Result};

/// A key center: issues personal keys and refuses an identifier whose field element equals,
/// in any lane, that of an identifier already issued (two such parties would share key
/// material).
pub struct KeyCenter {
    master: Master,
    issued: BTreeMap<PartyId, [u128; LANES]>,
    by_element: BTreeMap<(usize, u128), PartyId>,
}

impl KeyCenter {
    /// A center over `master` that has issued `issued` before (in any order).
    pub fn new(master: Master, issued: impl IntoIterator<Item = PartyId>) -> Result<KeyCenter> {
        let mut center = KeyCenter {
            master,
            issued: BTreeMap::new(),
            by_element: BTreeMap::new(),
        };
        for id in issued {
            center.register(&id)?;
        }
        Ok(center)
    }

    /// The master.
    pub fn master(&self) -> &Master {
        &self.master
    }

    /// The identifiers issued so far, in order.
    pub fn issued(&self) -> impl Iterator<Item = &PartyId> {
        self.issued.keys()
    }

    fn register(&mut self, id: &PartyId) -> Result<()> {
        if self.issued.contains_key(id) {
            return Ok(());
        }
        let elements: [u128; LANES] = core::array::from_fn(|lane| id_to_field(id, lane).value());
        for (lane, &e) in elements.iter().enumerate() {
            if self.by_element.contains_key(&(lane, e)) {
                return Err(Error::IdentifierCollision(id.to_string()));
            }
        }
        for (lane, &e) in elements.iter().enumerate() {
            self.by_element.insert((lane, e), id.clone());
        }
        self.issued.insert(id.clone(), elements);
        Ok(())
    }

    /// Issues (or re-issues, identically) the personal key of `id`.
    pub fn issue(&mut self, id: &PartyId) -> Result<PersonalKey> {
        self.register(id)?;
        Ok(self.master.personal_key(id))
    }

    /// Whether `id` collides with an issued identifier (test hook for the refusal path).
    #[doc(hidden)]
    pub fn force_element(&mut self, lane: usize, element: u128, holder: PartyId) {
        self.by_element.insert((lane, element), holder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::SeededRandom;

    #[test]
    fn collisions_are_refused_and_reissue_is_stable() {
        let master = Master::generate(4, &mut SeededRandom::new(b"c")).expect("master");
        let mut center = KeyCenter::new(master, []).expect("center");
        let a = PartyId::parse("cardholder:a").expect("id");
        let b = PartyId::parse("cardholder:b").expect("id");
        let first = center.issue(&a).expect("issue");
        let again = center.issue(&a).expect("reissue");
        assert_eq!(first.lane(0), again.lane(0));
        // Pretend some earlier identifier already owns b's lane-1 element.
        center.force_element(1, id_to_field(&b, 1).value(), a.clone());
        assert!(matches!(
            center.issue(&b),
            Err(Error::IdentifierCollision(_))
        ));
        assert_eq!(center.issued().count(), 1);
    }
}
