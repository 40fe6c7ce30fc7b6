//! A bounded, thread-safe cache of derived pairwise keys in front of any key source, so a
//! repeat counterparty costs a lookup instead of a pairing or a Blom evaluation.
//!
//! Entries are evicted least-recently-used first and wiped when evicted, cleared or dropped.
//! The cache holds secrets in memory for as long as they stay in it; size it to the number of
//! counterparties a service actually meets again (merchants: their regular customers; issuers
//! and carriers: their merchants and cardholders).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::Result;
use crate::id::PartyId;
use crate::keysource::{KeySource, PairwiseKey, Scheme, pairwise_key};

/// The default number of counterparties kept.
pub const DEFAULT_CAPACITY: usize = 4096;

/// One cached counterparty: the raw shared secret and the pairwise key derived from it.
struct Entry {
    ikm: Zeroizing<Vec<u8>>,
    key: PairwiseKey,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    map: HashMap<PartyId, Entry>,
    /// Last use → peer; the first entry is the least recently used.
    order: BTreeMap<u64, PartyId>,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, peer: &PartyId) -> Option<&Entry> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(peer)?;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, peer.clone());
        Some(entry)
    }

    fn insert(&mut self, peer: PartyId, ikm: Zeroizing<Vec<u8>>, key: PairwiseKey, cap: usize) {
        if let Some(old) = self.map.remove(&peer) {
            self.order.remove(&old.tick);
        }
        while self.map.len() >= cap {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            // Dropping the entry wipes its secret and key.
            self.map.remove(&victim);
        }
        self.tick += 1;
        self.order.insert(self.tick, peer.clone());
        self.map.insert(
            peer,
            Entry {
                ikm,
                key,
                tick: self.tick,
            },
        );
    }
}

/// Hit and miss counts of a [`CachedKeys`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that derived the key.
    pub misses: u64,
    /// Counterparties currently cached.
    pub len: usize,
    /// The most counterparties kept.
    pub capacity: usize,
}

/// A key source with a bounded LRU cache of pairwise keys. It is itself a [`KeySource`]
/// (with the same owner and scheme, so keys are unchanged), so it can stand wherever
/// `&dyn KeySource` is taken, e.g. [`crate::sealed::seal`]; [`CachedKeys::pairwise`] gives
/// the derived key directly, e.g. for [`crate::sealed::ForwardedPart::open_with_key`].
///
/// Two threads missing on one peer at once both derive it; the result is the same.
pub struct CachedKeys<S> {
    source: S,
    capacity: usize,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<S: KeySource> CachedKeys<S> {
    /// A cache of at most `capacity` counterparties in front of `source`; 0 disables caching.
    pub fn new(source: S, capacity: usize) -> CachedKeys<S> {
        CachedKeys {
            source,
            capacity,
            lru: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The key source behind the cache.
    pub fn source(&self) -> &S {
        &self.source
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // A panic while holding the lock cannot leave a half-written entry behind (every
        // update is a whole insert or remove), so a poisoned cache is still consistent.
        self.lru
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Looks `peer` up; on a miss derives its secret and key, outside the lock.
    fn entry<T>(&self, peer: &PartyId, pick: impl Fn(&Entry) -> T) -> Result<T> {
        if self.capacity > 0
            && let Some(found) = self.lock().touch(peer).map(&pick)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let ikm = self.source.shared_secret(peer)?;
        let key = pairwise_key(
            &Fixed {
                owner: self.source.owner(),
                scheme: self.source.scheme(),
                ikm: &ikm,
            },
            peer,
        )?;
        let entry = Entry { ikm, key, tick: 0 };
        let out = pick(&entry);
        if self.capacity > 0 {
            let Entry { ikm, key, .. } = entry;
            self.lock().insert(peer.clone(), ikm, key, self.capacity);
        }
        Ok(out)
    }

    /// The pairwise key with `peer` ([`pairwise_key`]), from the cache when present.
    pub fn pairwise(&self, peer: &PartyId) -> Result<PairwiseKey> {
        self.entry(peer, |e| e.key.clone())
    }

    /// Hit and miss counts and the current size.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            len: self.lock().map.len(),
            capacity: self.capacity,
        }
    }

    /// Forgets (and wipes) every cached key.
    pub fn clear(&self) {
        let mut lru = self.lock();
        lru.map.clear();
        lru.order.clear();
    }

    /// Forgets (and wipes) the key of one peer, e.g. after its keys were re-issued.
    pub fn forget(&self, peer: &PartyId) {
        let mut lru = self.lock();
        if let Some(e) = lru.map.remove(peer) {
            lru.order.remove(&e.tick);
        }
    }
}

impl<S: KeySource> KeySource for CachedKeys<S> {
    fn owner(&self) -> &PartyId {
        self.source.owner()
    }
    fn scheme(&self) -> Scheme {
        self.source.scheme()
    }
    fn shared_secret(&self, peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        // The owner's secret with itself (the stateless responder's, PROTOCOL.md §12.5) has
        // no pairwise key to cache.
        if peer == self.source.owner() {
            return self.source.shared_secret(peer);
        }
        self.entry(peer, |e| e.ikm.clone())
    }
}

impl<S> core::fmt::Debug for CachedKeys<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "CachedKeys {{ capacity: {}, keys: <redacted> }}",
            self.capacity
        )
    }
}

/// A shared secret already computed, presented as a key source so that [`pairwise_key`]
/// derives from it exactly as from the real source.
struct Fixed<'a> {
    owner: &'a PartyId,
    scheme: Scheme,
    ikm: &'a [u8],
}

impl KeySource for Fixed<'_> {
    fn owner(&self) -> &PartyId {
        self.owner
    }
    fn scheme(&self) -> Scheme {
        self.scheme
    }
    fn shared_secret(&self, _peer: &PartyId) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.ikm.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blom::Master;
    use crate::rand::SeededRandom;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn caches_evicts_least_recent_and_keeps_keys_unchanged() {
        let master = Master::generate(4, &mut SeededRandom::new(b"cache")).expect("master");
        let me = id("merchant:m");
        let cache = CachedKeys::new(master.personal_key(&me), 2);
        let plain = master.personal_key(&me);
        let peers = [id("cardholder:a"), id("cardholder:b"), id("cardholder:c")];
        for p in &peers[..2] {
            assert_eq!(
                cache.pairwise(p).expect("key"),
                pairwise_key(&plain, p).expect("key")
            );
        }
        assert_eq!(cache.stats().misses, 2);
        // Touch a, so b is the least recently used; adding c evicts b.
        cache.pairwise(&peers[0]).expect("key");
        assert_eq!(cache.stats().hits, 1);
        cache.pairwise(&peers[2]).expect("key");
        assert_eq!(cache.stats().len, 2);
        cache.pairwise(&peers[0]).expect("key");
        assert_eq!(cache.stats().hits, 2, "a stayed");
        cache.pairwise(&peers[1]).expect("key");
        assert_eq!(cache.stats().misses, 4, "b was evicted");
        // Through the KeySource interface the key is the same.
        assert_eq!(
            pairwise_key(&cache, &peers[2]).expect("key"),
            pairwise_key(&plain, &peers[2]).expect("key")
        );
        assert!(cache.pairwise(&me).is_err(), "no key with oneself");
        cache.clear();
        assert_eq!(cache.stats().len, 0);
        assert!(!format!("{cache:?}").contains("ikm"));
    }

    #[test]
    fn zero_capacity_never_stores() {
        let master = Master::generate(2, &mut SeededRandom::new(b"z")).expect("master");
        let cache = CachedKeys::new(master.personal_key(&id("issuer:i")), 0);
        cache.pairwise(&id("cardholder:a")).expect("key");
        cache.pairwise(&id("cardholder:a")).expect("key");
        assert_eq!(cache.stats().hits, 0);
        assert_eq!(cache.stats().len, 0);
    }
}
