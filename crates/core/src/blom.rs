//! Blom's key predistribution scheme (claim 4) over independent lanes of GF(2^127 − 1).
//!
//! The master secret is, per lane, a random symmetric (k+1)×(k+1) matrix D. An identifier
//! maps to a field element s per lane; its public column is g = (1, s, …, s^k) and its secret
//! personal key is a = D·g. Two parties A and B share a(A)·g(B) = g(A)ᵀ·D·g(B) = a(B)·g(A).
//! Two lanes give 254 bits of key entropy; any k+1 personal keys reveal D (see
//! [`crate::collusion`]), k or fewer say nothing about other pairs' keys.

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::field::{Fe, P, dot, fold, mul_wide};
use crate::id::PartyId;
use crate::rand::Randomness;
use crate::{Error, Result};

/// Independent Blom instances per key; 2 × 127 = 254 bits of pairwise key entropy.
pub const LANES: usize = 2;

/// The default collusion bound k: up to 1024 colluding key holders learn nothing about
/// other pairs' keys. A personal key is then 32.8 kB and the master 16.8 MB.
pub const DEFAULT_K: u32 = 1024;

/// The largest k accepted (the master is then ≈ 1 GB).
pub const MAX_K: u32 = 8192;

/// The domain-separation label of the identifier-to-field hash.
pub const ID_TO_FIELD_LABEL: &[u8] = b"warifu/v1/blom/id-to-field";

/// Maps an identifier to its field element for `lane`: the first 16 bytes, little-endian, of
/// `SHA-256(label ‖ u8(lane) ‖ u8(counter) ‖ id)` with the top bit cleared, for the smallest
/// counter giving a value in 1..p. Never zero.
pub fn id_to_field(id: &PartyId, lane: usize) -> Fe {
    for counter in 0..=u8::MAX {
        let mut h = Sha256::new();
        h.update(ID_TO_FIELD_LABEL);
        h.update([lane as u8, counter]);
        h.update(id.as_str().as_bytes());
        let digest = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        let v = u128::from_le_bytes(b) & P;
        if v != 0 && v != P {
            return Fe::new(v);
        }
    }
    // Probability 2^-32000: 256 consecutive SHA-256 outputs in {0, p}.
    unreachable!("SHA-256 produced 256 degenerate outputs")
}

/// The public Vandermonde column g(s) = (1, s, s², …, s^k).
pub fn vandermonde(s: Fe, k: u32) -> Vec<Fe> {
    let mut g = Vec::with_capacity(k as usize + 1);
    let mut x = Fe::ONE;
    for _ in 0..=k {
        g.push(x);
        x = x * s;
    }
    g
}

fn check_k(k: u32) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(Error::ParameterMismatch(format!(
            "k must be in 1..={MAX_K}, got {k}"
        )));
    }
    Ok(())
}

/// The key center's master secret: one symmetric (k+1)×(k+1) matrix per lane, kept in full.
pub struct Master {
    k: u32,
    /// Row-major (k+1)², symmetric.
    lanes: [Vec<Fe>; LANES],
}

impl Master {
    /// Draws a fresh master from `rng` (the OS CSPRNG in production), by rejection sampling so
    /// every entry is uniform in GF(p).
    pub fn generate(k: u32, rng: &mut dyn Randomness) -> Result<Master> {
        check_k(k)?;
        let n = k as usize + 1;
        let mut upper = Vec::with_capacity(LANES * n * (n + 1) / 2);
        for _ in 0..LANES * n * (n + 1) / 2 {
            upper.push(random_fe(rng)?);
        }
        let master = Master::from_upper(k, &upper);
        upper.zeroize();
        master
    }

    /// Builds a master from its upper triangles, lane by lane, row by row (i ≤ j), the order
    /// used by the key file.
    pub fn from_upper(k: u32, upper: &[Fe]) -> Result<Master> {
        check_k(k)?;
        let n = k as usize + 1;
        let per_lane = n * (n + 1) / 2;
        if upper.len() != LANES * per_lane {
            return Err(Error::malformed("master", "wrong number of entries for k"));
        }
        let mut entries = upper.iter();
        let lanes = core::array::from_fn(|_| {
            let mut d = vec![Fe::ZERO; n * n];
            for i in 0..n {
                for j in i..n {
                    let v = *entries.next().unwrap_or(&Fe::ZERO);
                    d[i * n + j] = v;
                    d[j * n + i] = v;
                }
            }
            d
        });
        Ok(Master { k, lanes })
    }

    /// The upper triangles in key-file order (see [`Master::from_upper`]).
    pub fn upper(&self) -> Vec<Fe> {
        let n = self.k as usize + 1;
        let mut out = Vec::with_capacity(LANES * n * (n + 1) / 2);
        for d in &self.lanes {
            for i in 0..n {
                out.extend_from_slice(&d[i * n + i..i * n + n]);
            }
        }
        out
    }

    /// The collusion bound k.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Entry (i, j) of `lane`.
    pub fn entry(&self, lane: usize, i: usize, j: usize) -> Fe {
        let n = self.k as usize + 1;
        self.lanes[lane][i * n + j]
    }

    /// Issues the secret personal key of `id`: a = D·g(id) per lane, (k+1)² multiplications
    /// as one lazily reduced dot product per row.
    pub fn personal_key(&self, id: &PartyId) -> PersonalKey {
        let n = self.k as usize + 1;
        let lanes = core::array::from_fn(|lane| {
            let g = vandermonde(id_to_field(id, lane), self.k);
            self.lanes[lane]
                .chunks_exact(n)
                .map(|row| dot(row, &g))
                .collect()
        });
        PersonalKey {
            id: id.clone(),
            k: self.k,
            lanes,
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.lanes.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl core::fmt::Debug for Master {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Master {{ k: {}, entries: <redacted> }}", self.k)
    }
}

fn random_fe(rng: &mut dyn Randomness) -> Result<Fe> {
    loop {
        let mut b = [0u8; 16];
        rng.fill(&mut b)?;
        b[15] &= 0x7f;
        let fe = Fe::from_bytes(&b);
        b.zeroize();
        if let Some(fe) = fe {
            return Ok(fe);
        }
    }
}

/// Σ cᵢ·sᵢⁱ for every lane at once by Horner's rule, split into even and odd coefficients
/// (f(s) = E(s²) + s·O(s²)) so that four independent chains keep the multiplier busy, with
/// lazy reduction inside the loop. Branch-free; the loop bounds depend only on k.
fn horner_lanes(lanes: &[Vec<Fe>; LANES], s: [Fe; LANES]) -> [Fe; LANES] {
    let s2 = s.map(|x| (x * x).raw());
    let mut acc = [[0u128; 2]; LANES];
    let mut chunks = lanes.each_ref().map(|l| l.chunks(2).rev());
    while let (Some(c0), Some(c1)) = (chunks[0].next(), chunks[1].next()) {
        for (lane, c) in [c0, c1].into_iter().enumerate() {
            for (r, a) in acc[lane].iter_mut().enumerate() {
                // The coefficient is canonical (< p), the folded product ≤ 2^127: no overflow.
                let coeff = c.get(r).map_or(0, |f| f.raw());
                *a = fold(fold(mul_wide(*a, s2[lane])) + coeff);
            }
        }
    }
    core::array::from_fn(|lane| Fe::from_lazy(acc[lane][0]) + Fe::from_lazy(acc[lane][1]) * s[lane])
}

/// A party's secret personal key: a = D·g(id), k+1 elements per lane.
pub struct PersonalKey {
    id: PartyId,
    k: u32,
    lanes: [Vec<Fe>; LANES],
}

impl PersonalKey {
    /// Rebuilds a key from its parts (as read from a key file).
    pub fn from_parts(id: PartyId, k: u32, lanes: [Vec<Fe>; LANES]) -> Result<PersonalKey> {
        check_k(k)?;
        if lanes.iter().any(|l| l.len() != k as usize + 1) {
            return Err(Error::malformed(
                "personal key",
                "wrong number of elements for k",
            ));
        }
        Ok(PersonalKey { id, k, lanes })
    }

    /// The holder's identifier.
    pub fn id(&self) -> &PartyId {
        &self.id
    }

    /// The collusion bound k of the master that issued it.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// The key's elements for `lane`.
    pub fn lane(&self, lane: usize) -> &[Fe] {
        &self.lanes[lane]
    }

    /// The raw shared elements with `peer`, a(self)·g(peer) per lane: k multiplications each.
    pub fn raw_shared(&self, peer: &PartyId) -> [Fe; LANES] {
        horner_lanes(
            &self.lanes,
            core::array::from_fn(|lane| id_to_field(peer, lane)),
        )
    }

    /// The raw shared elements as bytes: lane 0 then lane 1, 16 bytes little-endian each.
    pub fn raw_shared_bytes(&self, peer: &PartyId) -> [u8; 16 * LANES] {
        let mut out = [0u8; 16 * LANES];
        for (chunk, fe) in out.chunks_exact_mut(16).zip(self.raw_shared(peer)) {
            chunk.copy_from_slice(&fe.to_bytes());
        }
        out
    }
}

impl Drop for PersonalKey {
    fn drop(&mut self) {
        self.lanes.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl core::fmt::Debug for PersonalKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PersonalKey {{ id: {}, k: {}, elements: <redacted> }}",
            self.id, self.k
        )
    }
}

/// Sizes and costs of a deployment with collusion bound `k`, for `keycenter show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The collusion bound.
    pub k: u32,
    /// Bytes of one personal key's elements.
    pub personal_key_bytes: usize,
    /// Bytes of the master's upper triangles.
    pub master_bytes: usize,
    /// Field multiplications to issue one personal key.
    pub issue_mults: u64,
    /// Field multiplications to derive one raw pairwise key.
    pub derive_mults: u64,
}

impl Sizing {
    /// The figures for `k`.
    pub fn for_k(k: u32) -> Sizing {
        let n = k as usize + 1;
        Sizing {
            k,
            personal_key_bytes: LANES * n * 16,
            master_bytes: LANES * n * (n + 1) / 2 * 16,
            issue_mults: (LANES * n * n) as u64,
            derive_mults: (LANES * (n + k as usize)) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::SeededRandom;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("valid id")
    }

    #[test]
    fn pairwise_keys_agree_and_differ() {
        let master = Master::generate(8, &mut SeededRandom::new(b"t")).expect("master");
        let ids = ["cardholder:a", "merchant:m", "issuer:i", "carrier:c"].map(id);
        let keys: Vec<_> = ids.iter().map(|i| master.personal_key(i)).collect();
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(keys[a].raw_shared(&ids[b]), keys[b].raw_shared(&ids[a]));
            }
        }
        assert_ne!(keys[0].raw_shared(&ids[1]), keys[0].raw_shared(&ids[2]));
    }

    #[test]
    fn fast_evaluation_matches_the_definition() {
        for k in [1, 2, 7, 8, 64] {
            let master = Master::generate(k, &mut SeededRandom::new(b"d")).expect("master");
            let (a, b) = (id("merchant:m"), id("issuer:i"));
            let key = master.personal_key(&a);
            for lane in 0..LANES {
                // a(A) = D·g(A), entry by entry.
                let g = vandermonde(id_to_field(&a, lane), k);
                for (i, &ai) in key.lane(lane).iter().enumerate() {
                    let row = (0..=k as usize)
                        .fold(Fe::ZERO, |acc, j| acc + master.entry(lane, i, j) * g[j]);
                    assert_eq!(ai, row);
                }
                // K = a(A)·g(B), term by term.
                let gb = vandermonde(id_to_field(&b, lane), k);
                let want = key
                    .lane(lane)
                    .iter()
                    .zip(&gb)
                    .fold(Fe::ZERO, |acc, (&x, &y)| acc + x * y);
                assert_eq!(key.raw_shared(&b)[lane], want);
            }
        }
    }

    #[test]
    fn upper_round_trips() {
        let master = Master::generate(5, &mut SeededRandom::new(b"u")).expect("master");
        let again = Master::from_upper(5, &master.upper()).expect("rebuild");
        let x = id("merchant:m");
        assert_eq!(
            master.personal_key(&x).lane(1),
            again.personal_key(&x).lane(1)
        );
        assert!(Master::from_upper(5, &master.upper()[1..]).is_err());
        assert!(Master::generate(0, &mut SeededRandom::new(b"u")).is_err());
    }

    #[test]
    fn id_to_field_is_lane_separated_and_nonzero() {
        let x = id("issuer:bank.example");
        assert_ne!(id_to_field(&x, 0), id_to_field(&x, 1));
        assert!(!bool::from(id_to_field(&x, 0).is_zero()));
    }
}
