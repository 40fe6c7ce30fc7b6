//! Prints the ratios issue 2 asks for, measured in one run: every operation is timed in
//! batches, the batches of all operations are interleaved round by round (so they share the
//! machine's noise), and each ratio is the median over rounds of the per-round ratio.
//!
//! `cargo bench -p warifu-core --bench ratios` (set `WARIFU_BENCH_ROUNDS` for more rounds).

mod common;

use common::timing::{BATCH, Op, median, quantile, ratio, run, time};
use common::{Baselines, Fixture, field_chain, field_mul, field_operands, ks};
use std::hint::black_box;
use warifu_core::blom::{DEFAULT_K, LANES, Sizing};

/// Rounds unless `WARIFU_BENCH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 61;
/// Length of the dependent multiplication chain.
const CHAIN: usize = 1024;

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn main() {
    let rounds = std::env::var("WARIFU_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n >= 3)
        .unwrap_or(DEFAULT_ROUNDS);
    eprintln!("setting up (masters for k = {:?}, an RSA-2048 key) …", ks());
    let fixtures: Vec<Fixture> = ks().into_iter().map(Fixture::new).collect();
    let default = fixtures
        .iter()
        .position(|f| f.k == DEFAULT_K)
        .expect("the default k is benchmarked");
    let payload_len = fixtures[0].payload_len();
    let base = Baselines::new(payload_len, fixtures[0].header_bytes());
    let (x, y) = field_operands();

    // Operation indices: 4 per fixture, then the rest.
    let mut ops: Vec<Op<'_>> = Vec::new();
    for f in &fixtures {
        ops.push(Op::new(format!("derive pairwise key   k={}", f.k), || {
            black_box(f.derive());
        }));
        ops.push(Op::new(format!("seal 3-part order     k={}", f.k), || {
            black_box(f.seal());
        }));
        ops.push(Op::new(format!("open issuer part      k={}", f.k), || {
            black_box(f.open());
        }));
        ops.push(Op::new(format!("issue personal key    k={}", f.k), || {
            black_box(f.issue());
        }));
    }
    let cached = ops.len();
    let fd = &fixtures[default];
    ops.push(Op::new(format!("open, cached key      k={}", fd.k), || {
        black_box(fd.open_cached());
    }));
    let mul = ops.len();
    ops.push(Op::new("field mul GF(2^127-1)", || {
        black_box(field_mul(x, y));
    }));
    let chain = ops.len();
    ops.push(Op::new(format!("field mul chain ×{CHAIN}"), || {
        black_box(field_chain(x, y, CHAIN));
    }));
    let hpke = ops.len();
    ops.push(Op::new(format!("HPKE open ({payload_len} B)"), || {
        black_box(base.hpke_open());
    }));
    let rsa = ops.len();
    ops.push(Op::new("RSA-OAEP-2048 decrypt (32 B key)", || {
        black_box(base.rsa_decrypt());
    }));

    eprintln!(
        "measuring: {rounds} rounds × {} operations × ~{} ms …",
        ops.len(),
        BATCH.as_millis()
    );
    run(&mut ops, rounds);

    println!();
    println!(
        "Warifu core vs baselines — one run, {rounds} interleaved rounds, median (p25–p75) per call"
    );
    println!(
        "payload: {payload_len} bytes (the issuer part's plaintext); {LANES} lanes of GF(2^127−1)"
    );
    println!();
    println!("{:<36} {:>12}   {:>25}", "operation", "median", "p25 – p75");
    for op in &ops {
        println!(
            "{:<36} {:>12}   {:>11} – {:<11}",
            op.name,
            time(median(&op.ns)),
            time(quantile(&op.ns, 0.25)),
            time(quantile(&op.ns, 0.75))
        );
    }
    println!(
        "{:<36} {:>12}",
        "  (chain: per dependent mul)",
        time(median(&ops[chain].ns) / CHAIN as f64)
    );

    println!();
    println!("Ratios (median of per-round ratios, p25–p75 in brackets):");
    println!(
        "{:>6}  {:>22}  {:>22}  {:>12}  {:>26}",
        "k", "HPKE open / open", "RSA decrypt / open", "seal", "issue / (LANES·(k+1)² mul)"
    );
    for (fi, f) in fixtures.iter().enumerate() {
        let (open, seal, issue) = (4 * fi + 2, 4 * fi + 1, 4 * fi + 3);
        let (h, h1, h3) = ratio(&ops[hpke].ns, &ops[open].ns);
        let (r, r1, r3) = ratio(&ops[rsa].ns, &ops[open].ns);
        let mults = Sizing::for_k(f.k).issue_mults as f64;
        let per_key: Vec<f64> = ops[mul].ns.iter().map(|m| m * mults).collect();
        let (i, i1, i3) = ratio(&ops[issue].ns, &per_key);
        println!(
            "{:>6}  {:>6.1}× [{:>5.1}–{:>5.1}]  {:>6.1}× [{:>5.1}–{:>5.1}]  {:>12}  {:>8.2}× [{:>4.2}–{:>4.2}]",
            f.k,
            h,
            h1,
            h3,
            r,
            r1,
            r3,
            time(median(&ops[seal].ns)),
            i,
            i1,
            i3
        );
    }

    let f = &fixtures[default];
    let fi = default;
    let (open, seal, issue) = (4 * fi + 2, 4 * fi + 1, 4 * fi + 3);
    let k1 = f64::from(f.k) + 1.0;
    let hpke_x = ratio(&ops[hpke].ns, &ops[open].ns).0;
    let rsa_x = ratio(&ops[rsa].ns, &ops[open].ns).0;
    let seal_ns = median(&ops[seal].ns);
    let scaled = |c: f64| -> Vec<f64> { ops[mul].ns.iter().map(|m| m * c).collect() };
    let issue_x = ratio(&ops[issue].ns, &scaled(LANES as f64 * k1 * k1)).0;
    let issue_literal = ratio(&ops[issue].ns, &scaled(k1 * k1)).0;
    let sizing = Sizing::for_k(f.k);
    println!();
    println!("Targets of issue 2 at k = {} (the default):", f.k);
    println!(
        "  open one part vs HPKE base-mode open      {hpke_x:>7.1}×   target ≥ 5×    {}",
        verdict(hpke_x >= 5.0)
    );
    println!(
        "  open one part vs RSA-OAEP-2048 decrypt    {rsa_x:>7.1}×   target ≥ 20×   {}",
        verdict(rsa_x >= 20.0)
    );
    println!(
        "  seal a 3-part order                     {:>10}   target ≤ 50 µs {}",
        time(seal_ns),
        verdict(seal_ns <= 50_000.0)
    );
    println!(
        "  issue a key vs {LANES}·(k+1)² lane muls       {issue_x:>7.2}×   target ≤ 2×    {}",
        verdict(issue_x <= 2.0)
    );
    println!(
        "  issue a key vs (k+1)² lane muls           {issue_literal:>7.2}×   (literal reading; a key element is {LANES} lanes)"
    );
    println!(
        "  personal key {:.1} kB, master {:.1} MB, {} muls per key, {} per issued key",
        sizing.personal_key_bytes as f64 / 1e3,
        sizing.master_bytes as f64 / 1e6,
        sizing.issue_mults,
        time(median(&ops[issue].ns))
    );
    let derive = 4 * fi;
    println!(
        "  of the open: key derivation {} (HPKE open / derive: {:.1}×), the rest {} (with a cached key: {:.1}× vs HPKE)",
        time(median(&ops[derive].ns)),
        ratio(&ops[hpke].ns, &ops[derive].ns).0,
        time(median(&ops[cached].ns)),
        ratio(&ops[hpke].ns, &ops[cached].ns).0
    );
    println!(
        "  (RSA baseline: decrypting the 32-byte content key of a hybrid RSA scheme; its AEAD step is not counted)"
    );
}
