//! Evidence for a proposed speed-up of Blom's derivation and issuance (not used by the core):
//! the same GF(2^127 − 1) arithmetic as `field.rs`, evaluated with more independent dependency
//! chains (lanes interleaved, an even/odd split of Horner's rule) and lazy reduction, timed
//! against the core's own functions in one interleaved run. Every variant is checked against
//! the core's result first.
//!
//! `cargo bench -p warifu-core --bench horner`

mod common;

use std::hint::black_box;

use common::timing::{Op, median, ratio, run, time};
use common::{Baselines, Fixture};
use warifu_core::PartyId;
use warifu_core::blom::{DEFAULT_K, LANES, PersonalKey, id_to_field};

const P: u128 = (1u128 << 127) - 1;

/// a·b for a, b ≤ 2^127, folded to ≤ 2^127 but not canonical (lazy reduction).
#[inline(always)]
fn mul_lazy(a: u128, b: u128) -> u128 {
    let t = mul_wide_fold(a, b);
    (t & P) + (t >> 127)
}

/// a·b for a, b ≤ 2^127, folded once: < 2^128, ≡ a·b (mod p).
#[inline(always)]
fn mul_wide_fold(a: u128, b: u128) -> u128 {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let lo = a0 * b0;
    let mid = a0 * b1 + a1 * b0;
    let hi = a1 * b1;
    let (lo, carry) = lo.overflowing_add(mid << 64);
    let hi = hi + (mid >> 64) + carry as u128;
    (lo & P) + (lo >> 127) + (hi << 1)
}

/// Maps [0, 2p] to [0, p) without branching (as `field::reduce_once`).
#[inline(always)]
fn canon(v: u128) -> u128 {
    let (d, borrow) = v.overflowing_sub(P);
    let mask = (borrow as u128).wrapping_neg();
    (v & mask) | (d & !mask)
}

/// The core's multiplication: canonical output.
#[inline(always)]
fn mul(a: u128, b: u128) -> u128 {
    canon(mul_lazy(a, b))
}

/// a + b for a, b ≤ 2^127, folded to ≤ 2^127.
#[inline(always)]
fn add_lazy(a: u128, b: u128) -> u128 {
    let v = a + b;
    (v & P) + (v >> 127)
}

/// Today's Horner, one lane after the other (one dependency chain at a time).
fn derive_sequential(lanes: &[Vec<u128>; LANES], s: [u128; LANES]) -> [u128; LANES] {
    core::array::from_fn(|l| {
        lanes[l]
            .iter()
            .rev()
            .fold(0, |acc, &c| canon(mul(acc, s[l]) + c))
    })
}

/// Both lanes in one loop (two chains), lazy reduction.
fn derive_interleaved(lanes: &[Vec<u128>; LANES], s: [u128; LANES]) -> [u128; LANES] {
    let (mut x, mut y) = (0u128, 0u128);
    for (&c0, &c1) in lanes[0].iter().rev().zip(lanes[1].iter().rev()) {
        x = add_lazy(mul_lazy(x, s[0]), c0);
        y = add_lazy(mul_lazy(y, s[1]), c1);
    }
    [canon(x), canon(y)]
}

/// Both lanes, each split into `M` interleaved Horner chains in s^M:
/// f(s) = Σ_r s^r · F_r(s^M) with F_r(y) = Σ_j c_{Mj+r} y^j. 2·M chains, lazy reduction.
fn derive_split<const M: usize>(lanes: &[Vec<u128>; LANES], s: [u128; LANES]) -> [u128; LANES] {
    let mut pows = [[1u128; M]; LANES]; // s^0 .. s^(M-1)
    let mut ym = [0u128; LANES]; // s^M
    for l in 0..LANES {
        for r in 1..M {
            pows[l][r] = mul_lazy(pows[l][r - 1], s[l]);
        }
        ym[l] = mul_lazy(pows[l][M - 1], s[l]);
    }
    let mut acc = [[0u128; M]; LANES];
    for (c0, c1) in lanes[0].chunks(M).rev().zip(lanes[1].chunks(M).rev()) {
        let [a0, a1] = &mut acc;
        for (r, (x, y)) in a0.iter_mut().zip(a1.iter_mut()).enumerate() {
            *x = add_lazy(mul_lazy(*x, ym[0]), c0.get(r).copied().unwrap_or(0));
            *y = add_lazy(mul_lazy(*y, ym[1]), c1.get(r).copied().unwrap_or(0));
        }
    }
    core::array::from_fn(|l| {
        let mut sum = acc[l][0];
        for r in 1..M {
            sum = add_lazy(sum, mul_lazy(acc[l][r], pows[l][r]));
        }
        canon(sum)
    })
}

/// g(s) = (1, s, …, s^k) with four interleaved chains, lazy (entries ≤ 2^127).
fn powers(s: u128, n: usize) -> Vec<u128> {
    let mut g = vec![0u128; n];
    let mut p = 1u128;
    for slot in g.iter_mut().take(4) {
        *slot = p;
        p = mul_lazy(p, s);
    }
    let s4 = p;
    for i in 4..n {
        g[i] = mul_lazy(g[i - 4], s4);
    }
    g
}

/// Σ aᵢ·gᵢ with one fold per product and a single reduction at the end (products are
/// independent, so the loop runs at the multiplier's throughput, not its latency).
#[inline(always)]
fn dot(a: &[u128], g: &[u128]) -> u128 {
    let (mut acc, mut carries) = (0u128, 0u64);
    for (&x, &y) in a.iter().zip(g) {
        let (v, c) = acc.overflowing_add(mul_wide_fold(x, y));
        acc = v;
        carries += c as u64;
    }
    // acc + carries·2^128 ≡ acc + 2·carries (mod p).
    let t = (acc & P) + (acc >> 127) + 2 * carries as u128;
    canon((t & P) + (t >> 127))
}

/// Issuance today: Horner per row, one row after the other.
fn issue_sequential(d: &[Vec<u128>; LANES], n: usize, s: [u128; LANES]) -> [Vec<u128>; LANES] {
    core::array::from_fn(|l| {
        d[l].chunks_exact(n)
            .map(|row| {
                row.iter()
                    .rev()
                    .fold(0, |acc, &c| canon(mul(acc, s[l]) + c))
            })
            .collect()
    })
}

/// Issuance as D·g: the Vandermonde column once, then one lazy dot product per row.
fn issue_dot(d: &[Vec<u128>; LANES], n: usize, s: [u128; LANES]) -> [Vec<u128>; LANES] {
    core::array::from_fn(|l| {
        let g = powers(s[l], n);
        d[l].chunks_exact(n).map(|row| dot(row, &g)).collect()
    })
}

/// Derivation as a(self)·g(peer): powers in four chains, then a lazy dot product.
fn derive_dot(lanes: &[Vec<u128>; LANES], s: [u128; LANES]) -> [u128; LANES] {
    core::array::from_fn(|l| dot(&lanes[l], &powers(s[l], lanes[l].len())))
}

fn values(key: &PersonalKey) -> [Vec<u128>; LANES] {
    core::array::from_fn(|l| key.lane(l).iter().map(|f| f.value()).collect())
}

fn main() {
    let k = DEFAULT_K;
    let n = k as usize + 1;
    eprintln!("setting up a deployment for k = {k} and the HPKE baseline …");
    let fixture = Fixture::new(k);
    let base = Baselines::new(fixture.payload_len(), fixture.header_bytes());
    let master = fixture.master();
    let (key, peer) = fixture.issuer_and_peer();
    let newcomer = PartyId::parse("merchant:newcomer.example").expect("id");
    let lanes = values(key);
    let s: [u128; LANES] = core::array::from_fn(|l| id_to_field(peer, l).value());
    let sn: [u128; LANES] = core::array::from_fn(|l| id_to_field(&newcomer, l).value());
    let d: [Vec<u128>; LANES] = core::array::from_fn(|l| {
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| master.entry(l, i, j).value())
            .collect()
    });

    // Every variant gives the core's answer.
    let want: [u128; LANES] = key.raw_shared(peer).map(|f| f.value());
    assert_eq!(derive_sequential(&lanes, s), want);
    assert_eq!(derive_interleaved(&lanes, s), want);
    assert_eq!(derive_split::<2>(&lanes, s), want);
    assert_eq!(derive_split::<4>(&lanes, s), want);
    assert_eq!(derive_dot(&lanes, s), want);
    let issued = values(&master.personal_key(&newcomer));
    assert_eq!(issue_sequential(&d, n, sn), issued);
    assert_eq!(issue_dot(&d, n, sn), issued);

    let (x, y) = common::field_operands();
    let muls = (LANES * n * n) as u64;
    let mut ops = vec![
        Op::new("derive: core raw_shared (2 hashes + Horner)", || {
            black_box(key.raw_shared(black_box(peer)));
        }),
        Op::new("derive: Horner, lanes in turn (= core)", || {
            black_box(derive_sequential(&lanes, black_box(s)));
        }),
        Op::new("derive: lanes interleaved, lazy", || {
            black_box(derive_interleaved(&lanes, black_box(s)));
        }),
        Op::new("derive: + even/odd split (4 chains)", || {
            black_box(derive_split::<2>(&lanes, black_box(s)));
        }),
        Op::new("derive: + 4-way split (8 chains)", || {
            black_box(derive_split::<4>(&lanes, black_box(s)));
        }),
        Op::new("derive: powers + lazy dot product", || {
            black_box(derive_dot(&lanes, black_box(s)));
        }),
        Op::new("issue: core personal_key", || {
            black_box(master.personal_key(black_box(&newcomer)));
        }),
        Op::new("issue: row Horner (= core)", || {
            black_box(issue_sequential(&d, n, black_box(sn)));
        }),
        Op::new("issue: D·g with lazy dot products", || {
            black_box(issue_dot(&d, n, black_box(sn)));
        }),
        Op::new(format!("{muls} field muls (core Fe * Fe)"), || {
            common::field_muls(x, y, muls)
        }),
        Op::new("id_to_field, both lanes", || {
            black_box([0, 1].map(|l| id_to_field(black_box(peer), l)));
        }),
        Op::new("open issuer part (core)", || {
            black_box(fixture.open());
        }),
        Op::new("seal 3-part order (core)", || {
            black_box(fixture.seal());
        }),
        Op::new("HPKE open (baseline)", || {
            black_box(base.hpke_open());
        }),
    ];
    let rounds = 51;
    eprintln!("measuring {rounds} interleaved rounds …");
    run(&mut ops, rounds);
    println!();
    println!("k = {k}, {LANES} lanes, median of {rounds} rounds; speed-up vs the core's function");
    for (i, op) in ops.iter().enumerate().take(10) {
        let base = match i {
            0..=5 => 0,
            6..=8 => 6,
            _ => i,
        };
        let (x, lo, hi) = ratio(&ops[base].ns, &op.ns);
        println!(
            "{:<46} {:>10}   {:>5.2}× [{:.2}–{:.2}]",
            op.name,
            time(median(&op.ns)),
            x,
            lo,
            hi
        );
    }
    println!();
    println!(
        "issue / {LANES}·(k+1)² field muls: core {:.2}×, D·g {:.2}×",
        ratio(&ops[6].ns, &ops[9].ns).0,
        ratio(&ops[8].ns, &ops[9].ns).0
    );
    // Projection: the open and the seal with the even/odd-split derivation in place of the
    // core's Horner (the hashes to the field stay), from the medians.
    let m = |i: usize| median(&ops[i].ns);
    let saving = m(0) - m(10) - m(3);
    let (open_new, seal_new) = (m(11) - saving, m(12) - 3.0 * saving);
    println!(
        "open: core {} → projected {}; HPKE open / open: core {:.1}×, projected {:.1}×",
        time(m(11)),
        time(open_new),
        m(13) / m(11),
        m(13) / open_new
    );
    println!("seal: core {} → projected {}", time(m(12)), time(seal_new));
}
