//! Criterion benchmarks of Warifu's core at k = 64, 256, 1024 (the default), with the
//! baselines users pick today (HPKE base mode, RSA-OAEP-2048) in the same run.
//!
//! `cargo bench -p warifu-core --bench core`; the ratios the issue asks for are printed by
//! `cargo bench -p warifu-core --bench ratios`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use common::{Baselines, Fixture, field_chain, field_mul, field_operands, ks};

fn blom(c: &mut Criterion) {
    let mut payload = None;
    for k in ks() {
        let f = Fixture::new(k);
        payload.get_or_insert((f.payload_len(), f.header_bytes()));
        let mut g = c.benchmark_group("warifu");
        g.bench_with_input(BenchmarkId::new("derive pairwise key", k), &f, |b, f| {
            b.iter(|| f.derive())
        });
        g.bench_with_input(BenchmarkId::new("seal 3-part order", k), &f, |b, f| {
            b.iter(|| f.seal())
        });
        g.bench_with_input(
            BenchmarkId::new("seal 3-part order, cached keys", k),
            &f,
            |b, f| b.iter(|| f.seal_cached()),
        );
        g.bench_with_input(BenchmarkId::new("open issuer part", k), &f, |b, f| {
            b.iter(|| f.open())
        });
        g.bench_with_input(BenchmarkId::new("issue personal key", k), &f, |b, f| {
            b.iter(|| f.issue())
        });
        g.finish();
    }

    let mut g = c.benchmark_group("field GF(2^127-1)");
    let (x, y) = field_operands();
    g.bench_function("mul", |b| b.iter(|| field_mul(x, y)));
    g.bench_function("mul chain of 1024 (per call)", |b| {
        b.iter(|| field_chain(x, y, black_box(1024)))
    });
    g.finish();

    let (len, aad) = payload.expect("at least one k");
    let base = Baselines::new(len, aad);
    let mut g = c.benchmark_group("baseline");
    g.bench_function(BenchmarkId::new("HPKE X25519/ChaCha20 open", len), |b| {
        b.iter(|| base.hpke_open())
    });
    g.bench_function("RSA-OAEP-2048 decrypt 32-byte key", |b| {
        b.iter(|| base.rsa_decrypt())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_millis(2500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = blom
}
criterion_main!(benches);
