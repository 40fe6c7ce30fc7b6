//! The key issuing center: the master plus the register of issued identifiers, which it counts
//! against the collusion bound.
//!
//! Any k+1 holders of Blom keys together recover the master, so a Blom center never issues
//! more than k identifiers, and keeps a **margin** below k ([`margin`]: k/8, at least 1) for
//! re-keying: a new identity is issued only while the register holds fewer than
//! k − margin identifiers; a new epoch of an identity already registered (`id~2`, after a
//! revocation) may use the margin, up to k. Every identifier ever issued counts, revoked ones
//! included: a revoked key still holds its share of the master.
//!
//! In the hybrid (Blom ⊕ SOK) a center past its bound still issues, and says so
//! ([`KeyCenter::issue_in_hybrid`]): the Blom half then no longer resists a coalition, and the
//! pairwise keys rest on SOK alone.

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

    /// How many identifiers were issued (revoked ones included).
    pub fn count(&self) -> u32 {
        u32::try_from(self.issued.len()).unwrap_or(u32::MAX)
    }

    /// The most identifiers the center issues to new identities: k − [`margin`].
    pub fn limit(&self) -> u32 {
        limit(self.master.k())
    }

    /// How many new identities the center can still issue under its limit.
    pub fn remaining(&self) -> u32 {
        self.limit().saturating_sub(self.count())
    }

    /// Whether the register already holds more identifiers than the limit (only a hybrid
    /// center gets there).
    pub fn past_bound(&self) -> bool {
        self.count() > self.limit()
    }

    /// The limit that applies to issuing `id`: k for a new epoch of a registered identity,
    /// k − margin otherwise.
    fn limit_for(&self, id: &PartyId) -> u32 {
        let rekey = id.epoch() > 1
            && self
                .issued
                .keys()
                .any(|other| other.identity() == id.identity());
        if rekey { self.master.k() } else { self.limit() }
    }

    fn bound_error(&self, id: &PartyId) -> Error {
        let k = self.master.k();
        Error::CollusionBound {
            k,
            margin: margin(k),
            limit: self.limit_for(id),
            issued: self.count(),
        }
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

    /// Issues (or re-issues, identically) the personal key of `id`, refusing a new identifier
    /// past the limit with [`Error::CollusionBound`].
    pub fn issue(&mut self, id: &PartyId) -> Result<PersonalKey> {
        if !self.issued.contains_key(id) && self.count() >= self.limit_for(id) {
            return Err(self.bound_error(id));
        }
        self.register(id)?;
        Ok(self.master.personal_key(id))
    }

    /// Issues the Blom half of a hybrid key: past the limit it still issues, and the second
    /// value says the Blom half is then past its bound (the key rests on SOK alone).
    pub fn issue_in_hybrid(&mut self, id: &PartyId) -> Result<(PersonalKey, bool)> {
        self.register(id)?;
        Ok((self.master.personal_key(id), self.past_bound()))
    }

    /// Whether `id` collides with an issued identifier (test hook for the refusal path).
    #[doc(hidden)]
    pub fn force_element(&mut self, lane: usize, element: u128, holder: PartyId) {
        self.by_element.insert((lane, element), holder);
    }
}

/// The margin a center keeps below k: k/8, at least 1 (and at most k).
pub fn margin(k: u32) -> u32 {
    (k / 8).max(1).min(k)
}

/// The most new identities a center of this k issues: k − [`margin`].
pub fn limit(k: u32) -> u32 {
    k - margin(k)
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

    #[test]
    fn the_bound_is_enforced_with_a_margin_kept_for_new_epochs() {
        let master = Master::generate(8, &mut SeededRandom::new(b"b")).expect("master");
        let mut center = KeyCenter::new(master, []).expect("center");
        let id = |n: usize| PartyId::parse(&format!("cardholder:c{n}")).expect("id");
        assert_eq!((margin(8), center.limit(), center.remaining()), (1, 7, 7));
        for n in 0..7 {
            center.issue(&id(n)).expect("within the limit");
        }
        assert_eq!(center.remaining(), 0);
        assert_eq!(
            center.issue(&id(7)).err(),
            Some(Error::CollusionBound {
                k: 8,
                margin: 1,
                limit: 7,
                issued: 7
            })
        );
        // Issuing a registered identifier again counts nothing.
        center.issue(&id(3)).expect("again");
        // A new epoch of a registered identity may use the margin, up to k ...
        center
            .issue(&id(3).with_epoch(2).expect("e2"))
            .expect("re-key");
        assert_eq!(center.count(), 8);
        // ... and never past k: the revoked epoch 1 still counts.
        assert!(matches!(
            center.issue(&id(4).with_epoch(2).expect("e2")),
            Err(Error::CollusionBound { limit: 8, .. })
        ));
        // A hybrid center goes on, and says its Blom half is past the bound.
        let (_, past) = center.issue_in_hybrid(&id(9)).expect("hybrid");
        assert!(past && center.past_bound());
        assert_eq!(margin(1024), 128);
        assert_eq!(limit(1), 0);
    }
}
