//! Criterion benchmarks of sealed format version 3 (HPKE to each recipient's KEM key) at the
//! default k, pairwise keys cached: sealing an order to three recipients, opening one part.
//!
//! `cargo bench -p warifu-core --bench v3`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use curve25519_dalek::montgomery::MontgomeryPoint;
use warifu_core::hpke::{self, RecipientKey};

use common::{Fixture, PerOrder};

fn v3(c: &mut Criterion) {
    let f = Fixture::new(warifu_core::blom::DEFAULT_K);
    let o = PerOrder::new(&f);
    let part = o.issuer_part_v3();
    let mut g = c.benchmark_group("v3");
    g.bench_function("seal order to 3 recipients, cached keys", |b| {
        b.iter(|| o.seal_v3())
    });
    g.bench_function("open issuer part, cached key", |b| {
        b.iter(|| o.open_issuer_v3(&part))
    });
    g.bench_function("order: seal + 3 opens, cached keys", |b| b.iter(|| o.v3()));
    g.finish();

    // The sender's Diffie-Hellman to a recipient key: the ladder, the recipient's table, and
    // building the table (what `hpke::LADDERS_BEFORE_TABLE` weighs).
    let sk = [0x42u8; 32];
    let key = RecipientKey::new(hpke::public_key(&[0x17; 32]));
    key.precompute();
    let mut g = c.benchmark_group("x25519");
    g.bench_function("DH by the Montgomery ladder", |b| {
        b.iter(|| MontgomeryPoint(*black_box(key.as_bytes())).mul_clamped(black_box(sk)))
    });
    g.bench_function("DH by the recipient's table", |b| {
        b.iter(|| black_box(&key).dh(black_box(&sk)))
    });
    g.bench_function("fresh key: build the table + DH", |b| {
        b.iter(|| {
            let fresh = RecipientKey::new(*black_box(key.as_bytes()));
            fresh.precompute();
            fresh.dh(&sk)
        })
    });
    g.bench_function("ephemeral key (fixed base)", |b| {
        b.iter(|| hpke::public_key(black_box(&sk)))
    });
    g.finish();

    // One part's HPKE setup, ours against the `hpke` crate it replaces.
    let (psk, psk_id, info) = ([7u8; 32], b"warifu/bench/psk-id", b"warifu/bench/info");
    let sk_r = [0x17u8; 32];
    let (enc, _) = hpke::setup_psk_sender(&key, &sk, info, &psk, psk_id).expect("seal");
    let mut g = c.benchmark_group("hpke setup");
    g.bench_function("sender, ours (table)", |b| {
        b.iter(|| hpke::setup_psk_sender(&key, black_box(&sk), info, &psk, psk_id))
    });
    g.bench_function("sender, hpke crate", |b| {
        b.iter(|| crate_hpke::sender(key.as_bytes(), black_box(&sk), info, &psk, psk_id))
    });
    g.bench_function("receiver, ours", |b| {
        b.iter(|| {
            hpke::setup_psk_receiver(black_box(&enc), &sk_r, key.as_bytes(), info, &psk, psk_id)
        })
    });
    g.bench_function("receiver, hpke crate", |b| {
        b.iter(|| crate_hpke::receiver(&sk_r, black_box(&enc), info, &psk, psk_id))
    });
    g.finish();
}

/// The `hpke` crate's PSK-mode setup, with the ephemeral key from given bytes.
mod crate_hpke {
    use hpke::aead::ChaCha20Poly1305;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::X25519HkdfSha256 as Kem;
    use hpke::{Deserializable, OpModeR, OpModeS, PskBundle};

    /// Hands out the 32 bytes of the ephemeral key's `ikm`.
    struct Ikm([u8; 32], usize);

    impl rand_core::TryRng for Ikm {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            unimplemented!("only fill_bytes")
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            unimplemented!("only fill_bytes")
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                *b = self.0[self.1];
                self.1 += 1;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Ikm {}

    pub fn sender(pk: &[u8; 32], ikm: &[u8; 32], info: &[u8], psk: &[u8], id: &[u8]) {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(pk).expect("pk");
        let mode = OpModeS::Psk(PskBundle::new(psk, id).expect("psk"));
        hpke::setup_sender_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &mode,
            &pk,
            info,
            &mut Ikm(*ikm, 0),
        )
        .expect("setup");
    }

    pub fn receiver(sk: &[u8; 32], enc: &[u8; 32], info: &[u8], psk: &[u8], id: &[u8]) {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(sk).expect("sk");
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).expect("enc");
        let mode = OpModeR::Psk(PskBundle::new(psk, id).expect("psk"));
        hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, Kem>(&mode, &sk, &enc, info)
            .expect("setup");
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = v3
}
criterion_main!(benches);
