//! Constant-time arithmetic in GF(2^127 − 1), the Mersenne prime field of Blom's lanes.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// The field prime p = 2^127 − 1.
pub const P: u128 = (1u128 << 127) - 1;

/// A field element, always kept in canonical form (0 ≤ value < p).
///
/// Every operation on a `Fe` runs in time independent of the values: no branch or memory
/// access depends on secret data (the 64×64→128 multiplications are constant time on the
/// targets we support).
#[derive(Clone, Copy, Default, Zeroize)]
pub struct Fe(u128);

impl core::fmt::Debug for Fe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Fe(<redacted>)")
    }
}

impl Fe {
    /// Zero.
    pub const ZERO: Fe = Fe(0);
    /// One.
    pub const ONE: Fe = Fe(1);

    /// The element for `v mod p` (any `u128` is accepted).
    pub fn new(v: u128) -> Fe {
        reduce_once((v & P) + (v >> 127))
    }

    /// Decodes 16 little-endian bytes, refusing values ≥ p (non-canonical encodings).
    pub fn from_bytes(b: &[u8; 16]) -> Option<Fe> {
        let v = u128::from_le_bytes(*b);
        (v < P).then_some(Fe(v))
    }

    /// The canonical 16-byte little-endian encoding.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The canonical integer value (for tests and public values only).
    pub fn value(self) -> u128 {
        self.0
    }

    /// Product (also `*`).
    #[inline]
    fn product(self, o: Fe) -> Fe {
        reduce_once(fold(mul_wide(self.0, o.0)))
    }

    /// The raw value, for the lazy-reduction loops of this crate.
    #[inline(always)]
    pub(crate) fn raw(self) -> u128 {
        self.0
    }

    /// The element of a lazily reduced value v ≤ 2^127.
    #[inline(always)]
    pub(crate) fn from_lazy(v: u128) -> Fe {
        reduce_once(v)
    }

    /// `self^e` by square-and-multiply over a public exponent.
    pub fn pow(self, mut e: u128) -> Fe {
        let mut base = self;
        let mut acc = Fe::ONE;
        // The exponent is public; the loop shape depends on it only.
        for _ in 0..128 {
            let bit = Choice::from((e & 1) as u8);
            acc = Fe::conditional_select(&acc, &(acc * base), bit);
            base = base * base;
            e >>= 1;
        }
        acc
    }

    /// The multiplicative inverse (Fermat); zero maps to zero.
    pub fn invert(self) -> Fe {
        self.pow(P - 2)
    }

    /// Whether the element is zero, in constant time.
    pub fn is_zero(self) -> Choice {
        self.0.ct_eq(&0)
    }
}

impl core::ops::Add for Fe {
    type Output = Fe;
    #[inline]
    fn add(self, o: Fe) -> Fe {
        // Both < 2^127, so the sum fits in u128.
        reduce_once(self.0 + o.0)
    }
}

impl core::ops::Sub for Fe {
    type Output = Fe;
    #[inline]
    fn sub(self, o: Fe) -> Fe {
        reduce_once(self.0 + (P - o.0))
    }
}

impl core::ops::Neg for Fe {
    type Output = Fe;
    fn neg(self) -> Fe {
        Fe::ZERO - self
    }
}

impl core::ops::Mul for Fe {
    type Output = Fe;
    #[inline]
    fn mul(self, o: Fe) -> Fe {
        self.product(o)
    }
}

/// a·b for a, b ≤ 2^127, folded once: a value < 2^128 congruent to a·b (mod p).
#[inline(always)]
pub(crate) fn mul_wide(a: u128, b: u128) -> u128 {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let lo = a0 * b0;
    let mid = a0 * b1 + a1 * b0; // each ≤ 2^127, sum < 2^128
    let hi = a1 * b1; // ≤ 2^126
    let (lo, carry) = lo.overflowing_add(mid << 64);
    let hi = hi + (mid >> 64) + carry as u128; // product ≤ 2^254, so hi ≤ 2^126
    // 2^128 ≡ 2 (mod p) and 2^127 ≡ 1 (mod p).
    (lo & P) + (lo >> 127) + (hi << 1)
}

/// Folds any v < 2^128 to a congruent value ≤ 2^127 (not yet canonical).
#[inline(always)]
pub(crate) fn fold(v: u128) -> u128 {
    (v & P) + (v >> 127)
}

/// Σ aᵢ·bᵢ with one fold per product and a single reduction at the end: the products are
/// independent, so the loop runs at the multiplier's throughput rather than its latency.
pub fn dot(a: &[Fe], b: &[Fe]) -> Fe {
    let (mut acc, mut carries) = (0u128, 0u128);
    for (x, y) in a.iter().zip(b) {
        let (v, c) = acc.overflowing_add(mul_wide(x.0, y.0));
        acc = v;
        carries += c as u128;
    }
    // acc + carries·2^128 ≡ acc + 2·carries (mod p); carries ≤ len < 2^64.
    let t = fold(acc) + 2 * carries;
    reduce_once(fold(t))
}

/// Maps [0, 2p] into [0, p) without branching.
#[inline]
fn reduce_once(v: u128) -> Fe {
    let (d, borrow) = v.overflowing_sub(P);
    // borrow = 1 ⇒ v < p ⇒ keep v.
    let mask = (borrow as u128).wrapping_neg();
    Fe((v & mask) | (d & !mask))
}

impl ConditionallySelectable for Fe {
    fn conditional_select(a: &Fe, b: &Fe, choice: Choice) -> Fe {
        Fe(u128::conditional_select(&a.0, &b.0, choice))
    }
}

impl ConstantTimeEq for Fe {
    fn ct_eq(&self, other: &Fe) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Fe {
    fn eq(&self, other: &Fe) -> bool {
        self.ct_eq(other).into()
    }
}
impl Eq for Fe {}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_mul(a: u128, b: u128) -> u128 {
        // Double-and-add mod p, the obvious reference.
        let mut acc = 0u128;
        let mut x = a % P;
        let mut y = b % P;
        while y > 0 {
            if y & 1 == 1 {
                acc = (acc + x) % P;
            }
            x = (x + x) % P;
            y >>= 1;
        }
        acc
    }

    #[test]
    fn arithmetic_matches_reference() {
        let samples = [
            0u128,
            1,
            2,
            P - 1,
            P - 2,
            1 << 126,
            (1 << 127) - 2,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            0x7fff_0000_ffff_0000_ffff_0000_ffff_0000,
            u64::MAX as u128,
        ];
        for &a in &samples {
            for &b in &samples {
                let (fa, fb) = (Fe::new(a), Fe::new(b));
                assert_eq!((fa * fb).value(), slow_mul(a, b), "{a} * {b}");
                assert_eq!((fa + fb).value(), (a % P + b % P) % P);
                assert_eq!(fa - fb + fb, fa);
            }
        }
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let xs: Vec<Fe> = (0..300u128).map(|i| Fe::new(P - 1 - i * 7919)).collect();
        let ys: Vec<Fe> = (0..300u128).map(|i| Fe::new(P - 3 - i * 104_729)).collect();
        let plain = xs
            .iter()
            .zip(&ys)
            .fold(Fe::ZERO, |acc, (&x, &y)| acc + x * y);
        assert_eq!(dot(&xs, &ys), plain);
        assert_eq!(dot(&[], &[]), Fe::ZERO);
    }

    #[test]
    fn new_reduces_every_u128() {
        assert_eq!(Fe::new(P).value(), 0);
        assert_eq!(Fe::new(u128::MAX).value(), u128::MAX % P);
        assert_eq!(Fe::new(P + 5).value(), 5);
    }

    #[test]
    fn inverse() {
        for v in [1u128, 2, 12345, P - 1, 0x5555_5555_5555_5555_5555] {
            let x = Fe::new(v);
            assert_eq!(x * x.invert(), Fe::ONE);
        }
        assert_eq!(Fe::ZERO.invert(), Fe::ZERO);
    }

    #[test]
    fn decoding_refuses_non_canonical() {
        assert!(Fe::from_bytes(&P.to_le_bytes()).is_none());
        assert!(Fe::from_bytes(&u128::MAX.to_le_bytes()).is_none());
        assert_eq!(
            Fe::from_bytes(&(P - 1).to_le_bytes()).map(Fe::value),
            Some(P - 1)
        );
    }
}
