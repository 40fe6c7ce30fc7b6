//! Blom's collusion bound, made concrete: k+1 personal keys recover the master; k do not.
//!
//! This is attack code for tests and documentation. It is not constant time and must never
//! run on a key center's secrets.

use crate::blom::{LANES, Master, PersonalKey, id_to_field, vandermonde};
use crate::field::Fe;
use crate::id::PartyId;
use crate::{Error, Result};

/// Recovers the master from k+1 personal keys of distinct identifiers: per lane, A = D·G
/// with G the (invertible) Vandermonde matrix of the colluders, so Gᵀ·D = Aᵀ is solved for D.
pub fn recover_master(keys: &[PersonalKey]) -> Result<Master> {
    let k = keys
        .first()
        .map(PersonalKey::k)
        .ok_or_else(|| mismatch("no keys"))?;
    let n = k as usize + 1;
    if keys.len() != n || keys.iter().any(|key| key.k() != k) {
        return Err(mismatch("recovery needs exactly k+1 keys of one master"));
    }
    let mut upper = Vec::with_capacity(LANES * n * (n + 1) / 2);
    for lane in 0..LANES {
        // Row t of the system: g(id_t)ᵀ · D = a(id_t)ᵀ.
        let lhs: Vec<Vec<Fe>> = keys
            .iter()
            .map(|key| vandermonde(id_to_field(key.id(), lane), k))
            .collect();
        let rhs: Vec<Vec<Fe>> = keys.iter().map(|key| key.lane(lane).to_vec()).collect();
        let d = solve(lhs, rhs).ok_or_else(|| mismatch("identifiers are not distinct"))?;
        for (i, row) in d.iter().enumerate() {
            upper.extend_from_slice(&row[i..]);
        }
    }
    Master::from_upper(k, &upper)
}

/// A second master, different from `master`, that gives every identifier in `colluders`
/// (at most k of them) exactly the same personal key: D' = D + c·h·hᵀ with h ≠ 0 orthogonal
/// to every colluder's column. Its existence is why k keys cannot determine the master; for a
/// pair (u, v) outside the coalition the raw key moves by c·(hᵀg_u)(hᵀg_v), so every value of
/// it stays possible.
pub fn indistinguishable_master(master: &Master, colluders: &[PartyId], c: Fe) -> Result<Master> {
    let k = master.k();
    let n = k as usize + 1;
    if colluders.len() > k as usize {
        return Err(mismatch("more than k colluders determine the master"));
    }
    let mut upper = Vec::with_capacity(LANES * n * (n + 1) / 2);
    for lane in 0..LANES {
        let rows: Vec<Vec<Fe>> = colluders
            .iter()
            .map(|id| vandermonde(id_to_field(id, lane), k))
            .collect();
        let h = null_vector(rows, n).ok_or_else(|| mismatch("no null vector"))?;
        for i in 0..n {
            for j in i..n {
                upper.push(master.entry(lane, i, j) + c * h[i] * h[j]);
            }
        }
    }
    Master::from_upper(k, &upper)
}

fn mismatch(why: &str) -> Error {
    Error::ParameterMismatch(why.to_owned())
}

/// Solves L·X = R for square L by Gauss–Jordan elimination; `None` if L is singular.
fn solve(mut l: Vec<Vec<Fe>>, mut r: Vec<Vec<Fe>>) -> Option<Vec<Vec<Fe>>> {
    let n = l.len();
    for col in 0..n {
        let pivot = (col..n).find(|&row| l[row][col] != Fe::ZERO)?;
        l.swap(col, pivot);
        r.swap(col, pivot);
        let inv = l[col][col].invert();
        l[col].iter_mut().for_each(|x| *x = *x * inv);
        r[col].iter_mut().for_each(|x| *x = *x * inv);
        let (pl, pr) = (l[col].clone(), r[col].clone());
        for row in (0..n).filter(|&row| row != col) {
            let f = l[row][col];
            subtract_scaled(&mut l[row], &pl, f);
            subtract_scaled(&mut r[row], &pr, f);
        }
    }
    Some(r)
}

/// row ← row − f·pivot.
fn subtract_scaled(row: &mut [Fe], pivot: &[Fe], f: Fe) {
    for (x, &p) in row.iter_mut().zip(pivot) {
        *x = *x - f * p;
    }
}

/// A non-zero h of length `n` with every row of `rows` orthogonal to it (rows.len() < n).
fn null_vector(mut rows: Vec<Vec<Fe>>, n: usize) -> Option<Vec<Fe>> {
    // Reduced row echelon form, then set the first free variable to 1.
    let mut pivots = Vec::new();
    let mut r = 0;
    for col in 0..n {
        if r == rows.len() {
            break;
        }
        let Some(p) = (r..rows.len()).find(|&i| rows[i][col] != Fe::ZERO) else {
            continue;
        };
        rows.swap(r, p);
        let inv = rows[r][col].invert();
        rows[r].iter_mut().for_each(|x| *x = *x * inv);
        let pivot = rows[r].clone();
        for i in (0..rows.len()).filter(|&i| i != r) {
            let f = rows[i][col];
            subtract_scaled(&mut rows[i], &pivot, f);
        }
        pivots.push(col);
        r += 1;
    }
    let free = (0..n).find(|c| !pivots.contains(c))?;
    let mut h = vec![Fe::ZERO; n];
    h[free] = Fe::ONE;
    for (row, &pc) in pivots.iter().enumerate() {
        h[pc] = -rows[row][free];
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::SeededRandom;

    fn ids(prefix: &str, n: usize) -> Vec<PartyId> {
        (0..n)
            .map(|i| PartyId::parse(&format!("cardholder:{prefix}{i}")).expect("id"))
            .collect()
    }

    #[test]
    fn k_plus_one_keys_recover_the_master_and_every_pairwise_key() {
        let k = 12;
        let master = Master::generate(k, &mut SeededRandom::new(b"collude")).expect("master");
        let coalition = ids("c", k as usize + 1);
        let keys: Vec<_> = coalition.iter().map(|id| master.personal_key(id)).collect();
        let stolen = recover_master(&keys).expect("k+1 keys recover D");
        assert_eq!(stolen.upper(), master.upper());
        // The coalition now computes the key of two honest parties it never met.
        let (m, i) = (
            PartyId::parse("merchant:shop").expect("id"),
            PartyId::parse("issuer:bank").expect("id"),
        );
        assert_eq!(
            stolen.personal_key(&m).raw_shared(&i),
            master.personal_key(&m).raw_shared(&i)
        );
    }

    #[test]
    fn k_keys_do_not_determine_the_master_or_other_pairs_keys() {
        let k = 12;
        let master = Master::generate(k, &mut SeededRandom::new(b"bound")).expect("master");
        let coalition = ids("c", k as usize);
        let (m, i) = (
            PartyId::parse("merchant:shop").expect("id"),
            PartyId::parse("issuer:bank").expect("id"),
        );
        let honest = master.personal_key(&m).raw_shared(&i);
        let mut seen = std::collections::BTreeSet::new();
        for c in 1..=5u128 {
            let other = indistinguishable_master(&master, &coalition, Fe::new(c)).expect("exists");
            // Every colluder's key is the same under both masters …
            for id in &coalition {
                for lane in 0..LANES {
                    assert_eq!(
                        master.personal_key(id).lane(lane),
                        other.personal_key(id).lane(lane)
                    );
                }
            }
            // … yet the honest pair's key differs, and differently for each c.
            let alt = other.personal_key(&m).raw_shared(&i);
            assert_ne!(alt, honest);
            seen.insert(alt.map(Fe::value));
        }
        assert_eq!(seen.len(), 5);
        // And k keys are not enough for the recovery attack at all.
        let keys: Vec<_> = coalition.iter().map(|id| master.personal_key(id)).collect();
        assert!(recover_master(&keys).is_err());
    }
}
