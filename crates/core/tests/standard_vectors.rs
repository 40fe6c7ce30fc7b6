//! Standard test vectors for the primitives the core is built on, exercised through the same
//! crates and calls the core uses: XChaCha20-Poly1305 (sealed parts, sealed key files) and
//! HKDF-SHA256 (pairwise and per-part keys) against Wycheproof (`testdata/wycheproof/`), the
//! RFC 8439 and draft-irtf-cfrg-xchacha AEAD examples and RFC 5869; Argon2id (passphrase-sealed
//! key files) against RFC 9106 §5.3. Every valid vector must pass, every invalid one must fail,
//! and every known answer has a tampered twin that must fail.

use std::path::PathBuf;

use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde::Deserialize;
use sha2::Sha256;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn wycheproof<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "../../testdata/wycheproof",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File<G> {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<G>,
}

#[derive(Deserialize)]
struct Group<T> {
    tests: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadTest {
    tc_id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
    flags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HkdfTest {
    tc_id: u32,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: String,
}

/// `valid` must pass; `invalid` must fail; Wycheproof's `acceptable` does not occur in these
/// files and is refused so that a future file with it gets a deliberate decision.
fn expect_valid(result: &str, id: u32) -> bool {
    match result {
        "valid" => true,
        "invalid" => false,
        other => panic!("tcId {id}: unexpected result {other:?}"),
    }
}

/// The core's AEAD call: XChaCha20-Poly1305 with a 24-byte nonce, ciphertext ‖ tag.
fn xchacha_seal(key: &[u8], nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    XChaCha20Poly1305::new_from_slice(key)
        .expect("32-byte key")
        .encrypt(&XNonce::from(*nonce), Payload { msg, aad })
        .expect("encryption")
}

fn xchacha_open(key: &[u8], nonce: &[u8; 24], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    XChaCha20Poly1305::new_from_slice(key)
        .expect("32-byte key")
        .decrypt(&XNonce::from(*nonce), Payload { msg: sealed, aad })
        .ok()
}

#[test]
fn wycheproof_xchacha20_poly1305() {
    let file: File<Group<AeadTest>> = wycheproof("xchacha20_poly1305_test.json");
    assert_eq!(file.algorithm, "XCHACHA20-POLY1305");
    let (mut valid, mut invalid) = (0, 0);
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let id = t.tc_id;
        let (key, iv, aad, msg) = (hex(&t.key), hex(&t.iv), hex(&t.aad), hex(&t.msg));
        let sealed = [hex(&t.ct), hex(&t.tag)].concat();
        // The core only ever builds a nonce from exactly 24 bytes: any other size is refused
        // before the cipher runs.
        let nonce = <[u8; 24]>::try_from(iv.as_slice()).ok();
        if expect_valid(&t.result, id) {
            valid += 1;
            let nonce = nonce.unwrap_or_else(|| panic!("tcId {id}: valid vector, bad nonce"));
            assert_eq!(
                xchacha_seal(&key, &nonce, &aad, &msg),
                sealed,
                "tcId {id}: encryption"
            );
            assert_eq!(
                xchacha_open(&key, &nonce, &aad, &sealed).as_deref(),
                Some(msg.as_slice()),
                "tcId {id}: decryption"
            );
            // Tamper twin: the last tag bit flipped.
            let mut bad = sealed.clone();
            *bad.last_mut().expect("tag") ^= 1;
            assert!(
                xchacha_open(&key, &nonce, &aad, &bad).is_none(),
                "tcId {id}: twin"
            );
        } else {
            invalid += 1;
            match nonce {
                None => assert!(
                    t.flags.iter().any(|f| f == "InvalidNonceSize"),
                    "tcId {id}: refused only for its nonce size"
                ),
                Some(nonce) => {
                    assert!(
                        xchacha_open(&key, &nonce, &aad, &sealed).is_none(),
                        "tcId {id}: an invalid ciphertext opened"
                    );
                    assert_ne!(xchacha_seal(&key, &nonce, &aad, &msg), sealed, "tcId {id}");
                }
            }
        }
    }
    assert_eq!(valid + invalid, file.number_of_tests);
    assert!(
        valid > 200 && invalid > 60,
        "{valid} valid, {invalid} invalid"
    );
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut okm = vec![0u8; size];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .ok()
        .map(|()| okm)
}

#[test]
fn wycheproof_hkdf_sha256() {
    let file: File<Group<HkdfTest>> = wycheproof("hkdf_sha256_test.json");
    assert_eq!(file.algorithm, "HKDF-SHA-256");
    let (mut valid, mut invalid) = (0, 0);
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let id = t.tc_id;
        let okm = hkdf_sha256(&hex(&t.salt), &hex(&t.ikm), &hex(&t.info), t.size);
        if expect_valid(&t.result, id) {
            valid += 1;
            let want = hex(&t.okm);
            assert_eq!(okm.as_deref(), Some(want.as_slice()), "tcId {id}");
            // Tamper twin: another info gives another key.
            let other = hkdf_sha256(&hex(&t.salt), &hex(&t.ikm), b"tampered", t.size);
            assert_ne!(other.as_deref(), Some(want.as_slice()), "tcId {id}: twin");
        } else {
            invalid += 1;
            assert!(
                okm.is_none(),
                "tcId {id}: an invalid request produced output"
            );
        }
    }
    assert_eq!(valid + invalid, file.number_of_tests);
    assert!(
        valid >= 80 && invalid >= 3,
        "{valid} valid, {invalid} invalid"
    );
}

/// IKM, salt, info, PRK (hex), OKM (hex).
type Rfc5869Case = (Vec<u8>, Vec<u8>, Vec<u8>, &'static str, &'static str);

/// RFC 5869, Appendix A, test cases 1–3 (SHA-256): PRK and OKM.
#[test]
fn rfc5869_hkdf_sha256() {
    let range = |a: u8, b: u8| (a..=b).collect::<Vec<u8>>();
    let cases: [Rfc5869Case; 3] = [
        (
            vec![0x0b; 22],
            range(0x00, 0x0c),
            range(0xf0, 0xf9),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf
             34007208d5b887185865",
        ),
        (
            range(0x00, 0x4f),
            range(0x60, 0xaf),
            range(0xb0, 0xff),
            "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c
             59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71
             cc30c58179ec3e87c14c01d5c1f3434f1d87",
        ),
        (
            vec![0x0b; 22],
            vec![],
            vec![],
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d
             9d201395faa4b61a96c8",
        ),
    ];
    for (n, (ikm, salt, info, prk, okm)) in cases.iter().enumerate() {
        let (got_prk, hk) = Hkdf::<Sha256>::extract(Some(salt), ikm);
        assert_eq!(got_prk.as_slice(), hex(prk), "case {}: PRK", n + 1);
        let want = hex(okm);
        let mut got = vec![0u8; want.len()];
        hk.expand(info, &mut got).expect("length");
        assert_eq!(got, want, "case {}: OKM", n + 1);
        // The core expands from a PRK it already holds (per-part keys): same answer.
        let mut again = vec![0u8; want.len()];
        Hkdf::<Sha256>::from_prk(&hex(prk))
            .expect("PRK")
            .expand(info, &mut again)
            .expect("length");
        assert_eq!(again, want, "case {}: from_prk", n + 1);
        // Tamper twin: one IKM bit flipped.
        let mut bad_ikm = ikm.clone();
        bad_ikm[0] ^= 1;
        assert_ne!(
            hkdf_sha256(salt, &bad_ikm, info, want.len()),
            Some(want),
            "case {}: twin",
            n + 1
        );
    }
}

const SUNSCREEN: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only \
one tip for the future, sunscreen would be it.";
const AEAD_KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const AEAD_AAD: &str = "50515253c0c1c2c3c4c5c6c7";

/// RFC 8439 §2.8.2: the ChaCha20-Poly1305 AEAD example (the 96-bit-nonce construction that
/// XChaCha20-Poly1305 extends).
#[test]
fn rfc8439_chacha20_poly1305() {
    let cipher = ChaCha20Poly1305::new_from_slice(&hex(AEAD_KEY)).expect("key");
    let nonce = Nonce::from(<[u8; 12]>::try_from(hex("070000004041424344454647")).expect("12"));
    let aad = hex(AEAD_AAD);
    let want = [
        hex(
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
             3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
             92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
             3ff4def08e4b7a9de576d26586cec64b6116",
        ),
        hex("1ae10b594f09e26a7e902ecbd0600691"),
    ]
    .concat();
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: SUNSCREEN,
                aad: &aad,
            },
        )
        .expect("encryption");
    assert_eq!(sealed, want);
    let opened = cipher.decrypt(
        &nonce,
        Payload {
            msg: &want,
            aad: &aad,
        },
    );
    assert_eq!(opened.as_deref(), Ok(SUNSCREEN));
    let mut bad = want.clone();
    bad[0] ^= 0x80;
    assert!(
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &bad,
                    aad: &aad
                }
            )
            .is_err()
    );
}

/// draft-irtf-cfrg-xchacha-03, Appendix A.3.1: the AEAD_XChaCha20_Poly1305 example.
#[test]
fn draft_xchacha20_poly1305() {
    let key = hex(AEAD_KEY);
    let nonce = <[u8; 24]>::try_from(hex("404142434445464748494a4b4c4d4e4f5051525354555657"))
        .expect("24 bytes");
    let aad = hex(AEAD_AAD);
    let want = [
        hex(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
             731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
             2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
             21f9664c97637da9768812f615c68b13b52e",
        ),
        hex("c0875924c1c7987947deafd8780acf49"),
    ]
    .concat();
    assert_eq!(xchacha_seal(&key, &nonce, &aad, SUNSCREEN), want);
    assert_eq!(
        xchacha_open(&key, &nonce, &aad, &want).as_deref(),
        Some(SUNSCREEN)
    );
    // Tamper twins: ciphertext, tag, associated data and nonce.
    for i in [0, want.len() - 1] {
        let mut bad = want.clone();
        bad[i] ^= 1;
        assert!(xchacha_open(&key, &nonce, &aad, &bad).is_none(), "byte {i}");
    }
    let mut bad_aad = aad.clone();
    bad_aad[0] ^= 1;
    assert!(xchacha_open(&key, &nonce, &bad_aad, &want).is_none());
    let mut bad_nonce = nonce;
    bad_nonce[23] ^= 1;
    assert!(xchacha_open(&key, &bad_nonce, &aad, &want).is_none());
}

fn argon2id_rfc9106(password: &[u8]) -> [u8; 32] {
    let params = ParamsBuilder::new()
        .m_cost(32)
        .t_cost(3)
        .p_cost(4)
        .data(AssociatedData::new(&[0x04; 12]).expect("associated data"))
        .output_len(32)
        .build()
        .expect("params");
    let argon = Argon2::new_with_secret(&[0x03; 8], Algorithm::Argon2id, Version::V0x13, params)
        .expect("secret");
    let mut tag = [0u8; 32];
    argon
        .hash_password_into(password, &[0x02; 16], &mut tag)
        .expect("hash");
    tag
}

/// RFC 9106 §5.3: Argon2id, version 0x13, 32 KiB, 3 passes, 4 lanes, with secret and
/// associated data (the key-file KDF is Argon2id v0x13 from the same crate).
#[test]
fn rfc9106_argon2id() {
    let want = hex("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
    assert_eq!(argon2id_rfc9106(&[0x01; 32]).as_slice(), want);
    let mut other = [0x01; 32];
    other[31] = 0x00;
    assert_ne!(argon2id_rfc9106(&other).as_slice(), want, "tamper twin");
}
