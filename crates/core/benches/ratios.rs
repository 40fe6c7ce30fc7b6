//! Prints the ratios issue 2 asks for, measured in one run: every operation is timed in
//! batches, the batches of all operations are interleaved round by round (so they share the
//! machine's noise), and each ratio is the median over rounds of the per-round ratio.
//!
//! `cargo bench -p warifu-core --bench ratios` (set `WARIFU_BENCH_ROUNDS` for more rounds).

mod common;

use std::hint::black_box;

use common::timing::{BATCH, Op, median, quantile, ratio, run, time};
use common::{
    Baselines, Fixture, PerOrder, field_chain, field_mul, field_muls, field_operands, ks,
};
use warifu_core::blom::{DEFAULT_K, LANES, Sizing};

/// Rounds unless `WARIFU_BENCH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 61;
/// Length of the dependent multiplication chain.
const CHAIN: usize = 1024;

/// Where one k's operations sit in the list of operations.
struct PerK {
    derive: usize,
    seal: usize,
    open: usize,
    issue: usize,
    /// As many field multiplications as issuing a key performs: LANES·(k+1)².
    muls: usize,
}

/// Appends `op` and returns its index.
fn push<'a>(ops: &mut Vec<Op<'a>>, op: Op<'a>) -> usize {
    ops.push(op);
    ops.len() - 1
}

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

    let per_order = PerOrder::new(&fixtures[default]);
    let mut ops: Vec<Op<'_>> = Vec::new();
    let mut per_k = Vec::new();
    for f in &fixtures {
        let k = f.k;
        let n = Sizing::for_k(k).issue_mults;
        per_k.push(PerK {
            derive: push(
                &mut ops,
                Op::new(format!("derive pairwise key    k={k}"), || {
                    black_box(f.derive());
                }),
            ),
            seal: push(
                &mut ops,
                Op::new(format!("seal 3-part order      k={k}"), || {
                    black_box(f.seal());
                }),
            ),
            open: push(
                &mut ops,
                Op::new(format!("open issuer part       k={k}"), || {
                    black_box(f.open());
                }),
            ),
            issue: push(
                &mut ops,
                Op::new(format!("issue personal key     k={k}"), || {
                    black_box(f.issue());
                }),
            ),
            muls: push(
                &mut ops,
                Op::new(format!("{n} field muls  k={k}"), move || {
                    field_muls(x, y, n)
                }),
            ),
        });
    }
    let fd = &fixtures[default];
    let cached = push(
        &mut ops,
        Op::new(format!("open, cached key       k={}", fd.k), || {
            black_box(fd.open_cached());
        }),
    );
    let seal_cached = push(
        &mut ops,
        Op::new(format!("seal, cached keys      k={}", fd.k), || {
            black_box(fd.seal_cached());
        }),
    );
    let order_v2 = push(
        &mut ops,
        Op::new("order v2: seal + 3 opens, cached", || {
            per_order.v2();
        }),
    );
    let order_v3 = push(
        &mut ops,
        Op::new("order v3: seal + 3 opens, cached", || {
            per_order.v3();
        }),
    );
    let seal_v3 = push(
        &mut ops,
        Op::new(format!("seal v3, cached keys   k={}", fd.k), || {
            black_box(per_order.seal_v3());
        }),
    );
    let mul = push(
        &mut ops,
        Op::new("field mul GF(2^127-1)", || {
            black_box(field_mul(x, y));
        }),
    );
    let chain = push(
        &mut ops,
        Op::new(format!("field mul chain ×{CHAIN}"), || {
            black_box(field_chain(x, y, CHAIN));
        }),
    );
    let hpke = push(
        &mut ops,
        Op::new(format!("HPKE open ({payload_len} B)"), || {
            black_box(base.hpke_open());
        }),
    );
    let rsa = push(
        &mut ops,
        Op::new("RSA-OAEP-2048 decrypt (32 B key)", || {
            black_box(base.rsa_decrypt());
        }),
    );

    eprintln!(
        "measuring: {rounds} rounds × {} operations × ≥ {} ms …",
        ops.len(),
        BATCH.as_millis()
    );
    run(&mut ops, rounds);

    println!();
    println!("Warifu core vs baselines — one run, {rounds} interleaved rounds, per call");
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
        "{:>6}  {:>22}  {:>22}  {:>10}  {:>24}",
        "k", "HPKE open / open", "RSA decrypt / open", "seal", "issue / LANES·(k+1)² muls"
    );
    for (f, i) in fixtures.iter().zip(&per_k) {
        let (h, h1, h3) = ratio(&ops[hpke].ns, &ops[i.open].ns);
        let (r, r1, r3) = ratio(&ops[rsa].ns, &ops[i.open].ns);
        let (m, m1, m3) = ratio(&ops[i.issue].ns, &ops[i.muls].ns);
        println!(
            "{:>6}  {h:>6.1}× [{h1:>5.1}–{h3:>5.1}]  {r:>6.1}× [{r1:>5.1}–{r3:>5.1}]  {:>10}  {m:>9.2}× [{m1:.2}–{m3:.2}]",
            f.k,
            time(median(&ops[i.seal].ns)),
        );
    }

    let i = &per_k[default];
    let hpke_x = ratio(&ops[hpke].ns, &ops[i.open].ns).0;
    let rsa_x = ratio(&ops[rsa].ns, &ops[i.open].ns).0;
    let seal_ns = median(&ops[i.seal].ns);
    let issue_x = ratio(&ops[i.issue].ns, &ops[i.muls].ns).0;
    let sizing = Sizing::for_k(fd.k);
    println!();
    println!("Targets of issue 2 at k = {} (the default):", fd.k);
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
        "  issue a key / {LANES}·(k+1)² field muls       {issue_x:>7.2}×   target ≤ 2×    {}",
        verdict(issue_x <= 2.0)
    );
    println!(
        "  issue a key / (k+1)² field muls           {:>7.2}×   (literal reading; a key element is {LANES} lanes)",
        issue_x * LANES as f64
    );
    println!(
        "  personal key {:.1} kB, master {:.1} MB, {} muls and {} per issued key",
        sizing.personal_key_bytes as f64 / 1e3,
        sizing.master_bytes as f64 / 1e6,
        sizing.issue_mults,
        time(median(&ops[i.issue].ns))
    );
    println!(
        "  seal with the cardholder's three Blom secrets cached (keycache::CachedKeys): {}",
        time(median(&ops[seal_cached].ns))
    );
    println!(
        "  the open = key derivation {} + the rest (open with a cached key) {}; HPKE / cached open: {:.1}×",
        time(median(&ops[i.derive].ns)),
        time(median(&ops[cached].ns)),
        ratio(&ops[hpke].ns, &ops[cached].ns).0
    );
    println!(
        "  (RSA baseline: the private-key decryption of a hybrid RSA scheme's 32-byte content key; \
         its AEAD step is not counted, so the ratio is a lower bound)"
    );
    println!("  (field mul alone: {}/mul)", time(median(&ops[mul].ns)));
    let (v, v1, v3) = ratio(&ops[order_v3].ns, &ops[order_v2].ns);
    println!();
    println!("Forward secrecy (issue 19, format version 3 vs 2), pairwise keys cached:");
    println!(
        "  one order, seal + the three recipients' opens: v3 {} vs v2 {}: {v:.2}× [{v1:.2}–{v3:.2}]   target ≤ 2×   {}",
        time(median(&ops[order_v3].ns)),
        time(median(&ops[order_v2].ns)),
        verdict(v <= 2.0)
    );
    println!(
        "  seal alone: v3 {} vs v2 {}",
        time(median(&ops[seal_v3].ns)),
        time(median(&ops[seal_cached].ns))
    );
}
