//! Checks `testdata/vectors/v2/sealed.json` (PROTOCOL.md §18): the library reproduces every
//! sealed order byte for byte, and an independent derivation from the spec — plain HKDF, HMAC
//! and XChaCha20-Poly1305 from the pairwise key on — opens every part, finds it padded to a
//! bucket, and the parts of 15-, 16- and 19-digit cards and of short and long addresses have
//! equal lengths.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use warifu_core::blom::Master;
use warifu_core::keysource::pairwise_key;
use warifu_core::order::{Order, OrderForm};
use warifu_core::policy::Policy;
use warifu_core::rand::SeededRandom;
use warifu_core::sealed::{SealedOrder, seal_within};
use warifu_core::{PartyId, Role};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn lp(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn expand(prk: &[u8], info: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 32];
    Hkdf::<Sha256>::from_prk(prk)
        .expect("prk")
        .expand(info, &mut k)
        .expect("expand");
    k
}

fn role_code(r: &str) -> u8 {
    match r {
        "merchant" => 1,
        "issuer" => 2,
        "carrier" => 3,
        other => panic!("role {other}"),
    }
}

fn is_bucket(n: usize) -> bool {
    if n <= 4096 {
        n >= 256 && n.is_power_of_two()
    } else {
        n.is_multiple_of(4096)
    }
}

#[test]
fn version_2_vectors_reproduce_and_open_from_the_spec() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/vectors/v2/sealed.json"
    ))
    .expect("v2/sealed.json");
    let file: Value = serde_json::from_str(&text).expect("json");
    let seed = file["master_seed_utf8"].as_str().expect("seed");
    let master = Master::generate(4, &mut SeededRandom::new(seed.as_bytes())).expect("master");
    let cardholder = PartyId::parse(file["cardholder"].as_str().expect("ch")).expect("id");
    let ch_key = master.personal_key(&cardholder);
    let mut lengths: Vec<Vec<u64>> = Vec::new();
    let vectors = file["vectors"].as_array().expect("vectors");
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let form: OrderForm = serde_json::from_value(v["form"].clone()).expect("form");
        let order: Order = serde_json::from_value(v["order"].clone()).expect("order");
        let issuer = PartyId::parse(v["issuer"].as_str().expect("issuer")).expect("id");
        // The library against the file.
        let sealed = seal_within(
            &form,
            &order,
            &issuer,
            &Policy::patent_default(),
            &ch_key,
            v["now"].as_u64().expect("now"),
            &mut SeededRandom::new(v["rng_seed_utf8"].as_str().expect("seed").as_bytes()),
        )
        .expect("seal");
        let binary = unhex(v["binary_hex"].as_str().expect("binary"));
        assert_eq!(sealed.encode(), binary, "{name}: binary");
        let decoded = SealedOrder::decode(&binary).expect("decode");
        assert_eq!(decoded.header.version, 2);
        let header = unhex(v["header_hex"].as_str().expect("header"));
        assert_eq!(decoded.header.encode(), header);
        // The spec from here on, independent of the library.
        let digest: [u8; 32] = Sha256::new()
            .chain_update(b"warifu/v1/header")
            .chain_update(&header)
            .finalize()
            .into();
        assert_eq!(
            digest.to_vec(),
            unhex(v["header_digest_hex"].as_str().expect("d"))
        );
        let parts = v["parts"].as_array().expect("parts");
        let mut aad = b"warifu/v2/part-aad".to_vec();
        aad.extend_from_slice(&header);
        aad.push(parts.len() as u8);
        for p in parts {
            aad.push(role_code(p["recipient"].as_str().expect("r")));
            aad.extend(unhex(p["commitment_hex"].as_str().expect("c")));
        }
        let mut lens = Vec::new();
        for (p, part) in parts.iter().zip(&decoded.parts) {
            let role = p["recipient"].as_str().expect("recipient");
            let code = role_code(role);
            assert_eq!(part.recipient.code(), code);
            let k = unhex(p["pairwise_key_hex"].as_str().expect("k"));
            let peer = decoded
                .header
                .party(Role::from_code(code).expect("role"))
                .expect("peer");
            // The recipient derives the same K from its own key.
            let theirs = pairwise_key(&master.personal_key(peer), &cardholder).expect("K");
            assert_eq!(theirs.expose().to_vec(), k, "{name}/{role}: K");
            let mut info = Vec::new();
            lp(&mut info, b"warifu/v2/purpose");
            lp(&mut info, b"seal");
            let s = expand(&k, &info);
            assert_eq!(s.to_vec(), unhex(p["seal_key_hex"].as_str().expect("s")));
            let sub = |label: &[u8]| {
                let mut info = Vec::new();
                lp(&mut info, label);
                info.push(code);
                info.extend_from_slice(&digest);
                expand(&s, &info)
            };
            let (ek, ck) = (sub(b"warifu/v2/part-key"), sub(b"warifu/v2/part-commit"));
            let plaintext = XChaCha20Poly1305::new((&ek).into())
                .decrypt(
                    &XNonce::from(part.nonce.expect("a version-2 part has a nonce")),
                    Payload {
                        msg: &part.ciphertext,
                        aad: &aad,
                    },
                )
                .expect("the spec's keys open the part");
            assert!(
                is_bucket(plaintext.len()),
                "{name}/{role}: {}",
                plaintext.len()
            );
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&ck).expect("hmac");
            mac.update(&plaintext);
            assert_eq!(
                mac.finalize().into_bytes().to_vec(),
                part.commitment.to_vec()
            );
            let object: Value = serde_json::from_slice(&plaintext).expect("JSON and spaces");
            if role == "issuer" {
                assert_eq!(object["card"]["number"], v["order"]["card"]["number"]);
            }
            if role == "carrier" {
                assert_eq!(object["destination"], v["order"]["destination"]);
            }
            assert_eq!(
                p["ciphertext_len"].as_u64(),
                Some(part.ciphertext.len() as u64)
            );
            lens.push(part.ciphertext.len() as u64);
        }
        lengths.push(lens);
    }
    assert!(
        lengths.windows(2).all(|w| w[0] == w[1]),
        "part lengths differ: {lengths:?}"
    );
}
