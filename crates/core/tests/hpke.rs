//! Our RFC 9180 PSK mode (`warifu_core::hpke`) against RFC 9180's own test vector for the
//! suite (mode 1, KEM 0x0020, KDF 0x0001, AEAD 0x0003) and, byte for byte, against the `hpke`
//! crate on random keys, PSKs, infos, plaintexts and ephemeral keys, recipient keys off the
//! curve (twist points, taking the ladder) and small-order keys included. Each side opens the
//! other's output; a tampered `enc` or ciphertext fails.

use curve25519_dalek::montgomery::MontgomeryPoint;
use hpke::aead::{AeadCtxR, AeadCtxS, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, PskBundle, Serializable};
use proptest::prelude::*;
use warifu_core::hpke::{
    self as ours, AEAD_ID, Context, HpkeError, KDF_ID, KEM_ID, LADDERS_BEFORE_TABLE, RecipientKey,
    setup_psk_receiver, setup_psk_sender,
};

type Kem = X25519HkdfSha256;
type CtxS = AeadCtxS<ChaCha20Poly1305, HkdfSha256, Kem>;
type CtxR = AeadCtxR<ChaCha20Poly1305, HkdfSha256, Kem>;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex32(s: &str) -> [u8; 32] {
    hex(s).try_into().expect("32 bytes")
}

/// Hands the `hpke` crate's encapsulation exactly the 32 bytes of its ephemeral `ikm`.
struct Ikm {
    bytes: [u8; 32],
    used: usize,
}

impl rand_core::TryRng for Ikm {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.bytes[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Ikm {}

/// The inputs of one setup.
#[derive(Debug, Clone)]
struct Inputs {
    ikm_e: [u8; 32],
    psk: Vec<u8>,
    psk_id: Vec<u8>,
    info: Vec<u8>,
}

fn crate_sender(pk_r: &[u8; 32], i: &Inputs) -> Result<([u8; 32], CtxS), hpke::HpkeError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(pk_r).expect("32 bytes");
    let bundle = PskBundle::new(&i.psk, &i.psk_id).expect("psk bundle");
    let mut rng = Ikm {
        bytes: i.ikm_e,
        used: 0,
    };
    let (enc, ctx) = hpke::setup_sender_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Psk(bundle),
        &pk,
        &i.info,
        &mut rng,
    )?;
    Ok((enc.to_bytes().into(), ctx))
}

fn crate_receiver(sk_r: &[u8; 32], enc: &[u8], i: &Inputs) -> Result<CtxR, hpke::HpkeError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(sk_r).expect("32 bytes");
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)?;
    let bundle = PskBundle::new(&i.psk, &i.psk_id).expect("psk bundle");
    hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Psk(bundle),
        &sk,
        &enc,
        &i.info,
    )
}

/// Our sender, by the recipient key's table (built up front) when `table`, else by the
/// Montgomery ladder (a fresh key's first encapsulations).
fn ours_by(table: bool, pk_r: &[u8; 32], i: &Inputs) -> Result<([u8; 32], Context), HpkeError> {
    let key = RecipientKey::new(*pk_r);
    if table {
        key.precompute();
    }
    setup_psk_sender(&key, &i.ikm_e, &i.info, &i.psk, &i.psk_id)
}

fn ours_sender(pk_r: &[u8; 32], i: &Inputs) -> Result<([u8; 32], Context), HpkeError> {
    ours_by(true, pk_r, i)
}

fn ours_receiver(sk_r: &[u8; 32], enc: &[u8], i: &Inputs) -> Result<Context, HpkeError> {
    let pk_r = ours::public_key(sk_r);
    setup_psk_receiver(enc, sk_r, &pk_r, &i.info, &i.psk, &i.psk_id)
}

const EXPORT_LABEL: &[u8] = b"warifu/test/export";

fn export_ours(ctx: &Context, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    ctx.export(EXPORT_LABEL, &mut out).expect("export");
    out
}

#[test]
fn the_suite_is_rfc_9180s_x25519_sha256_chacha20poly1305() {
    assert_eq!((KEM_ID, KDF_ID, AEAD_ID), (0x0020, 0x0001, 0x0003));
}

/// RFC 9180 Appendix A.2.2 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, PSK
/// setup), as in the draft's source, cfrg/draft-irtf-cfrg-hpke `draft-irtf-cfrg-hpke.md`.
#[test]
fn rfc_9180_a_2_2_psk_vector() {
    let info = hex("4f6465206f6e2061204772656369616e2055726e");
    let ikm_e = hex("35706a0b09fb26fb45c39c2f5079c709c7cf98e43afa973f14d88ece7e29c2e3");
    let ikm_r = hex("26b923eade72941c8a85b09986cdfa3f1296852261adedc52d58d2930269812b");
    let psk = hex("0247fd33b913760fa1fa51e1892d9f307fbe65eb171e8132c2af18555a738b82");
    let psk_id = hex("456e6e796e20447572696e206172616e204d6f726961");
    let pk_em = hex32("2261299c3f40a9afc133b969a97f05e95be2c514e54f3de26cbe5644ac735b04");
    let sk_em = hex32("0c35fdf49df7aa01cd330049332c40411ebba36e0c718ebc3edf5845795f6321");
    let pk_rm = hex32("13640af826b722fc04feaa4de2f28fbd5ecc03623b317834e7ff4120dbe73062");
    let sk_rm = hex32("77d114e0212be51cb1d76fa99dd41cfd4d0166b08caa09074430a6c59ef17879");

    let (sk_e, pk_e) = ours::derive_key_pair(&ikm_e);
    assert_eq!((*sk_e, pk_e), (sk_em, pk_em), "DeriveKeyPair(ikmE)");
    let (sk_r, pk_r) = ours::derive_key_pair(&ikm_r);
    assert_eq!((*sk_r, pk_r), (sk_rm, pk_rm), "DeriveKeyPair(ikmR)");

    let (enc, mut sender) =
        setup_psk_sender(&RecipientKey::new(pk_rm), &ikm_e, &info, &psk, &psk_id)
            .expect("SetupPSKS");
    assert_eq!(enc, pk_em, "enc");
    let mut receiver =
        setup_psk_receiver(&enc, &sk_rm, &pk_rm, &info, &psk, &psk_id).expect("SetupPSKR");

    let pt = hex("4265617574792069732074727574682c20747275746820626561757479");
    let encryptions: [(u64, &str); 6] = [
        (
            0,
            "4a177f9c0d6f15cfdf533fb65bf84aecdc6ab16b8b85b4cf65a370e07fc1d78d28fb073214525276f4a89608ff",
        ),
        (
            1,
            "5c3cabae2f0b3e124d8d864c116fd8f20f3f56fda988c3573b40b09997fd6c769e77c8eda6cda4f947f5b704a8",
        ),
        (
            2,
            "14958900b44bdae9cbe5a528bf933c5c990dbb8e282e6e495adf8205d19da9eb270e3a6f1e0613ab7e757962a4",
        ),
        (
            4,
            "c2a7bc09ddb853cf2effb6e8d058e346f7fe0fb3476528c80db6b698415c5f8c50b68a9a355609e96d2117f8d3",
        ),
        (
            255,
            "2414d0788e4bc39a59a26d7bd5d78e111c317d44c37bd5a4c2a1235f2ddc2085c487d406490e75210c958724a7",
        ),
        (
            256,
            "c567ae1c3f0f75abe1dd9e4532b422600ed4a6e5b9484dafb1e43ab9f5fd662b28c00e2e81d3cde955dae7e218",
        ),
    ];
    let mut checked = 0;
    for seq in 0..=256u64 {
        let aad = format!("Count-{seq}");
        let ct = sender.seal(&pt, aad.as_bytes()).expect("seal");
        assert_eq!(
            *receiver.open(&ct, aad.as_bytes()).expect("open"),
            pt,
            "seq {seq}"
        );
        if let Some((_, want)) = encryptions.iter().find(|(s, _)| *s == seq) {
            assert_eq!(ct, hex(want), "ciphertext of seq {seq}");
            checked += 1;
        }
    }
    assert_eq!(checked, encryptions.len());

    let exports = [
        (
            "",
            "813c1bfc516c99076ae0f466671f0ba5ff244a41699f7b2417e4c59d46d39f40",
        ),
        (
            "00",
            "2745cf3d5bb65c333658732954ee7af49eb895ce77f8022873a62a13c94cb4e1",
        ),
        (
            "54657374436f6e74657874",
            "ad40e3ae14f21c99bfdebc20ae14ab86f4ca2dc9a4799d200f43a25f99fa78ae",
        ),
    ];
    for (context, want) in exports {
        for ctx in [&sender, &receiver] {
            let mut out = [0u8; 32];
            ctx.export(&hex(context), &mut out).expect("export");
            assert_eq!(out.to_vec(), hex(want), "export of {context:?}");
        }
    }
}

/// u-coordinates `to_edwards` refuses (twist points, u = −1): the sender's ladder fallback.
fn twist_points() -> Vec<[u8; 32]> {
    let mut minus_one = [0xff; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let mut us = vec![minus_one];
    for i in 2u8..=40 {
        let mut u = [0u8; 32];
        u[0] = i;
        us.push(u);
    }
    us.retain(|u| MontgomeryPoint(*u).to_edwards(0).is_none());
    us
}

/// Points of order 1, 2, 4 and 8 (and their non-canonical encodings): every DH is all zeros.
fn small_order_points() -> Vec<[u8; 32]> {
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ]
    .iter()
    .map(|h| hex32(h))
    .collect()
}

#[test]
fn twist_points_take_the_ladder() {
    let us = twist_points();
    assert!(us.len() >= 10, "{} twist points", us.len());
    let i = Inputs {
        ikm_e: [7; 32],
        psk: vec![1; 32],
        psk_id: b"id".to_vec(),
        info: vec![],
    };
    for u in us {
        let key = RecipientKey::new(u);
        for _ in 0..=LADDERS_BEFORE_TABLE {
            assert!(format!("{key:?}").contains("not yet"), "{key:?}");
            let _ = setup_psk_sender(&key, &i.ikm_e, &i.info, &i.psk, &i.psk_id);
        }
        assert!(format!("{key:?}").contains("the ladder"), "{key:?}");
    }
}

/// Sender side only (no private key for `u`): the same enc, ciphertexts and export as the
/// crate, or the same refusal.
fn same_sender(u: &[u8; 32], i: &Inputs, pts: &[(Vec<u8>, Vec<u8>)]) {
    same_sender_by(true, u, i, pts);
    same_sender_by(false, u, i, pts);
}

fn same_sender_by(table: bool, u: &[u8; 32], i: &Inputs, pts: &[(Vec<u8>, Vec<u8>)]) {
    let ours = ours_by(table, u, i);
    let theirs = crate_sender(u, i);
    match (ours, theirs) {
        (Ok((enc, mut ctx)), Ok((enc2, mut ctx2))) => {
            assert_eq!(enc, enc2, "enc");
            for (pt, aad) in pts {
                assert_eq!(
                    ctx.seal(pt, aad).expect("seal"),
                    ctx2.seal(pt, aad).expect("seal"),
                    "ciphertext"
                );
            }
            let mut out = [0u8; 32];
            ctx2.export(EXPORT_LABEL, &mut out).expect("export");
            assert_eq!(export_ours(&ctx, 32), out.to_vec(), "export");
        }
        (Err(e), Err(_)) => assert_eq!(e, HpkeError::ZeroSharedSecret),
        (ours, theirs) => panic!(
            "ours {:?}, the crate's {:?}",
            ours.map(|(e, _)| e),
            theirs.map(|(e, _)| e)
        ),
    }
}

#[test]
fn small_order_keys_are_refused_like_the_crate_does() {
    let i = Inputs {
        ikm_e: [7; 32],
        psk: vec![1; 32],
        psk_id: b"id".to_vec(),
        info: b"info".to_vec(),
    };
    for u in small_order_points() {
        assert_eq!(
            ours_sender(&u, &i).err(),
            Some(HpkeError::ZeroSharedSecret),
            "{u:?}"
        );
        same_sender(&u, &i, &[]);
        assert_eq!(
            ours_receiver(&[9; 32], &u, &i).err(),
            Some(HpkeError::ZeroSharedSecret)
        );
    }
}

#[test]
fn every_decoder_is_total() {
    let i = Inputs {
        ikm_e: [7; 32],
        psk: vec![1; 32],
        psk_id: b"id".to_vec(),
        info: vec![],
    };
    let (enc, _) = ours_sender(&ours::public_key(&[3; 32]), &i).expect("seal");
    for len in [0, 1, 31, 33, 64] {
        let bytes = vec![9u8; len];
        assert_eq!(
            RecipientKey::from_slice(&bytes).err(),
            Some(HpkeError::Length("public key"))
        );
        assert_eq!(
            ours_receiver(&[3; 32], &bytes, &i).err(),
            Some(HpkeError::Length("enc"))
        );
    }
    let mut receiver = ours_receiver(&[3; 32], &enc, &i).expect("setup");
    for ct in [&[][..], &[0u8; 15][..], &[0u8; 16][..], &[0u8; 40][..]] {
        assert_eq!(receiver.open(ct, b"").err(), Some(HpkeError::Aead));
    }
    let mut too_long = vec![0u8; 255 * 32 + 1];
    assert_eq!(
        receiver.export(b"", &mut too_long).err(),
        Some(HpkeError::KdfLength)
    );
    let mut longest = vec![0u8; 255 * 32];
    assert!(receiver.export(b"", &mut longest).is_ok());
    for (psk, psk_id) in [
        (vec![], b"id".to_vec()),
        (vec![1; 32], vec![]),
        (vec![], vec![]),
    ] {
        let j = Inputs {
            psk,
            psk_id,
            ..i.clone()
        };
        assert_eq!(ours_sender(&[9; 32], &j).err(), Some(HpkeError::Psk));
        assert_eq!(
            ours_receiver(&[3; 32], &enc, &j).err(),
            Some(HpkeError::Psk)
        );
    }
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        any::<[u8; 32]>(),
        prop::collection::vec(any::<u8>(), 1..64),
        prop::collection::vec(any::<u8>(), 1..40),
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(ikm_e, psk, psk_id, info)| Inputs {
            ikm_e,
            psk,
            psk_id,
            info,
        })
}

fn messages() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(any::<u8>(), 0..64),
        ),
        1..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A recipient key pair: our sender and the crate's agree byte for byte, each receiver
    /// opens the other's sender, and a flipped bit of enc or of a ciphertext fails.
    #[test]
    fn ours_and_the_crate_agree_and_interoperate(
        sk_r in any::<[u8; 32]>(),
        i in inputs(),
        msgs in messages(),
        flip in any::<(usize, u8)>(),
    ) {
        let pk_r = ours::public_key(&sk_r);
        let crate_pk = <Kem as hpke::Kem>::sk_to_pk(
            &<Kem as hpke::Kem>::PrivateKey::from_bytes(&sk_r).expect("sk"),
        );
        prop_assert_eq!(pk_r.to_vec(), crate_pk.to_bytes().to_vec());

        let (enc, mut ours) = ours_sender(&pk_r, &i).expect("our sender");
        let (enc2, mut theirs) = crate_sender(&pk_r, &i).expect("the crate's sender");
        prop_assert_eq!(enc, enc2);
        let (enc3, mut by_ladder) = ours_by(false, &pk_r, &i).expect("our sender, ladder");
        prop_assert_eq!(enc, enc3);
        let mut our_open = crate_receiver(&sk_r, &enc, &i).expect("the crate's receiver");
        let mut their_open = ours_receiver(&sk_r, &enc2, &i).expect("our receiver");
        let mut cts = Vec::new();
        for (pt, aad) in &msgs {
            let ct = ours.seal(pt, aad).expect("seal");
            prop_assert_eq!(&ct, &theirs.seal(pt, aad).expect("seal"));
            prop_assert_eq!(&ct, &by_ladder.seal(pt, aad).expect("seal"));
            prop_assert_eq!(&our_open.open(&ct, aad).expect("crate opens ours"), pt);
            prop_assert_eq!(&*their_open.open(&ct, aad).expect("we open the crate's"), pt);
            cts.push(ct);
        }
        let mut out = [0u8; 32];
        theirs.export(EXPORT_LABEL, &mut out).expect("export");
        prop_assert_eq!(export_ours(&ours, 32), out.to_vec());
        prop_assert_eq!(export_ours(&their_open, 32), out.to_vec());

        // Tampering: a flipped bit of enc changes the shared secret (kem_context holds enc
        // as sent, so even the masked top bit counts), a flipped bit of a ciphertext its tag.
        let (pt, aad) = &msgs[0];
        let mut bad_enc = enc;
        bad_enc[flip.0 % 32] ^= 1 << (flip.1 % 8);
        match ours_receiver(&sk_r, &bad_enc, &i) {
            Ok(mut ctx) => prop_assert!(ctx.open(&cts[0], aad).is_err()),
            Err(e) => prop_assert_eq!(e, HpkeError::ZeroSharedSecret),
        }
        let mut bad_ct = cts[0].clone();
        let at = flip.0 % bad_ct.len();
        bad_ct[at] ^= 1 << (flip.1 % 8);
        let mut fresh = ours_receiver(&sk_r, &enc, &i).expect("receiver");
        prop_assert!(fresh.open(&bad_ct, aad).is_err());
        prop_assert_eq!(&*fresh.open(&cts[0], aad).expect("the original still opens"), pt);
    }

    /// Any 32 bytes as the recipient's key, on the curve or its twist (about half each), top
    /// bit set or not: the same enc, ciphertexts and export as the crate.
    #[test]
    fn any_u_gives_the_crates_bytes(
        u in any::<[u8; 32]>(),
        i in inputs(),
        msgs in messages(),
    ) {
        same_sender(&u, &i, &msgs);
    }

    /// Twist points and small-order points: the ladder fallback, and the same bytes (or the
    /// same refusal) as the crate.
    #[test]
    fn twist_and_small_order_keys_give_the_crates_bytes(
        pick in any::<usize>(),
        i in inputs(),
        msgs in messages(),
    ) {
        let mut us = twist_points();
        us.extend(small_order_points());
        let u = us[pick % us.len()];
        same_sender(&u, &i, &msgs);
    }
}

/// A key's table is made after its first ladders, once, and shared by its clones; results
/// stay X25519's throughout.
#[test]
fn clones_share_the_table() {
    let sk_r = [5u8; 32];
    let key = RecipientKey::new(ours::public_key(&sk_r));
    let copy = key.clone();
    let i = Inputs {
        ikm_e: [8; 32],
        psk: vec![2; 32],
        psk_id: b"id".to_vec(),
        info: b"x".to_vec(),
    };
    let seal = |k: &RecipientKey| {
        let (enc, ctx) = setup_psk_sender(k, &i.ikm_e, &i.info, &i.psk, &i.psk_id).expect("seal");
        (enc, export_ours(&ctx, 32))
    };
    let first = seal(&key);
    for n in 1..LADDERS_BEFORE_TABLE {
        assert_eq!(seal(if n % 2 == 0 { &key } else { &copy }), first);
    }
    assert!(format!("{copy:?}").contains("not yet"), "{copy:?}");
    assert_eq!(seal(&key), first);
    assert!(format!("{copy:?}").contains("built"), "{copy:?}");
    assert_eq!(seal(&copy), first);
}
