//! Known-answer vectors: recomputes every value of `testdata/vectors/*.json` from its stated
//! inputs, byte for byte, and checks that every tamper twin fails with the named error.
//!
//! Each value is checked twice where the spec allows: against `warifu-core`, and against a
//! small re-implementation of `docs/PROTOCOL.md` over the bare primitives (SHA-256, HKDF,
//! HMAC, XChaCha20-Poly1305, Argon2id, base64url). A change to any primitive, label or layout
//! makes this test fail. Regenerate with `cargo run -p warifu-core --example gen_vectors`
//! only for a deliberate, versioned format change.

#[path = "../examples/gen_vectors/schema.rs"]
mod schema;

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use warifu_core::blom::{LANES, Master, id_to_field, vandermonde};
use warifu_core::field::{Fe, P};
use warifu_core::keyfile::{KdfParams, KeyFile};
use warifu_core::keysource::{Hybrid, KeySource, Predistributed, pairwise_key, predistribute};
use warifu_core::order::{Order, OrderForm};
use warifu_core::policy::{Field, Policy};
use warifu_core::rand::{Randomness, SeededRandom};
use warifu_core::sealed::{
    Disclosed, ForCarrier, ForIssuer, ForMerchant, ForwardedPart, SealedOrder, seal,
};
use warifu_core::secret::{Key32, Secret};
use warifu_core::{Error, PartyId, Role};

use schema::*;

type Check = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Compares two byte strings given as hex (case-insensitive) or raw bytes.
fn same_hex(what: &str, expected_hex: &str, actual: &[u8]) -> Check {
    check!(
        expected_hex.to_ascii_lowercase() == hex(actual),
        "{what}: expected {expected_hex}, computed {}",
        hex(actual)
    );
    Ok(())
}

fn bytes(what: &str, h: &str) -> Result<Vec<u8>, String> {
    unhex(h).ok_or_else(|| format!("{what}: bad hex"))
}

fn array<const N: usize>(what: &str, h: &str) -> Result<[u8; N], String> {
    bytes(what, h)?
        .try_into()
        .map_err(|_| format!("{what}: expected {N} bytes"))
}

fn fe(what: &str, h: &str) -> Result<Fe, String> {
    Fe::from_bytes(&array(what, h)?).ok_or_else(|| format!("{what}: not canonical"))
}

fn id(s: &str) -> Result<PartyId, String> {
    PartyId::parse(s).map_err(|e| format!("{s}: {e}"))
}

fn role(s: &str) -> Result<Role, String> {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("unknown role {s}"))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn fe_bytes(fes: &[Fe]) -> Vec<u8> {
    fes.iter().flat_map(|f| f.to_bytes()).collect()
}

fn kind(e: &Error) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

// ------------------------------------------------------------- the spec, re-implemented

/// The test random stream: block i = SHA-256("warifu/v1/test-rng" ‖ seed ‖ u64be(i)).
fn stream(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(&sha256(&[
            b"warifu/v1/test-rng",
            seed.as_bytes(),
            &i.to_be_bytes(),
        ]));
        i += 1;
    }
    out.truncate(len);
    out
}

/// Reference arithmetic mod p on plain integers.
fn r_add(a: u128, b: u128) -> u128 {
    (a + b) % P
}
fn r_sub(a: u128, b: u128) -> u128 {
    (a + P - b) % P
}
fn r_mul(a: u128, b: u128) -> u128 {
    let (mut acc, mut x, mut y) = (0u128, a % P, b % P);
    while y > 0 {
        if y & 1 == 1 {
            acc = r_add(acc, x);
        }
        x = r_add(x, x);
        y >>= 1;
    }
    acc
}
fn r_pow(a: u128, mut e: u128) -> u128 {
    let (mut acc, mut base) = (1u128, a % P);
    while e > 0 {
        if e & 1 == 1 {
            acc = r_mul(acc, base);
        }
        base = r_mul(base, base);
        e >>= 1;
    }
    acc
}

/// id → (counter, digest, element) for a lane.
fn r_id_to_field(id: &str, lane: u8) -> (u8, [u8; 32], u128) {
    for counter in 0..=u8::MAX {
        let d = sha256(&[
            b"warifu/v1/blom/id-to-field",
            &[lane, counter],
            id.as_bytes(),
        ]);
        let v = u128::from_le_bytes(d[..16].try_into().unwrap_or_default()) & P;
        if v != 0 && v != P {
            return (counter, d, v);
        }
    }
    unreachable!("256 degenerate hashes")
}

fn u16_prefixed(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn r_pairwise_info(scheme: u8, a: &str, b: &str) -> Vec<u8> {
    let (lo, hi) = if a.as_bytes() < b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut info = vec![scheme];
    u16_prefixed(&mut info, lo.as_bytes());
    u16_prefixed(&mut info, hi.as_bytes());
    info
}

fn r_hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<[u8; 32], String> {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .map_err(err("hkdf"))?;
    Ok(okm)
}

fn r_expand(prk: &[u8; 32], label: &[u8], role: u8, digest: &[u8; 32]) -> Result<[u8; 32], String> {
    let mut okm = [0u8; 32];
    let info = [label, &[role], digest].concat();
    Hkdf::<Sha256>::from_prk(prk)
        .map_err(err("prk"))?
        .expand(&info, &mut okm)
        .map_err(err("hkdf"))?;
    Ok(okm)
}

fn r_hmac(key: &[u8], msg: &[u8]) -> Result<[u8; 32], String> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(err("hmac"))?;
    mac.update(msg);
    Ok(mac.finalize().into_bytes().into())
}

fn r_open(key: &[u8; 32], nonce: &[u8; 24], ct: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
    XChaCha20Poly1305::new(&(*key).into())
        .decrypt(&XNonce::from(*nonce), Payload { msg: ct, aad })
        .map_err(|_| "independent AEAD decryption failed".to_string())
}

fn role_code(r: &str) -> Result<u8, String> {
    Ok(match r {
        "cardholder" => 0,
        "merchant" => 1,
        "issuer" => 2,
        "carrier" => 3,
        other => return Err(format!("role {other}")),
    })
}

fn scheme_code(s: &str) -> Result<u8, String> {
    Ok(match s {
        "blom" => 1,
        "predistributed" => 2,
        "hybrid" => 0x80,
        other => return Err(format!("scheme {other}")),
    })
}

/// The plaintext members that carry a field (docs/PROTOCOL.md, "Part plaintext").
fn members(f: Field) -> &'static [&'static str] {
    match f {
        Field::CardholderName => &["cardholder_name"],
        Field::CardholderAddress => &["cardholder_address"],
        Field::Telephone => &["telephone"],
        Field::Fax => &["fax"],
        Field::Card => &["card"],
        Field::ProductName | Field::Quantity | Field::ProductNumber => &["lines"],
        Field::Amount => &["lines", "amount", "currency"],
        Field::PaymentMethod => &["payment_method"],
        Field::DeliveryDestination => &["destination"],
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v[key]
        .as_str()
        .ok_or_else(|| format!("{key}: not a string"))
}

/// The header, built by hand from the form and the seal inputs.
fn r_header(v: &SealedVector, scheme: u8) -> Result<Vec<u8>, String> {
    let mut h = b"WRFS".to_vec();
    h.extend_from_slice(&[1, scheme]);
    u16_prefixed(&mut h, str_of(&v.form, "order_id")?.as_bytes());
    u16_prefixed(&mut h, v.cardholder.as_bytes());
    u16_prefixed(&mut h, str_of(&v.form, "merchant")?.as_bytes());
    u16_prefixed(&mut h, v.issuer.as_bytes());
    match v.form["carrier"].as_str() {
        Some(c) => {
            h.push(1);
            u16_prefixed(&mut h, c.as_bytes());
        }
        None => h.push(0),
    }
    h.extend_from_slice(&bytes("policy digest", &v.policy_digest_hex)?);
    h.extend_from_slice(&v.now.to_be_bytes());
    Ok(h)
}

// ------------------------------------------------------------- key sources of a file

struct World {
    master: Master,
    predist_seed: Option<String>,
    ids: Vec<PartyId>,
}

impl World {
    fn source(&self, owner: &str, kind: &str) -> Result<Box<dyn KeySource>, String> {
        let owner = id(owner)?;
        let blom = Box::new(self.master.personal_key(&owner));
        match kind {
            "blom" => Ok(blom),
            "hybrid" => Ok(Box::new(
                Hybrid::new(vec![blom, Box::new(self.table(&owner)?)]).map_err(err("hybrid"))?,
            )),
            other => Err(format!("unknown key source {other}")),
        }
    }

    fn table(&self, owner: &PartyId) -> Result<Predistributed, String> {
        let seed = self
            .predist_seed
            .as_deref()
            .ok_or("no predistributed seed")?;
        predistribute(&self.ids, &mut SeededRandom::new(seed.as_bytes()))
            .map_err(err("predistribute"))?
            .into_iter()
            .find(|t| t.owner() == owner)
            .ok_or_else(|| format!("no table for {owner}"))
    }
}

fn open_as(
    fwd: &ForwardedPart,
    role: Role,
    policy: &Policy,
    keys: &dyn KeySource,
) -> Result<Disclosed, Error> {
    match role {
        Role::Merchant => fwd.open::<ForMerchant>(policy, keys).map(|v| v.fields),
        Role::Issuer => fwd.open::<ForIssuer>(policy, keys).map(|v| v.fields),
        Role::Carrier => fwd.open::<ForCarrier>(policy, keys).map(|v| v.fields),
        Role::Cardholder => Err(Error::MissingPart("cardholder")),
    }
}

fn open_with_key(
    fwd: &ForwardedPart,
    role: Role,
    policy: &Policy,
    key: &Key32,
) -> Result<Disclosed, Error> {
    match role {
        Role::Merchant => fwd
            .open_with_key::<ForMerchant>(policy, key)
            .map(|v| v.fields),
        Role::Issuer => fwd
            .open_with_key::<ForIssuer>(policy, key)
            .map(|v| v.fields),
        Role::Carrier => fwd
            .open_with_key::<ForCarrier>(policy, key)
            .map(|v| v.fields),
        Role::Cardholder => Err(Error::MissingPart("cardholder")),
    }
}

// ------------------------------------------------------------- checks per section

fn check_primitives(p: &Primitives) -> Check {
    for v in &p.test_rng {
        let b = bytes("rng", &v.hex)?;
        let mut lib = vec![0u8; b.len()];
        SeededRandom::new(v.seed_utf8.as_bytes())
            .fill(&mut lib)
            .map_err(err("rng"))?;
        same_hex("test rng (library)", &v.hex, &lib)?;
        same_hex("test rng (spec)", &v.hex, &stream(&v.seed_utf8, b.len()))?;
    }
    for v in &p.field {
        let (a, b) = (fe("a", &v.a_hex)?, fe("b", &v.b_hex)?);
        let (ra, rb) = (a.value(), b.value());
        for (what, h, lib, reference) in [
            ("a+b", &v.sum_hex, a + b, r_add(ra, rb)),
            ("a-b", &v.difference_hex, a - b, r_sub(ra, rb)),
            ("a*b", &v.product_hex, a * b, r_mul(ra, rb)),
            ("1/a", &v.a_inverse_hex, a.invert(), r_pow(ra, P - 2)),
        ] {
            same_hex(what, h, &lib.to_bytes())?;
            same_hex(what, h, &reference.to_le_bytes())?;
        }
    }
    check!(
        !p.non_canonical_hex.is_empty(),
        "no non-canonical encodings"
    );
    for h in &p.non_canonical_hex {
        check!(
            Fe::from_bytes(&array(h, h)?).is_none(),
            "non-canonical {h} accepted"
        );
    }
    for v in &p.id_to_field {
        let (counter, digest, value) = r_id_to_field(&v.id, v.lane);
        check!(counter == v.counter, "{} lane {}: counter", v.id, v.lane);
        same_hex("id-to-field digest", &v.sha256_hex, &digest)?;
        same_hex("id-to-field (spec)", &v.s_hex, &value.to_le_bytes())?;
        check!(v.s_decimal == value.to_string(), "{}: decimal", v.id);
        let lib = id_to_field(&id(&v.id)?, v.lane as usize);
        same_hex("id-to-field (library)", &v.s_hex, &lib.to_bytes())?;
    }
    for v in &p.vandermonde {
        let s = id_to_field(&id(&v.id)?, v.lane as usize);
        let lib = vandermonde(s, v.k);
        check!(lib.len() == v.g_hex.len(), "vandermonde length");
        for (i, (h, g)) in v.g_hex.iter().zip(&lib).enumerate() {
            same_hex("vandermonde (library)", h, &g.to_bytes())?;
            same_hex(
                "vandermonde (spec)",
                h,
                &r_pow(s.value(), i as u128).to_le_bytes(),
            )?;
        }
    }
    for v in &p.policies {
        let policy = Policy::from_toml(&v.toml).map_err(err("policy"))?;
        same_hex("policy encoding", &v.encoding_hex, &policy.encode())?;
        // Spec: 11 pairs u8(code) ‖ u8(mask), merchant 1, issuer 2, carrier 4.
        let mut enc = Vec::new();
        for (code, f) in Field::ALL.into_iter().enumerate() {
            let mask = [(Role::Merchant, 1), (Role::Issuer, 2), (Role::Carrier, 4)]
                .into_iter()
                .filter(|(r, _)| policy.receives(*r, f))
                .fold(0u8, |m, (_, b)| m | b);
            enc.extend_from_slice(&[code as u8, mask]);
        }
        same_hex("policy encoding (spec)", &v.encoding_hex, &enc)?;
        same_hex("policy digest", &v.digest_hex, &policy.digest())?;
        same_hex(
            "policy digest (spec)",
            &v.digest_hex,
            &sha256(&[b"warifu/v1/policy", &enc]),
        )?;
    }
    Ok(())
}

fn check_blom(b: &BlomVectors, world: &World) -> Check {
    check!(b.lanes as usize == LANES, "lanes");
    let upper = world.master.upper();
    let n = b.k as usize + 1;
    check!(upper.len() == LANES * n * (n + 1) / 2, "master size");
    same_hex(
        "master digest",
        &b.master_upper_sha256_hex,
        &sha256(&[&fe_bytes(&upper)]),
    )?;
    // Spec: entries drawn from the stream, 16 bytes LE with the top bit cleared, p rejected.
    let s = stream(
        &b.master_seed_utf8,
        16 * (b.master_upper_head_hex.len() + 4),
    );
    let mut drawn = s
        .chunks_exact(16)
        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default()) & P)
        .filter(|v| *v != P);
    for (i, h) in b.master_upper_head_hex.iter().enumerate() {
        same_hex("master head (library)", h, &upper[i].to_bytes())?;
        same_hex(
            "master head (spec)",
            h,
            &drawn.next().unwrap_or(P).to_le_bytes(),
        )?;
    }
    if let Some(all) = &b.master_upper_hex {
        check!(all.len() == upper.len(), "master entry count");
        for (h, e) in all.iter().zip(&upper) {
            same_hex("master entry", h, &e.to_bytes())?;
        }
    }
    for p in &b.parties {
        let pid = id(&p.id)?;
        let key = world.master.personal_key(&pid);
        for lane in 0..LANES {
            same_hex("s", &p.s_hex[lane], &id_to_field(&pid, lane).to_bytes())?;
            for (h, e) in p.personal_key_head_hex[lane].iter().zip(key.lane(lane)) {
                same_hex("personal key head", h, &e.to_bytes())?;
            }
        }
        let all: Vec<Fe> = (0..LANES).flat_map(|l| key.lane(l).to_vec()).collect();
        same_hex(
            "personal key digest",
            &p.personal_key_sha256_hex,
            &sha256(&[&fe_bytes(&all)]),
        )?;
        if let Some(lanes) = &p.personal_key_hex {
            for (lane, hexes) in lanes.iter().enumerate() {
                // Spec: a = D·g as a plain matrix–vector product over the stored master.
                let g = vandermonde(fe("s", &p.s_hex[lane])?, b.k);
                for (i, h) in hexes.iter().enumerate() {
                    same_hex("personal key (library)", h, &key.lane(lane)[i].to_bytes())?;
                    let row = (0..n).fold(Fe::ZERO, |acc, j| {
                        acc + world.master.entry(lane, i, j) * g[j]
                    });
                    same_hex("personal key (spec)", h, &row.to_bytes())?;
                }
            }
        }
    }
    for pair in &b.pairs {
        let (a, bb) = (id(&pair.a)?, id(&pair.b)?);
        let (ka, kb) = (
            world.master.personal_key(&a),
            world.master.personal_key(&bb),
        );
        same_hex(
            "raw shared a→b",
            &pair.raw_shared_hex,
            &ka.raw_shared_bytes(&bb),
        )?;
        same_hex(
            "raw shared b→a",
            &pair.raw_shared_hex,
            &kb.raw_shared_bytes(&a),
        )?;
        // Spec: per lane Σ a(A)_i · s(B)^i.
        let raw: Vec<u8> = (0..LANES)
            .flat_map(|lane| {
                let g = vandermonde(id_to_field(&bb, lane), b.k);
                ka.lane(lane)
                    .iter()
                    .zip(&g)
                    .fold(Fe::ZERO, |acc, (x, y)| acc + *x * *y)
                    .to_bytes()
            })
            .collect();
        same_hex("raw shared (spec)", &pair.raw_shared_hex, &raw)?;
        let info = r_pairwise_info(1, &pair.a, &pair.b);
        same_hex("pairwise info", &pair.hkdf_info_hex, &info)?;
        let spec = r_hkdf(b"warifu/v1/pairwise-key", &raw, &info)?;
        same_hex("pairwise key (spec)", &pair.pairwise_key_hex, &spec)?;
        for (k, peer) in [(&ka, &bb), (&kb, &a)] {
            let lib = pairwise_key(k, peer).map_err(err("pairwise"))?;
            same_hex(
                "pairwise key (library)",
                &pair.pairwise_key_hex,
                lib.expose(),
            )?;
        }
    }
    Ok(())
}

fn check_key_sources(ks: &KeySourceVectors, world: &World) -> Check {
    let s = stream(&ks.predistributed_seed_utf8, 32 * ks.table.len());
    let mut at = 0;
    for (i, a) in ks.parties.iter().enumerate() {
        for b in &ks.parties[i + 1..] {
            let e = ks.table.get(at / 32).ok_or("table too short")?;
            check!(&e.a == a && &e.b == b, "table order at {a}, {b}");
            same_hex(
                "predistributed secret (spec)",
                &e.secret_hex,
                &s[at..at + 32],
            )?;
            let lib = world
                .table(&id(a)?)?
                .shared_secret(&id(b)?)
                .map_err(err("table"))?;
            same_hex("predistributed secret (library)", &e.secret_hex, &lib)?;
            at += 32;
        }
    }
    check!(at / 32 == ks.table.len(), "table length");
    for p in &ks.pairs {
        let secret = ks
            .table
            .iter()
            .find(|e| (e.a == p.a && e.b == p.b) || (e.a == p.b && e.b == p.a))
            .ok_or("no table entry")?;
        let secret = bytes("secret", &secret.secret_hex)?;
        let ikm = match p.scheme.as_str() {
            "predistributed" => secret,
            "hybrid" => {
                let raw = world
                    .master
                    .personal_key(&id(&p.a)?)
                    .raw_shared_bytes(&id(&p.b)?);
                [&[1u8, 0, 32][..], &raw, &[2, 0, 32], &secret].concat()
            }
            other => return Err(format!("scheme {other}")),
        };
        same_hex("source ikm (spec)", &p.ikm_hex, &ikm)?;
        let info = r_pairwise_info(scheme_code(&p.scheme)?, &p.a, &p.b);
        same_hex("source info", &p.hkdf_info_hex, &info)?;
        same_hex(
            "source key (spec)",
            &p.pairwise_key_hex,
            &r_hkdf(b"warifu/v1/pairwise-key", &ikm, &info)?,
        )?;
        for (owner, peer) in [(&p.a, &p.b), (&p.b, &p.a)] {
            let src: Box<dyn KeySource> = match p.scheme.as_str() {
                "hybrid" => world.source(owner, "hybrid")?,
                _ => Box::new(world.table(&id(owner)?)?),
            };
            let lib = pairwise_key(&*src, &id(peer)?).map_err(err("pairwise"))?;
            same_hex("source key (library)", &p.pairwise_key_hex, lib.expose())?;
        }
    }
    Ok(())
}

fn check_sealed(v: &SealedVector, world: &World) -> Check {
    let ctx = |e: String| format!("{}: {e}", v.name);
    check_sealed_inner(v, world).map_err(ctx)
}

fn check_sealed_inner(v: &SealedVector, world: &World) -> Check {
    let form: OrderForm = serde_json::from_value(v.form.clone()).map_err(err("form"))?;
    let order: Order = serde_json::from_value(v.order.clone()).map_err(err("order"))?;
    let cardholder = world.source(&v.cardholder, &v.key_source)?;
    let sealed = seal(
        &form,
        &order,
        &id(&v.issuer)?,
        &*cardholder,
        v.now,
        &mut SeededRandom::new(v.rng_seed_utf8.as_bytes()),
    )
    .map_err(err("seal"))?;

    // Library against the file.
    same_hex("binary", &v.binary_hex, &sealed.encode())?;
    check!(
        sealed.to_json() == v.json,
        "JSON form differs:\n{}\n{}",
        sealed.to_json(),
        v.json
    );
    same_hex("header", &v.header_hex, &sealed.header.encode())?;
    same_hex(
        "header digest",
        &v.header_digest_hex,
        &sealed.header.digest(),
    )?;
    same_hex("policy digest", &v.policy_digest_hex, &form.policy.digest())?;
    let decoded = SealedOrder::decode(&bytes("binary", &v.binary_hex)?).map_err(err("decode"))?;
    check!(decoded == sealed, "binary decode differs");
    let parsed = SealedOrder::from_json(&v.json).map_err(err("from_json"))?;
    check!(parsed == sealed, "JSON decode differs");

    // The spec against the file.
    let header = r_header(v, scheme_code(&v.key_source)?)?;
    same_hex("header (spec)", &v.header_hex, &header)?;
    let digest = sha256(&[b"warifu/v1/header", &header]);
    same_hex("header digest (spec)", &v.header_digest_hex, &digest)?;
    let mut aad = b"warifu/v1/part-aad".to_vec();
    aad.extend_from_slice(&header);
    aad.push(v.parts.len() as u8);
    let mut wire = header.clone();
    wire.push(v.parts.len() as u8);
    let nonces = stream(&v.rng_seed_utf8, 24 * v.parts.len());
    let expected_roles: &[&str] = if v.form["carrier"].is_null() {
        &["merchant", "issuer"]
    } else {
        &["merchant", "issuer", "carrier"]
    };
    check!(
        v.parts
            .iter()
            .map(|p| p.recipient.as_str())
            .eq(expected_roles.iter().copied()),
        "part roles"
    );
    let mut json_parts = Vec::new();
    for (i, p) in v.parts.iter().enumerate() {
        let code = role_code(&p.recipient)?;
        aad.push(code);
        aad.extend_from_slice(&bytes("commitment", &p.commitment_hex)?);
        let (nonce, ct) = (
            bytes("nonce", &p.nonce_hex)?,
            bytes("ct", &p.ciphertext_hex)?,
        );
        wire.push(code);
        wire.extend_from_slice(&nonce);
        wire.extend_from_slice(&bytes("commitment", &p.commitment_hex)?);
        wire.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        wire.extend_from_slice(&ct);
        same_hex("nonce (spec)", &p.nonce_hex, &nonces[24 * i..24 * i + 24])?;
        json_parts.push(json!({
            "recipient": p.recipient,
            "nonce": B64.encode(&nonce),
            "commitment": B64.encode(bytes("commitment", &p.commitment_hex)?),
            "ciphertext": B64.encode(&ct),
        }));
    }
    same_hex("aad (spec)", &v.aad_hex, &aad)?;
    same_hex("binary (spec)", &v.binary_hex, &wire)?;
    let json_spec = json!({
        "header": {
            "version": 1,
            "scheme": v.key_source,
            "order_id": v.form["order_id"],
            "cardholder": v.cardholder,
            "merchant": v.form["merchant"],
            "issuer": v.issuer,
            "carrier": v.form["carrier"],
            "policy_digest": B64.encode(bytes("policy digest", &v.policy_digest_hex)?),
            "created_at": v.now,
        },
        "parts": json_parts,
    });
    let json_file: Value = serde_json::from_str(&v.json).map_err(err("json"))?;
    check!(json_file == json_spec, "JSON form (spec): {json_spec}");

    for p in &v.parts {
        let r = role(&p.recipient)?;
        let peer = sealed.header.party(r).ok_or("no peer")?;
        check!(peer.as_str() == p.peer, "peer of {}", p.recipient);
        let pk = pairwise_key(&*cardholder, peer).map_err(err("pairwise"))?;
        same_hex("part pairwise key", &p.pairwise_key_hex, pk.expose())?;
        let prk = array::<32>("pairwise", &p.pairwise_key_hex)?;
        let code = role_code(&p.recipient)?;
        let ek = r_expand(&prk, b"warifu/v1/part-key", code, &digest)?;
        let ck = r_expand(&prk, b"warifu/v1/part-commit", code, &digest)?;
        same_hex("encrypt key (spec)", &p.encrypt_key_hex, &ek)?;
        same_hex("commit key (spec)", &p.commit_key_hex, &ck)?;
        let plain = r_open(
            &ek,
            &array("nonce", &p.nonce_hex)?,
            &bytes("ct", &p.ciphertext_hex)?,
            &aad,
        )?;
        check!(
            plain == p.plaintext.as_bytes(),
            "plaintext of {}",
            p.recipient
        );
        same_hex(
            "commitment (spec)",
            &p.commitment_hex,
            &r_hmac(&ck, &plain)?,
        )?;
        let expect = serde_json::to_vec(&Disclosed::from_order(&order, &form.policy, r))
            .map_err(err("disclosed"))?;
        check!(expect == plain, "plaintext of {} (library)", p.recipient);
        // Spec: the plaintext holds exactly the member names the policy gives the role.
        let pv: Value = serde_json::from_slice(&plain).map_err(err("plaintext"))?;
        let names: Vec<&str> = pv
            .as_object()
            .ok_or("object")?
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut want: Vec<&str> = form
            .policy
            .fields_for(r)
            .flat_map(members)
            .copied()
            .collect();
        want.sort_unstable();
        want.dedup();
        let mut got = names;
        got.sort_unstable();
        check!(
            got == want,
            "members of {}: {got:?} vs {want:?}",
            p.recipient
        );
    }

    for f in &v.forwarded {
        let r = role(&f.recipient)?;
        let fwd = sealed.forward(r).map_err(err("forward"))?;
        same_hex("forwarded binary", &f.binary_hex, &fwd.encode())?;
        let fj = serde_json::to_string(&fwd).map_err(err("forwarded json"))?;
        check!(fj == f.json, "forwarded JSON of {}", f.recipient);
        // Spec: header ‖ part ‖ u8(n) ‖ (u8 role ‖ commitment)* for the other parts.
        let mut w = header.clone();
        for p in v.parts.iter().filter(|p| p.recipient == f.recipient) {
            let ct = bytes("ct", &p.ciphertext_hex)?;
            w.push(role_code(&p.recipient)?);
            w.extend_from_slice(&bytes("nonce", &p.nonce_hex)?);
            w.extend_from_slice(&bytes("commitment", &p.commitment_hex)?);
            w.extend_from_slice(&(ct.len() as u32).to_be_bytes());
            w.extend_from_slice(&ct);
        }
        w.push((v.parts.len() - 1) as u8);
        for p in v.parts.iter().filter(|p| p.recipient != f.recipient) {
            w.push(role_code(&p.recipient)?);
            w.extend_from_slice(&bytes("commitment", &p.commitment_hex)?);
        }
        same_hex("forwarded binary (spec)", &f.binary_hex, &w)?;
        let holder = sealed.header.party(r).ok_or("holder")?;
        let keys = world.source(holder.as_str(), &v.key_source)?;
        for back in [
            ForwardedPart::decode(&bytes("fwd", &f.binary_hex)?).map_err(err("fwd decode"))?,
            serde_json::from_str(&f.json).map_err(err("fwd json"))?,
        ] {
            let d = open_as(&back, r, &form.policy, &*keys).map_err(err("open forwarded"))?;
            let view = v
                .views
                .iter()
                .find(|x| x.recipient == f.recipient)
                .ok_or("view")?;
            check!(
                serde_json::to_value(&d).map_err(err("view"))? == view.disclosed,
                "forwarded view of {}",
                f.recipient
            );
        }
    }
    check!(
        v.forwarded.len() == v.parts.len() - 1,
        "a forwarded form for every part but the merchant's"
    );

    check!(v.views.len() == v.parts.len(), "a view per part");
    for view in &v.views {
        let r = role(&view.recipient)?;
        let keys = world.source(&view.holder, &v.key_source)?;
        let d = open_as(
            &sealed.forward(r).map_err(err("forward"))?,
            r,
            &form.policy,
            &*keys,
        )
        .map_err(err("open"))?;
        check!(
            serde_json::to_value(&d).map_err(err("view"))? == view.disclosed,
            "view of {}",
            view.recipient
        );
        let part = v
            .parts
            .iter()
            .find(|p| p.recipient == view.recipient)
            .ok_or("part")?;
        let pv: Value = serde_json::from_str(&part.plaintext).map_err(err("plaintext"))?;
        check!(
            pv == view.disclosed,
            "view of {} equals its plaintext",
            view.recipient
        );
    }
    Ok(())
}

fn check_key_file(kf: &KeyFileVector, world: &World, file: &VectorFile) -> Check {
    let ctx = |e: String| format!("{}: {e}", kf.name);
    check_key_file_inner(kf, world, file).map_err(ctx)
}

fn check_key_file_inner(kf: &KeyFileVector, world: &World, file: &VectorFile) -> Check {
    let holder = kf.holder.as_deref().map(id).transpose()?;
    let content = match (kf.kind.as_str(), &holder) {
        ("master", None) => KeyFile::Master(
            Master::from_upper(world.master.k(), &world.master.upper()).map_err(err("master"))?,
        ),
        ("personal", Some(h)) => KeyFile::Personal(world.master.personal_key(h)),
        ("predistributed", Some(h)) => KeyFile::Predistributed(world.table(h)?),
        (k, _) => return Err(format!("kind {k}")),
    };
    let pass = kf.passphrase.as_deref().map(Secret::new);
    let params = kf.kdf.map(|k| KdfParams {
        m_cost: k.m_cost,
        t_cost: k.t_cost,
        p_cost: k.p_cost,
    });
    let protection = match (&pass, params) {
        (Some(p), Some(k)) => Some((p, k)),
        (None, None) => None,
        _ => return Err("passphrase and kdf go together".into()),
    };
    let seed = kf.rng_seed_utf8.clone().unwrap_or_default();
    let encoded = content
        .encode(protection, &mut SeededRandom::new(seed.as_bytes()))
        .map_err(err("encode"))?;
    check!(encoded.len() == kf.len, "length");
    same_hex("file digest", &kf.sha256_hex, &sha256(&[&encoded]))?;
    if let Some(h) = &kf.hex {
        same_hex("file", h, &encoded)?;
    }

    // Spec: magic ‖ version ‖ kind ‖ protection, then the body plain or sealed.
    check!(&encoded[..5] == b"WRFK\x01", "magic and version");
    let kind_code = match kf.kind.as_str() {
        "master" => 1,
        "personal" => 2,
        _ => 3,
    };
    check!(encoded[5] == kind_code, "kind code");
    let body = if let Some(k) = kf.kdf {
        check!(encoded[6] == 1, "protection code");
        let salt = stream(&seed, 40);
        check!(encoded[7..23] == salt[..16], "salt from the stream");
        let mut costs = Vec::new();
        for c in [k.m_cost, k.t_cost, k.p_cost] {
            costs.extend_from_slice(&c.to_be_bytes());
        }
        check!(encoded[23..35] == costs[..], "costs");
        check!(encoded[35..59] == salt[16..40], "nonce from the stream");
        let len = u32::from_be_bytes(encoded[59..63].try_into().map_err(err("len"))?) as usize;
        check!(encoded.len() == 63 + len, "sealed length");
        let mut key = [0u8; 32];
        let params = Params::new(k.m_cost, k.t_cost, k.p_cost, Some(32)).map_err(err("params"))?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(
                kf.passphrase.as_deref().unwrap_or_default().as_bytes(),
                &encoded[7..23],
                &mut key,
            )
            .map_err(err("argon2"))?;
        same_hex(
            "file key (spec)",
            kf.file_key_hex.as_deref().unwrap_or_default(),
            &key,
        )?;
        let nonce: [u8; 24] = encoded[35..59].try_into().map_err(err("nonce"))?;
        r_open(&key, &nonce, &encoded[63..], &encoded[..59])?
    } else {
        check!(encoded[6] == 0, "protection code");
        let len = u32::from_be_bytes(encoded[7..11].try_into().map_err(err("len"))?) as usize;
        check!(encoded.len() == 11 + len, "plain length");
        encoded[11..].to_vec()
    };
    if let Some(h) = &kf.body_hex {
        same_hex("body", h, &body)?;
    }
    // Spec: the body of each kind.
    let blom = file.blom.as_ref().ok_or("no blom section")?;
    let mut expect = Vec::new();
    match (kf.kind.as_str(), &holder) {
        ("master", _) => {
            expect.push(1);
            expect.extend_from_slice(&blom.k.to_be_bytes());
            expect.push(2);
            for h in blom.master_upper_hex.as_deref().ok_or("master entries")? {
                expect.extend_from_slice(&bytes("entry", h)?);
            }
        }
        ("personal", Some(h)) => {
            expect.push(1);
            u16_prefixed(&mut expect, h.as_str().as_bytes());
            expect.extend_from_slice(&blom.k.to_be_bytes());
            expect.push(2);
            let party = blom
                .parties
                .iter()
                .find(|p| p.id == h.as_str())
                .ok_or("party")?;
            let elements = &body[expect.len()..];
            same_hex(
                "key elements digest",
                &party.personal_key_sha256_hex,
                &sha256(&[elements]),
            )?;
            expect.extend_from_slice(elements);
        }
        (_, Some(h)) => {
            let ks = file.key_sources.as_ref().ok_or("no key sources")?;
            u16_prefixed(&mut expect, h.as_str().as_bytes());
            let mut peers: Vec<(&str, &str)> = ks
                .table
                .iter()
                .filter_map(|e| {
                    if e.a == h.as_str() {
                        Some((e.b.as_str(), e.secret_hex.as_str()))
                    } else if e.b == h.as_str() {
                        Some((e.a.as_str(), e.secret_hex.as_str()))
                    } else {
                        None
                    }
                })
                .collect();
            peers.sort_unstable();
            expect.extend_from_slice(&(peers.len() as u16).to_be_bytes());
            for (peer, secret) in peers {
                u16_prefixed(&mut expect, peer.as_bytes());
                expect.extend_from_slice(&bytes("secret", secret)?);
            }
        }
        _ => return Err("holder".into()),
    }
    check!(expect == body, "body (spec)");

    // Round trip: the decoded file gives the same keys.
    let back = KeyFile::decode(&encoded, pass.as_ref()).map_err(err("decode"))?;
    check!(back.kind_name() == content.kind_name(), "decoded kind");
    if let (KeyFile::Personal(a), KeyFile::Personal(b)) = (&back, &content) {
        let peer = id("merchant:shop.example")?;
        check!(
            pairwise_key(a, &peer).ok() == pairwise_key(b, &peer).ok(),
            "decoded key derives the same pairwise key"
        );
    }
    Ok(())
}

fn run_fail(f: &FailVector, world: Option<&World>, file: &VectorFile) -> Result<String, String> {
    let policy = match &f.policy_toml {
        Some(t) => Policy::from_toml(t).map_err(err("policy"))?,
        None => Policy::patent_default(),
    };
    let input = match &f.input_ref {
        Some(r) => file
            .key_files
            .iter()
            .find(|k| &k.name == r)
            .and_then(|k| k.hex.clone())
            .ok_or_else(|| format!("input_ref {r}"))?,
        None => f.input_hex.clone().unwrap_or_default(),
    };
    let input = bytes("input", &input)?;
    let text = f.input_text.clone().unwrap_or_default();
    let opener = || -> Result<(Role, Box<dyn KeySource>), String> {
        let w = world.ok_or("no keys in this file")?;
        Ok((
            role(f.open_as.as_deref().ok_or("open_as")?)?,
            w.source(
                f.holder.as_deref().ok_or("holder")?,
                f.key_source.as_deref().unwrap_or("blom"),
            )?,
        ))
    };
    let result: Result<(), Error> = match f.operation.as_str() {
        "parse_id" => PartyId::parse(&text).map(drop),
        "open_sealed" => {
            let (r, k) = opener()?;
            SealedOrder::decode(&input)
                .and_then(|s| s.forward(r))
                .and_then(|fw| open_as(&fw, r, &policy, &*k).map(drop))
        }
        "open_sealed_json" => {
            let (r, k) = opener()?;
            SealedOrder::from_json(&text)
                .and_then(|s| s.forward(r))
                .and_then(|fw| open_as(&fw, r, &policy, &*k).map(drop))
        }
        "open_forwarded" => {
            let (r, k) = opener()?;
            ForwardedPart::decode(&input).and_then(|fw| open_as(&fw, r, &policy, &*k).map(drop))
        }
        "open_forwarded_json" => {
            let (r, k) = opener()?;
            let fw: ForwardedPart = serde_json::from_str(&text).map_err(err("forwarded JSON"))?;
            open_as(&fw, r, &policy, &*k).map(drop)
        }
        "open_with_key" => {
            let r = role(f.open_as.as_deref().ok_or("open_as")?)?;
            let key = Key32::from_bytes(array("key", f.pairwise_key_hex.as_deref().unwrap_or(""))?);
            SealedOrder::decode(&input)
                .and_then(|s| s.forward(r))
                .and_then(|fw| open_with_key(&fw, r, &policy, &key).map(drop))
        }
        "decode_key_file" => {
            let pass = f.passphrase.as_deref().map(Secret::new);
            KeyFile::decode(&input, pass.as_ref()).map(drop)
        }
        other => return Err(format!("unknown operation {other}")),
    };
    match result {
        Ok(()) => Err(format!("{} was accepted", f.name)),
        Err(e) => Ok(kind(&e)),
    }
}

/// Checks one file; returns how many values and twins were checked.
fn check_file(file: &VectorFile) -> Result<usize, String> {
    check!(file.format == FORMAT, "format {}", file.format);
    let mut checked = 0;
    if let Some(p) = &file.primitives {
        check_primitives(p)?;
        checked += p.test_rng.len() + p.field.len() + p.id_to_field.len() + p.policies.len();
    }
    let world = match &file.blom {
        Some(b) => Some(World {
            master: Master::generate(b.k, &mut SeededRandom::new(b.master_seed_utf8.as_bytes()))
                .map_err(err("master"))?,
            predist_seed: file
                .key_sources
                .as_ref()
                .map(|k| k.predistributed_seed_utf8.clone()),
            ids: match &file.key_sources {
                Some(k) => k.parties.iter().map(|p| id(p)).collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
        }),
        None => None,
    };
    if let (Some(b), Some(w)) = (&file.blom, &world) {
        check_blom(b, w)?;
        checked += b.parties.len() + b.pairs.len();
    }
    if let (Some(ks), Some(w)) = (&file.key_sources, &world) {
        check_key_sources(ks, w)?;
        checked += ks.pairs.len();
    }
    for v in &file.sealed {
        check_sealed(
            v,
            world.as_ref().ok_or("sealed orders need a blom section")?,
        )?;
        checked += 1;
    }
    for kf in &file.key_files {
        check_key_file(
            kf,
            world.as_ref().ok_or("key files need a blom section")?,
            file,
        )?;
        checked += 1;
    }
    // Every vector has at least one tamper twin.
    let names = file
        .sealed
        .iter()
        .map(|s| s.name.as_str())
        .chain(file.key_files.iter().map(|k| k.name.as_str()));
    for name in names {
        check!(
            file.fail.iter().any(|f| f.twin_of == name),
            "{name} has no tamper twin"
        );
    }
    for f in &file.fail {
        check!(
            f.name.starts_with("fail_"),
            "{}: twin names start with fail_",
            f.name
        );
        let got = run_fail(f, world.as_ref(), file)?;
        check!(
            got == f.error,
            "{}: expected {}, got {got}",
            f.name,
            f.error
        );
        checked += 1;
    }
    Ok(checked)
}

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

fn load(path: &Path) -> VectorFile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vector_dir())
        .unwrap_or_else(|e| panic!("{}: {e}", vector_dir().display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_vector_file_recomputes_and_every_twin_fails() {
    let files = files();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in ["primitives.json", "blom_k4.json", "blom_k1024.json"] {
        assert!(names.iter().any(|n| n == expected), "{expected} is missing");
    }
    for path in files {
        let file = load(&path);
        match check_file(&file) {
            Ok(n) => {
                assert!(n > 0, "{}: nothing checked", path.display());
                println!("{}: {n} vectors and twins checked", path.display());
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn the_default_k_file_uses_the_default_k() {
    let file = load(&vector_dir().join("blom_k1024.json"));
    let b = file.blom.as_ref().expect("blom section");
    assert_eq!(b.k, warifu_core::blom::DEFAULT_K);
    assert!(
        b.master_upper_hex.is_none(),
        "the large master is stored as a digest"
    );
}

/// The checker itself must notice a changed value, a changed input and an accepted twin.
#[test]
fn the_checker_notices_changes() {
    let path = vector_dir().join("blom_k4.json");
    fn flip_hex(h: &mut String) {
        let c = if h.starts_with('0') { "1" } else { "0" };
        h.replace_range(0..1, c);
    }
    type Edit = Box<dyn Fn(&mut VectorFile)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "pairwise key",
            Box::new(|f| flip_hex(&mut f.blom.as_mut().expect("blom").pairs[0].pairwise_key_hex)),
        ),
        (
            "master seed",
            Box::new(|f| f.blom.as_mut().expect("blom").master_seed_utf8.push('x')),
        ),
        (
            "ciphertext",
            Box::new(|f| flip_hex(&mut f.sealed[0].parts[1].ciphertext_hex)),
        ),
        ("seal time", Box::new(|f| f.sealed[0].now += 1)),
        (
            "view",
            Box::new(|f| f.sealed[0].views[0].disclosed["amount"] = json!(1)),
        ),
        (
            "key file",
            Box::new(|f| f.key_files[1].passphrase = Some("another passphrase".into())),
        ),
        (
            "twin error",
            Box::new(|f| f.fail[0].error = "Truncated".into()),
        ),
        (
            "twin input",
            Box::new(|f| {
                let s = &f.sealed[0];
                let twin = f
                    .fail
                    .iter_mut()
                    .find(|t| t.operation == "open_sealed" && t.twin_of == s.name)
                    .expect("twin");
                twin.input_hex = Some(s.binary_hex.clone());
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut file = load(&path);
        edit(&mut file);
        match check_file(&file) {
            Ok(_) => panic!("a changed {what} went unnoticed"),
            Err(e) => println!(
                "changed {what}: {}",
                e.chars().take(160).collect::<String>()
            ),
        }
    }
    let mut file = load(&path);
    file.sealed.truncate(1);
    file.fail.retain(|f| f.twin_of != file.sealed[0].name);
    file.key_files.clear();
    let msg = check_file(&file).expect_err("a vector without a twin");
    assert!(msg.contains("no tamper twin"), "{msg}");
}
