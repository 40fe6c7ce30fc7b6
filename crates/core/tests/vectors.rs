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

use warifu_core::blom::{LANES, Master, PersonalKey, id_to_field, vandermonde};
use warifu_core::field::{Fe, P};
use warifu_core::keyfile::{KdfParams, KeyFile, SokKeyFile};
use warifu_core::keysource::{Hybrid, KeySource, Predistributed, pairwise_key, predistribute};
use warifu_core::order::{Order, OrderForm};
use warifu_core::policy::{Field, Policy};
use warifu_core::rand::{Randomness, SeededRandom};
use warifu_core::sealed::{
    Disclosed, FORMAT_V1, ForCarrier, ForIssuer, ForMerchant, ForwardedPart, SealedOrder,
    seal_version,
};
use warifu_core::secret::{Key32, Secret};
use warifu_core::session::{
    self, Challenge, Confirm, Direction, Hello, Initiator, MessageAuth, PendingHandshake, Session,
};
use warifu_core::sok::{self, SokMaster};
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

/// The field a `Malformed` or `Truncated` error names (the vectors' `field`).
fn field_of(e: &Error) -> Option<String> {
    match e {
        Error::Malformed { field, .. } | Error::Truncated(field) => Some((*field).to_owned()),
        _ => None,
    }
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

/// The scheme code of a key source named in the vectors.
fn scheme_code(s: &str) -> Result<u8, String> {
    Ok(match s {
        "blom" => 1,
        "predistributed" => 2,
        "sok" => 3,
        "blom+predistributed" | "blom+sok" => 0x80,
        other => return Err(format!("scheme {other}")),
    })
}

/// The JSON name of a scheme code.
fn scheme_name(code: u8) -> Result<&'static str, String> {
    Ok(match code {
        1 => "blom",
        2 => "predistributed",
        3 => "sok",
        0x80 => "hybrid",
        other => return Err(format!("scheme code {other}")),
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
    sok: Option<SokMaster>,
    predist_seed: Option<String>,
    ids: Vec<PartyId>,
}

impl World {
    fn source(&self, owner: &str, kind: &str) -> Result<Box<dyn KeySource>, String> {
        let owner = id(owner)?;
        let blom = Box::new(self.master.personal_key(&owner));
        match kind {
            "blom" => Ok(blom),
            "sok" => Ok(Box::new(self.sok()?.personal_key(&owner))),
            "blom+predistributed" => Ok(Box::new(
                Hybrid::new(vec![blom, Box::new(self.table(&owner)?)]).map_err(err("hybrid"))?,
            )),
            "blom+sok" => Ok(Box::new(
                sok::hybrid(
                    self.master.personal_key(&owner),
                    self.sok()?.personal_key(&owner),
                )
                .map_err(err("hybrid"))?,
            )),
            other => Err(format!("unknown key source {other}")),
        }
    }

    fn sok(&self) -> Result<&SokMaster, String> {
        self.sok
            .as_ref()
            .ok_or_else(|| "no SOK section".to_string())
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
            "blom+predistributed" => {
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
                "blom+predistributed" => world.source(owner, "blom+predistributed")?,
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
    // A vector's form may carry the 【0033】 variant: its cardholder allows the form's policy.
    // The version-1 vectors: nothing else writes version 1 (v2/sealed.json covers version 2).
    let sealed = seal_version(
        FORMAT_V1,
        &form,
        &order,
        &id(&v.issuer)?,
        &form.policy,
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
            "scheme": scheme_name(scheme_code(&v.key_source)?)?,
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
        // An order without a destination has no `destination`, whoever the policy gives it to.
        let mut want: Vec<&str> = form
            .policy
            .fields_for(r)
            .filter(|f| *f != Field::DeliveryDestination || order.destination.is_some())
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
        ("master", None) => AnyFile::Classic(KeyFile::Master(
            Master::from_upper(world.master.k(), &world.master.upper()).map_err(err("master"))?,
        )),
        ("personal", Some(h)) => AnyFile::Classic(KeyFile::Personal(world.master.personal_key(h))),
        ("predistributed", Some(h)) => AnyFile::Classic(KeyFile::Predistributed(world.table(h)?)),
        ("sok_master", None) => AnyFile::Sok(Box::new(SokKeyFile::Master(
            SokMaster::from_bytes(&world.sok()?.to_bytes()).map_err(err("sok master"))?,
        ))),
        ("sok_personal", Some(h)) => {
            AnyFile::Sok(Box::new(SokKeyFile::Personal(world.sok()?.personal_key(h))))
        }
        ("blom_sok_personal", Some(h)) => AnyFile::Sok(Box::new(SokKeyFile::Hybrid(
            world.master.personal_key(h),
            world.sok()?.personal_key(h),
        ))),
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
        "predistributed" => 3,
        "sok_master" => 4,
        "sok_personal" => 5,
        _ => 6,
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
        check!(encoded.len() == 11 + len + 32, "plain length");
        check!(
            encoded[11 + len..] == sha256(&[b"warifu/v1/keyfile-checksum", &encoded[..11 + len]]),
            "plain checksum"
        );
        encoded[11..11 + len].to_vec()
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
        ("personal", Some(h)) => expect = blom_personal_body(blom, h, &body)?,
        ("sok_master", _) => {
            expect.push(3);
            expect.extend_from_slice(&bytes("scalar", &sok_section(file)?.master_hex)?);
        }
        ("sok_personal", Some(h)) => expect = sok_personal_body(file, h)?,
        ("blom_sok_personal", Some(h)) => {
            // 0x80 ‖ bytes32(Blom personal body) ‖ bytes32(SOK personal body)
            let inner = body.get(5..).ok_or("short hybrid body")?;
            let blom_body = blom_personal_body(blom, h, inner)?;
            let sok_body = sok_personal_body(file, h)?;
            expect.push(0x80);
            expect.extend_from_slice(&(blom_body.len() as u32).to_be_bytes());
            expect.extend_from_slice(&blom_body);
            expect.extend_from_slice(&(sok_body.len() as u32).to_be_bytes());
            expect.extend_from_slice(&sok_body);
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
    let back = AnyFile::decode(&encoded, pass.as_ref()).map_err(err("decode"))?;
    check!(back.kind_name() == content.kind_name(), "decoded kind");
    let peer = id("merchant:shop.example")?;
    if let (Some(a), Some(b)) = (back.pairwise(&peer)?, content.pairwise(&peer)?) {
        check!(a == b, "decoded key derives the same pairwise key");
    }
    Ok(())
}

/// Expected Blom personal-key body: u8(1) ‖ str16(id) ‖ u32(k) ‖ u8(2) ‖ elements, the
/// elements taken from `actual` (the stored value is only their digest for large k).
fn blom_personal_body(blom: &BlomVectors, h: &PartyId, actual: &[u8]) -> Result<Vec<u8>, String> {
    let mut expect = vec![1u8];
    u16_prefixed(&mut expect, h.as_str().as_bytes());
    expect.extend_from_slice(&blom.k.to_be_bytes());
    expect.push(2);
    let n = 2 * (blom.k as usize + 1) * 16;
    let elements = actual
        .get(expect.len()..expect.len() + n)
        .ok_or("short Blom body")?;
    let party = blom
        .parties
        .iter()
        .find(|p| p.id == h.as_str())
        .ok_or("party")?;
    same_hex(
        "key elements digest",
        &party.personal_key_sha256_hex,
        &sha256(&[elements]),
    )?;
    expect.extend_from_slice(elements);
    Ok(expect)
}

fn sok_section(file: &VectorFile) -> Result<&SokVectors, String> {
    file.sok
        .as_ref()
        .ok_or_else(|| "no SOK section".to_string())
}

/// Expected SOK personal-key body: u8(3) ‖ str16(id) ‖ s·H1(id) ‖ s·H2(id).
fn sok_personal_body(file: &VectorFile, h: &PartyId) -> Result<Vec<u8>, String> {
    let party = sok_section(file)?
        .parties
        .iter()
        .find(|p| p.id == h.as_str())
        .ok_or("SOK party")?;
    let mut expect = vec![3u8];
    u16_prefixed(&mut expect, h.as_str().as_bytes());
    expect.extend_from_slice(&bytes("g1", &party.g1_key_hex)?);
    expect.extend_from_slice(&bytes("g2", &party.g2_key_hex)?);
    Ok(expect)
}

/// A key file of either family.
enum AnyFile {
    Classic(KeyFile),
    Sok(Box<SokKeyFile>),
}

impl AnyFile {
    fn encode(
        &self,
        pass: Option<(&Secret, KdfParams)>,
        rng: &mut dyn Randomness,
    ) -> Result<Vec<u8>, Error> {
        match self {
            AnyFile::Classic(f) => f.encode(pass, rng),
            AnyFile::Sok(f) => f.encode(pass, rng),
        }
    }

    /// Reads a file the way a party does: by its kind byte.
    fn decode(bytes: &[u8], pass: Option<&Secret>) -> Result<AnyFile, Error> {
        if SokKeyFile::is_sok_kind(bytes) {
            SokKeyFile::decode(bytes, pass).map(|f| AnyFile::Sok(Box::new(f)))
        } else {
            KeyFile::decode(bytes, pass).map(AnyFile::Classic)
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            AnyFile::Classic(f) => f.kind_name(),
            AnyFile::Sok(f) => f.kind_name(),
        }
    }

    /// The pairwise key with `peer`, for the files that hold a personal key.
    fn pairwise(&self, peer: &PartyId) -> Result<Option<Key32>, String> {
        let key = match self {
            AnyFile::Classic(KeyFile::Personal(k)) => pairwise_key(k, peer),
            AnyFile::Sok(f) => match &**f {
                SokKeyFile::Personal(k) => pairwise_key(k, peer),
                SokKeyFile::Hybrid(b, s) => {
                    let b = PersonalKey::from_parts(
                        b.id().clone(),
                        b.k(),
                        [b.lane(0).to_vec(), b.lane(1).to_vec()],
                    )
                    .map_err(err("copy"))?;
                    let h = sok::hybrid(b, s.clone()).map_err(err("hybrid"))?;
                    pairwise_key(&h, peer)
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        key.map(Some).map_err(err("pairwise"))
    }
}

/// Runs a twin's operation on its inputs: `Err` if the twin itself cannot be run, `Ok(Err)`
/// with the refusal, `Ok(Ok(()))` if it was accepted.
fn run_twin(
    f: &FailVector,
    world: Option<&World>,
    file: &VectorFile,
) -> Result<Result<(), Error>, String> {
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
        "record_open" => {
            let v = file
                .records
                .iter()
                .find(|v| v.name == f.twin_of)
                .ok_or("twin_of names no record")?;
            let input: Value = serde_json::from_str(&text).map_err(err("record input"))?;
            let (key, dir) = match input["direction"].as_str() {
                Some("request") => (&v.request_key_hex, Direction::Request),
                Some("response") => (&v.response_key_hex, Direction::Response),
                _ => return Err("direction".into()),
            };
            let key =
                session::record_key(&array("session key", key)?, dir).map_err(err("record key"))?;
            session::open_record(
                &key,
                &bytes("aad", input["aad_hex"].as_str().unwrap_or_default())?,
                &bytes("record", input["record_hex"].as_str().unwrap_or_default())?,
            )
            .map(drop)
        }
        op if op.starts_with("session_") => {
            let v = file
                .sessions
                .iter()
                .find(|v| v.name == f.twin_of)
                .ok_or("twin_of names no session")?;
            let input: Value = serde_json::from_str(&text).map_err(err("session input"))?;
            session_op(world.ok_or("no keys")?, v, op, &input)?
        }
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
            AnyFile::decode(&input, pass.as_ref()).map(drop)
        }
        other => return Err(format!("unknown operation {other}")),
    };
    Ok(result)
}

/// Runs a twin; returns the error's variant and field, or an error if it was accepted.
fn run_fail(
    f: &FailVector,
    world: Option<&World>,
    file: &VectorFile,
) -> Result<(String, Option<String>), String> {
    match run_twin(f, world, file)? {
        Ok(()) => Err(format!("{} was accepted", f.name)),
        Err(e) => Ok((kind(&e), field_of(&e))),
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
    let world = world_of(file)?;
    if let (Some(b), Some(w)) = (&file.blom, &world) {
        check_blom(b, w)?;
        checked += b.parties.len() + b.pairs.len();
    }
    check_rest(file, world.as_ref(), checked)
}

/// The keys of a file's deployment (from its seeds), if it has a Blom section.
fn world_of(file: &VectorFile) -> Result<Option<World>, String> {
    Ok(match &file.blom {
        Some(b) => Some(World {
            master: Master::generate(b.k, &mut SeededRandom::new(b.master_seed_utf8.as_bytes()))
                .map_err(err("master"))?,
            sok: match &file.sok {
                Some(sv) => Some(
                    SokMaster::generate(&mut SeededRandom::new(sv.master_seed_utf8.as_bytes()))
                        .map_err(err("SOK master"))?,
                ),
                None => None,
            },
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
    })
}

fn check_rest(
    file: &VectorFile,
    world: Option<&World>,
    mut checked: usize,
) -> Result<usize, String> {
    if let (Some(ks), Some(w)) = (&file.key_sources, world) {
        check_key_sources(ks, w)?;
        checked += ks.pairs.len();
    }
    if let Some(sv) = &file.sok {
        let (Some(w), Some(b)) = (world, &file.blom) else {
            return Err("the SOK section needs a blom section".into());
        };
        check_sok(sv, b, w)?;
        checked += sv.parties.len() + sv.pairs.len();
    }
    for v in &file.sessions {
        check_session(v, world.ok_or("sessions need a blom section")?)
            .map_err(|e| format!("{}: {e}", v.name))?;
        checked += 1;
    }
    for v in &file.records {
        check_record(v).map_err(|e| format!("{}: {e}", v.name))?;
        checked += 1;
    }
    for v in &file.sealed {
        check_sealed(v, world.ok_or("sealed orders need a blom section")?)?;
        checked += 1;
    }
    for kf in &file.key_files {
        check_key_file(kf, world.ok_or("key files need a blom section")?, file)?;
        checked += 1;
    }
    // Every vector has at least one tamper twin.
    let names = file
        .sealed
        .iter()
        .map(|s| s.name.as_str())
        .chain(file.key_files.iter().map(|k| k.name.as_str()))
        .chain(file.sessions.iter().map(|k| k.name.as_str()))
        .chain(file.records.iter().map(|k| k.name.as_str()));
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
        let (got, field) = run_fail(f, world, file)?;
        check!(
            got == f.error,
            "{}: expected {}, got {got}",
            f.name,
            f.error
        );
        check!(
            field == f.field,
            "{}: expected {} on the field {:?}, got {got} on {field:?}",
            f.name,
            f.error,
            f.field
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
    fn key_file<'a>(f: &'a mut VectorFile, name: &str) -> &'a mut KeyFileVector {
        f.key_files
            .iter_mut()
            .find(|k| k.name == name)
            .expect("key file")
    }
    fn twin<'a>(f: &'a mut VectorFile, name: &str) -> &'a mut FailVector {
        f.fail.iter_mut().find(|t| t.name == name).expect("twin")
    }
    const FLIP: &str = "fail_k4_blom_with_carrier_flip_issuer_ciphertext";
    type Edit = Box<dyn Fn(&mut VectorFile)>;
    // (what, edit, a text the failure must mention)
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "pairwise key",
            Box::new(|f| flip_hex(&mut f.blom.as_mut().expect("blom").pairs[0].pairwise_key_hex)),
            "pairwise key",
        ),
        (
            "master seed",
            Box::new(|f| f.blom.as_mut().expect("blom").master_seed_utf8.push('x')),
            "master",
        ),
        (
            "ciphertext",
            Box::new(|f| flip_hex(&mut f.sealed[0].parts[1].ciphertext_hex)),
            "k4_blom_with_carrier",
        ),
        (
            "seal time",
            Box::new(|f| f.sealed[0].now += 1),
            "k4_blom_with_carrier",
        ),
        (
            "view",
            Box::new(|f| f.sealed[0].views[0].disclosed["amount"] = json!(1)),
            "view of merchant",
        ),
        (
            "key file passphrase",
            Box::new(|f| key_file(f, "k4_personal_sealed").passphrase = Some("other".into())),
            "k4_personal_sealed",
        ),
        (
            "SOK pairing value",
            Box::new(|f| flip_hex(&mut f.sok.as_mut().expect("sok").pairs[0].gt_hex)),
            "GT",
        ),
        (
            "session request MAC input",
            Box::new(|f| flip_hex(&mut f.sessions[0].exchanges[0].request_mac_input_hex)),
            "request MAC input",
        ),
        (
            "twin error",
            Box::new(|f| twin(f, FLIP).error = "Truncated".into()),
            "expected Truncated, got Decrypt",
        ),
        (
            "twin input",
            Box::new(|f| {
                let honest = f.sealed[0].binary_hex.clone();
                twin(f, FLIP).input_hex = Some(honest);
            }),
            "was accepted",
        ),
        (
            "session twin",
            Box::new(|f| {
                let name = format!("fail_{}_hello_stale", f.sessions[0].name);
                let t = twin(f, &name);
                let text = t.input_text.take().expect("input");
                let mut v: Value = serde_json::from_str(&text).expect("json");
                v["now"] = json!(v["now"].as_u64().expect("now") - 301);
                t.input_text = Some(v.to_string());
            }),
            "was accepted",
        ),
    ];
    for (what, edit, mention) in edits {
        let mut file = load(&path);
        edit(&mut file);
        match check_file(&file) {
            Ok(_) => panic!("a changed {what} went unnoticed"),
            Err(e) => assert!(
                e.contains(mention),
                "a changed {what} failed for another reason: {e}"
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

// ------------------------------------------------------------- every twin, for its reason

/// What the name of each tamper twin says must stop it (the text after `fail_<twin_of>_`, or
/// after `fail_` for identifiers): the error variant and, for `Malformed` and `Truncated`, the
/// field. Written from docs/PROTOCOL.md, independently of the generator: a twin named here
/// that fails otherwise (a stale checksum, the wrong policy, a missing checksum) is a bug.
const REASONS: &[(&str, &str, Option<&str>)] = &[
    // Identifiers (§2).
    ("id_control_character", "InvalidIdentifier", None),
    ("id_empty", "InvalidIdentifier", None),
    ("id_empty_name", "InvalidIdentifier", None),
    ("id_no_role", "InvalidIdentifier", None),
    ("id_roles_are_lowercase", "InvalidIdentifier", None),
    ("id_too_long", "InvalidIdentifier", None),
    ("id_unknown_role", "InvalidIdentifier", None),
    ("id_whitespace_in_the_name", "InvalidIdentifier", None),
    // Sealed orders and forwarded parts (§8–§10).
    ("flip_issuer_ciphertext", "Decrypt", None),
    ("flip_merchant_tag", "Decrypt", None),
    ("flip_issuer_nonce", "Decrypt", None),
    ("flip_issuer_commitment_open_merchant", "Decrypt", None),
    ("flip_own_commitment", "Decrypt", None),
    ("swap_part_bodies", "Decrypt", None),
    ("reorder_parts", "Malformed", Some("parts")),
    ("header_created_at", "Decrypt", None),
    ("header_order_id", "Decrypt", None),
    ("header_policy_digest", "HeaderMismatch", None),
    ("carrier_dropped", "Decrypt", None),
    ("spliced_issuer_part", "Decrypt", None),
    ("version", "UnsupportedVersion", None),
    ("magic", "Malformed", Some("magic")),
    ("truncated", "Truncated", None),
    ("trailing", "TrailingBytes", None),
    ("wrong_key", "Decrypt", None),
    ("wrong_holder", "HeaderMismatch", None),
    ("cardholder_opens", "NoPairwiseKey", None),
    ("other_policy", "HeaderMismatch", None),
    ("no_carrier_part", "MissingPart", None),
    ("json_flip_issuer_ciphertext", "Decrypt", None),
    ("json_unknown_field", "Malformed", Some("sealed order JSON")),
    ("json_version", "UnsupportedVersion", None),
    ("forwarded_flip_other_commitment", "Decrypt", None),
    (
        "forwarded_missing_commitment",
        "Malformed",
        Some("commitments"),
    ),
    ("forwarded_wrong_recipient", "MissingPart", None),
    ("forwarded_foreign_commitment", "Decrypt", None),
    ("forwarded_json_flip_ciphertext", "Decrypt", None),
    // Key files (§11).
    ("wrong_passphrase", "WrongPassphrase", None),
    ("no_passphrase", "PassphraseRequired", None),
    ("flip_last_byte", "WrongPassphrase", None),
    ("flip_salt", "WrongPassphrase", None),
    ("hostile_memory_cost", "Malformed", Some("kdf parameters")),
    ("flip_checksum", "Malformed", Some("checksum")),
    ("flip_body_checksum", "Malformed", Some("checksum")),
    ("non_canonical_element", "Malformed", Some("key element")),
    ("lanes", "Malformed", Some("lanes")),
    ("k_zero", "Malformed", Some("k")),
    ("huge_k", "Malformed", Some("k")),
    ("duplicate_peer", "Malformed", Some("peer")),
    ("zero_scalar", "Malformed", Some("SOK master")),
    ("scalar_too_large", "Malformed", Some("SOK master")),
    ("flip_g1", "Malformed", Some("SOK G1 key")),
    ("g1_infinity", "Malformed", Some("SOK G1 key")),
    ("mixed_halves", "Malformed", Some("SOK personal key")),
    // Handshakes and sessions (§12).
    ("hello_version", "UnsupportedVersion", None),
    ("hello_wrong_responder", "HeaderMismatch", None),
    ("hello_stale", "Stale", None),
    ("challenge_flipped_mac", "Decrypt", None),
    ("challenge_from_impostor", "Decrypt", None),
    ("confirm_from_impostor", "Decrypt", None),
    ("confirm_late", "Stale", None),
    ("confirm_reflected", "Decrypt", None),
    ("confirm_wrong_nonce", "Decrypt", None),
    ("request_body_changed", "Decrypt", None),
    ("request_other_session", "Decrypt", None),
    ("request_path_changed", "Decrypt", None),
    ("request_replayed", "Replay", None),
    ("request_stale", "Stale", None),
    ("response_as_request", "Decrypt", None),
    ("request_as_response", "Decrypt", None),
    ("response_moved", "Decrypt", None),
    ("response_status_changed", "Decrypt", None),
    // Session records (§12.4).
    ("flipped_ciphertext", "Decrypt", None),
    ("flipped_nonce", "Decrypt", None),
    ("flipped_tag", "Decrypt", None),
    ("short_record", "Decrypt", None),
    ("other_seq", "Decrypt", None),
    ("wrong_direction", "Decrypt", None),
];

/// A plain key file (protection 0) of whole layout with its checksum recomputed (§11.1).
fn rechecksum(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() < 11 || b[6] != 0 {
        return b;
    }
    let covered = 11 + u32::from_be_bytes([b[7], b[8], b[9], b[10]]) as usize;
    if b.len() == covered + 32 {
        let sum = sha256(&[b"warifu/v1/keyfile-checksum", &b[..covered]]);
        b[covered..].copy_from_slice(&sum);
    }
    b
}

/// The twin re-made valid in everything but what its name says: the untampered input, the
/// right holder, key, recipient, policy or passphrase. `None` when nothing else can be valid
/// (the carrier asking an order without a carrier) or the twin is a handshake message.
fn control(f: &FailVector, suffix: &str, file: &VectorFile) -> Result<Option<FailVector>, String> {
    let mut c = f.clone();
    if f.operation == "decode_key_file" {
        let kf = file
            .key_files
            .iter()
            .find(|k| k.name == f.twin_of)
            .ok_or("twin_of names no key file")?;
        c.input_hex = kf.hex.clone();
        c.input_ref = None;
        c.passphrase = kf.passphrase.clone();
        return Ok(Some(c));
    }
    if f.operation == "record_open" {
        // The record as sealed, opened in its own direction under its own associated data.
        let v = file
            .records
            .iter()
            .find(|v| v.name == f.twin_of)
            .ok_or("twin_of names no record")?;
        c.input_text = Some(
            json!({"direction": v.direction, "aad_hex": v.aad_hex, "record_hex": v.record_hex})
                .to_string(),
        );
        return Ok(Some(c));
    }
    if !f.operation.starts_with("open_") {
        return Ok(None);
    }
    let v = file
        .sealed
        .iter()
        .find(|v| v.name == f.twin_of)
        .ok_or("twin_of names no sealed order")?;
    let form: OrderForm = serde_json::from_value(v.form.clone()).map_err(err("form"))?;
    let role_name = f.open_as.clone().unwrap_or_default();
    let holder_of = |role: &str| {
        v.views
            .iter()
            .find(|w| w.recipient == role)
            .map(|w| w.holder.clone())
    };
    // The policy sealed in the header, but for the twin that names another.
    let policy = match &f.policy_toml {
        Some(t) => Policy::from_toml(t).map_err(err("policy"))?,
        None => Policy::patent_default(),
    };
    if suffix == "other_policy" {
        check!(
            policy != form.policy,
            "{}: opened under its own policy",
            f.name
        );
    } else {
        check!(
            policy == form.policy,
            "{}: not opened under the policy its order was sealed under",
            f.name
        );
    }
    c.policy_toml = (form.policy != Policy::patent_default()).then(|| form.policy.to_toml());
    match (f.operation.as_str(), suffix) {
        (_, "no_carrier_part") => return Ok(None),
        ("open_with_key", _) => {
            let part = v
                .parts
                .iter()
                .find(|p| p.recipient == role_name)
                .ok_or("part")?;
            c.pairwise_key_hex = Some(part.pairwise_key_hex.clone());
        }
        (_, "wrong_holder" | "cardholder_opens") => c.holder = holder_of(&role_name),
        ("open_forwarded", "forwarded_wrong_recipient") => {
            c.open_as = Some("issuer".into());
            c.holder = holder_of("issuer");
        }
        (_, "other_policy") => {}
        ("open_sealed", _) => c.input_hex = Some(v.binary_hex.clone()),
        ("open_sealed_json", _) => c.input_text = Some(v.json.clone()),
        ("open_forwarded" | "open_forwarded_json", _) => {
            let fwd = v
                .forwarded
                .iter()
                .find(|x| x.recipient == role_name)
                .ok_or("forwarded")?;
            c.input_hex = Some(fwd.binary_hex.clone());
            c.input_text = Some(fwd.json.clone());
        }
        (op, _) => return Err(format!("{}: no control for {op}", f.name)),
    }
    Ok(Some(c))
}

/// Every twin of a file: its name has a reason in [`REASONS`], the vector expects exactly that
/// reason, the twin re-made valid in every other respect (a plain key file's checksum
/// recomputed, its order's own policy supplied) still fails with it, and its control — the
/// same operation without the named change — succeeds.
fn check_reasons(file: &VectorFile) -> Result<usize, String> {
    let world = world_of(file)?;
    let mut n = 0;
    for f in &file.fail {
        let prefix = format!("fail_{}_", f.twin_of);
        let suffix = if f.operation == "parse_id" {
            f.name.strip_prefix("fail_")
        } else {
            f.name.strip_prefix(&prefix)
        }
        .ok_or_else(|| format!("{}: not named fail_<twin_of>_<reason>", f.name))?;
        let &(_, error, field) = REASONS
            .iter()
            .find(|(s, ..)| *s == suffix)
            .ok_or_else(|| format!("{}: the reason {suffix:?} is not in REASONS", f.name))?;
        let field = field.map(str::to_owned);
        check!(
            f.error == error && (field.is_none() || f.field == field),
            "{}: the vector expects {} {:?}; its name says {error} {field:?}",
            f.name,
            f.error,
            f.field
        );
        // Re-made valid in every other respect: its order's own policy (checked here), the
        // checksum of a plain key file.
        let control = control(f, suffix, file)?;
        let mut remade = f.clone();
        if let Some(h) = &f.input_hex
            && f.operation == "decode_key_file"
            && !suffix.contains("checksum")
        {
            let fixed = rechecksum(bytes("input", h)?);
            check!(
                hex(&fixed) == *h,
                "{}: its checksum is stale, so the checksum stops it, not {suffix}",
                f.name
            );
            remade.input_hex = Some(hex(&fixed));
        }
        let (got, got_field) = run_fail(&remade, world.as_ref(), file)?;
        check!(
            got == error && (field.is_none() || got_field == field),
            "{}: re-made valid but for {suffix}, it fails with {got} {got_field:?}, not {error} \
             {field:?}",
            f.name
        );
        if let Some(c) = control
            && let Err(e) = run_twin(&c, world.as_ref(), file)?
        {
            return Err(format!(
                "{}: without the change its name says, it still fails ({e}): it does not \
                     test {suffix}",
                f.name
            ));
        }
        n += 1;
    }
    Ok(n)
}

#[test]
fn every_twin_fails_for_exactly_the_reason_it_names() {
    for path in files() {
        let file = load(&path);
        match check_reasons(&file) {
            Ok(n) => println!("{}: {n} twins fail for their named reason", path.display()),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

/// The reason check notices a twin stopped by something else than its name says.
#[test]
fn the_reason_check_notices_a_twin_stopped_by_something_else() {
    let path = vector_dir().join("blom_k4.json");
    // A plain key file with an element made non-canonical but the checksum left stale.
    let mut file = load(&path);
    let t = file
        .fail
        .iter_mut()
        .find(|t| t.name == "fail_k4_personal_plain_non_canonical_element")
        .expect("twin");
    let mut b = unhex(t.input_hex.as_deref().expect("hex")).expect("hex");
    let last = b.len() - 1;
    b[last] ^= 1;
    t.input_hex = Some(hex(&b));
    let e = check_reasons(&file).expect_err("a stale checksum");
    assert!(e.contains("checksum is stale"), "{e}");
    // A custom-policy twin opened under the default policy.
    let mut file = load(&path);
    let t = file
        .fail
        .iter_mut()
        .find(|t| {
            t.name.starts_with("fail_k4_blom_custom_policy") && t.name.ends_with("_wrong_key")
        })
        .expect("twin");
    t.policy_toml = None;
    let e = check_reasons(&file).expect_err("the default policy");
    assert!(e.contains("not opened under the policy"), "{e}");
}

// ------------------------------------------------------------- SOK and sessions

/// (p¹² − 1)/r · r + 1 = p¹² for the exponent of [`schema::TEXTBOOK_FINAL_EXPONENT_HEX`], in
/// schoolbook arithmetic on 32-bit limbs (little-endian).
fn textbook_exponent_is_right() -> Check {
    fn limbs(h: &str) -> Vec<u64> {
        let b =
            unhex(&format!("{}{h}", if h.len() % 2 == 1 { "0" } else { "" })).unwrap_or_default();
        b.rchunks(4)
            .map(|c| c.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
            .collect()
    }
    fn mul(a: &[u64], b: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &y) in b.iter().enumerate() {
                let t = out[i + j] + x * y + carry;
                out[i + j] = t & 0xffff_ffff;
                carry = t >> 32;
            }
            out[i + b.len()] += carry;
        }
        while out.last() == Some(&0) {
            out.pop();
        }
        out
    }
    let p = limbs(
        "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
    );
    let r = limbs("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001");
    let mut p12 = vec![1u64];
    for _ in 0..12 {
        p12 = mul(&p12, &p);
    }
    let mut er = mul(&limbs(schema::TEXTBOOK_FINAL_EXPONENT_HEX), &r);
    // + 1
    let mut i = 0;
    loop {
        er[i] += 1;
        if er[i] >> 32 == 0 {
            break;
        }
        er[i] &= 0xffff_ffff;
        i += 1;
    }
    check!(er == p12, "the textbook exponent is not (p^12 - 1)/r");
    Ok(())
}

/// e(g1, g2): the textbook reduced ate pairing f^((p¹² − 1)/r) and Warifu's GT (blst's final
/// exponentiation), which is its cube (§5.4).
fn check_generator_pairing(sv: &SokVectors) -> Check {
    textbook_exponent_is_right()?;
    let one = scalar(1);
    let g1: blst::blst_p1_affine = blst::min_pk::SecretKey::from_bytes(&one)
        .map_err(blst_err)?
        .sk_to_pk()
        .into();
    let g2: blst::blst_p2_affine = blst::min_sig::SecretKey::from_bytes(&one)
        .map_err(blst_err)?
        .sk_to_pk()
        .into();
    let gt = blst::blst_fp12::miller_loop(&g2, &g1).final_exp();
    let textbook = textbook_pairing(&g2, &g1);
    same_hex("e(g1, g2)", &sv.pairing_generators_hex, &gt.to_bendian())?;
    same_hex(
        "e(g1, g2), textbook",
        &sv.pairing_generators_textbook_hex,
        &textbook.to_bendian(),
    )?;
    check!(
        textbook * textbook * textbook == gt,
        "GT is not the textbook pairing cubed"
    );
    let r = unhex("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001")
        .unwrap_or_default();
    check!(
        fp12_pow(&textbook, &r) == blst::blst_fp12::default()
            && textbook != blst::blst_fp12::default(),
        "the textbook e(g1, g2) is not of order r"
    );
    Ok(())
}

fn scalar(v: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[31] = v;
    b
}

fn blst_err(e: blst::BLST_ERROR) -> String {
    format!("blst: {e:?}")
}

fn check_sok(sv: &SokVectors, blom: &BlomVectors, world: &World) -> Check {
    // Spec: 32 bytes of the stream, top bit cleared, redrawn until 0 < s < r.
    let st = stream(&sv.master_seed_utf8, 32 * 8);
    let drawn = st
        .chunks_exact(32)
        .map(|c| {
            let mut b: [u8; 32] = c.try_into().unwrap_or_default();
            b[0] &= 0x7f;
            b
        })
        .find(|b| blst::min_pk::SecretKey::from_bytes(b).is_ok())
        .ok_or("no scalar in the stream")?;
    same_hex("SOK master (spec)", &sv.master_hex, &drawn)?;
    same_hex(
        "SOK master (library)",
        &sv.master_hex,
        &world.sok()?.to_bytes()[..],
    )?;
    check!(
        sv.dst_g1 == "WARIFU-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
            && sv.dst_g1.as_bytes() == sok::DST_G1,
        "DST G1"
    );
    check!(
        sv.dst_g2 == "WARIFU-V01-CS01-with-BLS12381G2_XMD:SHA-256_SSWU_RO_"
            && sv.dst_g2.as_bytes() == sok::DST_G2,
        "DST G2"
    );
    check_generator_pairing(sv)?;
    let (d1, d2) = (sv.dst_g1.as_bytes(), sv.dst_g2.as_bytes());
    // 1·H(m) is H(m): the hashes from the signing API with the scalar 1.
    let one1 = blst::min_sig::SecretKey::from_bytes(&scalar(1)).map_err(blst_err)?;
    let one2 = blst::min_pk::SecretKey::from_bytes(&scalar(1)).map_err(blst_err)?;
    let s1 = blst::min_sig::SecretKey::from_bytes(&drawn).map_err(blst_err)?;
    let s2 = blst::min_pk::SecretKey::from_bytes(&drawn).map_err(blst_err)?;
    for p in &sv.parties {
        let m = p.id.as_bytes();
        same_hex("H1", &p.h1_hex, &one1.sign(m, d1, &[]).compress())?;
        same_hex("H2", &p.h2_hex, &one2.sign(m, d2, &[]).compress())?;
        same_hex(
            "s·H1 (spec)",
            &p.g1_key_hex,
            &s1.sign(m, d1, &[]).compress(),
        )?;
        same_hex(
            "s·H2 (spec)",
            &p.g2_key_hex,
            &s2.sign(m, d2, &[]).compress(),
        )?;
        let key = world.sok()?.personal_key(&id(&p.id)?);
        same_hex("s·H1 (library)", &p.g1_key_hex, &key.g1_bytes())?;
        same_hex("s·H2 (library)", &p.g2_key_hex, &key.g2_bytes())?;
    }
    for pair in &sv.pairs {
        let (a, b) = (id(&pair.a)?, id(&pair.b)?);
        let (lo, hi) = if pair.a.as_bytes() < pair.b.as_bytes() {
            (&pair.a, &pair.b)
        } else {
            (&pair.b, &pair.a)
        };
        // Spec: e(s·H1(lo), H2(hi)) = e(H1(lo), s·H2(hi)), 12 Fp values big-endian.
        let p1: blst::blst_p1_affine = s1.sign(lo.as_bytes(), d1, &[]).into();
        let q1: blst::blst_p2_affine = one2.sign(hi.as_bytes(), d2, &[]).into();
        let p2: blst::blst_p1_affine = one1.sign(lo.as_bytes(), d1, &[]).into();
        let q2: blst::blst_p2_affine = s2.sign(hi.as_bytes(), d2, &[]).into();
        for (q, p) in [(q1, p1), (q2, p2)] {
            let gt = blst::blst_fp12::miller_loop(&q, &p)
                .final_exp()
                .to_bendian();
            same_hex("GT (spec)", &pair.gt_hex, &gt)?;
        }
        let (ka, kb) = (world.sok()?.personal_key(&a), world.sok()?.personal_key(&b));
        same_hex(
            "GT a→b",
            &pair.gt_hex,
            &ka.shared_gt(&b).map_err(err("gt"))?,
        )?;
        same_hex(
            "GT b→a",
            &pair.gt_hex,
            &kb.shared_gt(&a).map_err(err("gt"))?,
        )?;
        let gt = bytes("gt", &pair.gt_hex)?;
        let info = r_pairwise_info(3, &pair.a, &pair.b);
        same_hex("SOK info", &pair.sok_info_hex, &info)?;
        same_hex(
            "SOK key (spec)",
            &pair.sok_pairwise_key_hex,
            &r_hkdf(b"warifu/v1/pairwise-key", &gt, &info)?,
        )?;
        for (k, peer) in [(&ka, &b), (&kb, &a)] {
            let lib = pairwise_key(k, peer).map_err(err("pairwise"))?;
            same_hex(
                "SOK key (library)",
                &pair.sok_pairwise_key_hex,
                lib.expose(),
            )?;
        }
        let raw = blom
            .pairs
            .iter()
            .find(|p| (p.a == pair.a && p.b == pair.b) || (p.a == pair.b && p.b == pair.a))
            .ok_or("Blom pair")?;
        let ikm = [
            &[1u8, 0, 32][..],
            &bytes("raw", &raw.raw_shared_hex)?,
            &[3, 0x02, 0x40],
            &gt,
        ]
        .concat();
        same_hex("hybrid ikm (spec)", &pair.hybrid_ikm_hex, &ikm)?;
        let info = r_pairwise_info(0x80, &pair.a, &pair.b);
        same_hex("hybrid info", &pair.hybrid_info_hex, &info)?;
        same_hex(
            "hybrid key (spec)",
            &pair.hybrid_pairwise_key_hex,
            &r_hkdf(b"warifu/v1/pairwise-key", &ikm, &info)?,
        )?;
        for (owner, peer) in [(&pair.a, &b), (&pair.b, &a)] {
            let src = world.source(owner, "blom+sok")?;
            let lib = pairwise_key(&*src, peer).map_err(err("pairwise"))?;
            same_hex(
                "hybrid key (library)",
                &pair.hybrid_pairwise_key_hex,
                lib.expose(),
            )?;
        }
    }
    Ok(())
}

fn check_session(v: &SessionVector, world: &World) -> Check {
    let (ki, kr) = (
        world.source(&v.initiator, &v.key_source)?,
        world.source(&v.responder, &v.key_source)?,
    );
    // Library: the handshake from the stated seeds and clocks.
    let (init, hello) = Initiator::start(
        &*ki,
        &id(&v.responder)?,
        v.hello_time,
        &mut SeededRandom::new(v.initiator_seed_utf8.as_bytes()),
    )
    .map_err(err("start"))?;
    let (pending, challenge) = PendingHandshake::respond(
        &*kr,
        &hello,
        v.hello_time,
        &mut SeededRandom::new(v.responder_seed_utf8.as_bytes()),
    )
    .map_err(err("respond"))?;
    let (mut client, confirm) = init.finish(&challenge).map_err(err("finish"))?;
    let mut server = pending
        .confirm(&confirm, v.confirm_time)
        .map_err(err("confirm"))?;
    check!(to_json(&hello)? == v.hello, "Hello JSON");
    check!(to_json(&challenge)? == v.challenge, "Challenge JSON");
    check!(to_json(&confirm)? == v.confirm, "Confirm JSON");
    check!(
        client.id() == v.session_id && server.id() == v.session_id,
        "session id (library)"
    );

    // Spec.
    let k = pairwise_key(&*ki, &id(&v.responder)?).map_err(err("pairwise"))?;
    same_hex("pairwise key", &v.pairwise_key_hex, k.expose())?;
    let nonce_i = stream(&v.initiator_seed_utf8, 32);
    let nonce_r = stream(&v.responder_seed_utf8, 32);
    let mut t = vec![1u8];
    u16_prefixed(&mut t, v.initiator.as_bytes());
    u16_prefixed(&mut t, v.responder.as_bytes());
    t.extend_from_slice(&nonce_i);
    t.extend_from_slice(&nonce_r);
    t.extend_from_slice(&v.hello_time.to_be_bytes());
    same_hex("transcript", &v.transcript_hex, &t)?;
    let key = k.expose();
    let mac_r = r_hmac(key, &[&b"warifu/v1/handshake/responder"[..], &t].concat())?;
    let mac_i = r_hmac(key, &[&b"warifu/v1/handshake/initiator"[..], &t].concat())?;
    same_hex("responder MAC", &v.responder_mac_hex, &mac_r)?;
    same_hex("initiator MAC", &v.initiator_mac_hex, &mac_i)?;
    let hello_spec = json!({"version": 1, "initiator": v.initiator, "responder": v.responder,
        "nonce_i": B64.encode(&nonce_i), "time": v.hello_time});
    check!(
        serde_json::from_str::<Value>(&v.hello).ok() == Some(hello_spec),
        "Hello (spec)"
    );
    let challenge_spec = json!({"nonce_r": B64.encode(&nonce_r), "mac": B64.encode(mac_r)});
    check!(
        serde_json::from_str::<Value>(&v.challenge).ok() == Some(challenge_spec),
        "Challenge (spec)"
    );
    let confirm_spec = json!({"nonce_r": B64.encode(&nonce_r), "mac": B64.encode(mac_i)});
    check!(
        serde_json::from_str::<Value>(&v.confirm).ok() == Some(confirm_spec),
        "Confirm (spec)"
    );
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&[nonce_i, nonce_r].concat()), key)
        .expand(&[&b"warifu/v1/session"[..], &t].concat(), &mut okm)
        .map_err(err("hkdf"))?;
    same_hex("request key", &v.request_key_hex, &okm[..32])?;
    same_hex("response key", &v.response_key_hex, &okm[32..])?;
    let sid = hex(&sha256(&[b"warifu/v1/session", &t])[..16]);
    check!(sid == v.session_id, "session id (spec)");

    check!(!v.exchanges.is_empty(), "no exchanges");
    for (n, x) in v.exchanges.iter().enumerate() {
        let body = x.request_body_utf8.as_bytes();
        let auth = client
            .sign_request(&x.method, &x.path, body, x.request_time)
            .map_err(err("sign"))?;
        check!(to_json(&auth)? == x.request_auth, "request {n} auth");
        server
            .verify_request(&auth, &x.method, &x.path, body, x.request_time)
            .map_err(err("verify request"))?;
        let mut input = Vec::new();
        u16_prefixed(&mut input, sid.as_bytes());
        input.extend_from_slice(&(n as u64 + 1).to_be_bytes());
        input.extend_from_slice(&x.request_time.to_be_bytes());
        for b in [x.method.as_bytes(), x.path.as_bytes()] {
            input.extend_from_slice(&(b.len() as u32).to_be_bytes());
            input.extend_from_slice(b);
        }
        input.extend_from_slice(&sha256(&[body]));
        same_hex("request MAC input", &x.request_mac_input_hex, &input)?;
        let mac = r_hmac(
            &okm[..32],
            &[&b"warifu/v1/session/request"[..], &input].concat(),
        )?;
        check!(auth.mac == mac, "request {n} MAC (spec)");
        let rbody = x.response_body_utf8.as_bytes();
        let resp = server.sign_response(&auth, x.status, rbody, x.response_time);
        check!(to_json(&resp)? == x.response_auth, "response {n} auth");
        client
            .verify_response(&auth, &resp, x.status, rbody, x.response_time)
            .map_err(err("verify response"))?;
        let mut rinput = Vec::new();
        u16_prefixed(&mut rinput, sid.as_bytes());
        rinput.extend_from_slice(&(n as u64 + 1).to_be_bytes());
        rinput.extend_from_slice(&mac);
        rinput.extend_from_slice(&x.response_time.to_be_bytes());
        rinput.extend_from_slice(&x.status.to_be_bytes());
        rinput.extend_from_slice(&sha256(&[rbody]));
        same_hex("response MAC input", &x.response_mac_input_hex, &rinput)?;
        let rmac = r_hmac(
            &okm[32..],
            &[&b"warifu/v1/session/response"[..], &rinput].concat(),
        )?;
        check!(resp.mac == rmac, "response {n} MAC (spec)");
    }
    Ok(())
}

/// A sealed record (§12.4), by the library and from the spec: record key, associated data,
/// record, MAC; its session's keys agree with the session vector it names.
fn check_record(v: &RecordVector) -> Check {
    let (session_key, label, tag, dir): ([u8; 32], &[u8], &[u8], _) = match v.direction.as_str() {
        "request" => (
            array("request key", &v.request_key_hex)?,
            b"warifu/v1/session/request-seal",
            b"warifu/v1/session/request",
            Direction::Request,
        ),
        "response" => (
            array("response key", &v.response_key_hex)?,
            b"warifu/v1/session/response-seal",
            b"warifu/v1/session/response",
            Direction::Response,
        ),
        other => return Err(format!("direction {other}")),
    };
    // The session vector it names holds the same keys and id.
    let from = load(&vector_dir().join(&v.from_file));
    let s = from
        .sessions
        .iter()
        .find(|s| s.name == v.session)
        .ok_or_else(|| format!("{} has no session {}", v.from_file, v.session))?;
    check!(
        s.request_key_hex == v.request_key_hex
            && s.response_key_hex == v.response_key_hex
            && s.session_id == v.session_id,
        "the keys of session {} differ",
        v.session
    );
    let mut nonce = [0u8; 24];
    SeededRandom::new(v.nonce_seed_utf8.as_bytes())
        .fill(&mut nonce)
        .map_err(err("nonce"))?;
    same_hex("nonce", &v.nonce_hex, &nonce)?;
    // The spec: HKDF-Expand(PRK = session key, u16(len) ‖ label), the MAC input without the
    // body digest as associated data, nonce ‖ XChaCha20-Poly1305.
    let mut info = (label.len() as u16).to_be_bytes().to_vec();
    info.extend_from_slice(label);
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::from_prk(&session_key)
        .map_err(err("prk"))?
        .expand(&info, &mut key)
        .map_err(err("hkdf"))?;
    same_hex("record key (spec)", &v.record_key_hex, &key)?;
    let mut aad = (v.session_id.len() as u16).to_be_bytes().to_vec();
    aad.extend_from_slice(v.session_id.as_bytes());
    aad.extend_from_slice(&v.seq.to_be_bytes());
    let b32 = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    let (method, path) = (
        v.method.clone().unwrap_or_default(),
        v.path.clone().unwrap_or_default(),
    );
    let status = v.status.unwrap_or_default();
    let rmac: [u8; 32] = match dir {
        Direction::Request => {
            aad.extend_from_slice(&v.time.to_be_bytes());
            b32(&mut aad, method.as_bytes());
            b32(&mut aad, path.as_bytes());
            [0u8; 32]
        }
        Direction::Response => {
            let m = array("request mac", v.request_mac_hex.as_deref().unwrap_or(""))?;
            aad.extend_from_slice(&m);
            aad.extend_from_slice(&v.time.to_be_bytes());
            aad.extend_from_slice(&status.to_be_bytes());
            m
        }
    };
    same_hex("associated data (spec)", &v.aad_hex, &aad)?;
    let ct = XChaCha20Poly1305::new((&key).into())
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: v.body_utf8.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(err("aead"))?;
    same_hex("record (spec)", &v.record_hex, &[&nonce[..], &ct].concat())?;
    let record = bytes("record", &v.record_hex)?;
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&session_key).map_err(err("hmac"))?;
    m.update(tag);
    m.update(&aad);
    m.update(&Sha256::digest(&record));
    same_hex("MAC (spec)", &v.mac_hex, &m.finalize().into_bytes())?;
    // The library.
    let lib_key = session::record_key(&session_key, dir).map_err(err("record key"))?;
    same_hex("record key (library)", &v.record_key_hex, lib_key.expose())?;
    let lib_aad = match dir {
        Direction::Request => session::request_aad(&v.session_id, v.seq, v.time, &method, &path),
        Direction::Response => session::response_aad(&v.session_id, v.seq, &rmac, v.time, status),
    };
    same_hex("associated data (library)", &v.aad_hex, &lib_aad)?;
    let sealed = session::seal_record(&lib_key, &nonce, &lib_aad, v.body_utf8.as_bytes())
        .map_err(err("seal"))?;
    same_hex("record (library)", &v.record_hex, &sealed)?;
    let opened = session::open_record(&lib_key, &lib_aad, &record).map_err(err("open"))?;
    check!(opened == v.body_utf8.as_bytes(), "opened body");
    Ok(())
}

/// The JSON of a session message.
fn to_json<T: serde::Serialize>(x: &T) -> Result<String, String> {
    serde_json::to_string(x).map_err(|e| e.to_string())
}

/// Replays the honest handshake (and, for the request and response steps, every honest
/// exchange) of `v`, then runs the step `op` on the tampered `input`.
fn session_op(
    world: &World,
    v: &SessionVector,
    op: &str,
    input: &Value,
) -> Result<Result<(), Error>, String> {
    let (ki, kr) = (
        world.source(&v.initiator, &v.key_source)?,
        world.source(&v.responder, &v.key_source)?,
    );
    let now = || input["now"].as_u64().ok_or("now".to_string());
    let field = |k: &str| input.get(k).cloned().ok_or(format!("{k} missing"));
    let text = |k: &str| {
        input[k]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("{k} missing"))
    };
    let mut rng_r = SeededRandom::new(v.responder_seed_utf8.as_bytes());
    let (init, hello) = Initiator::start(
        &*ki,
        &id(&v.responder)?,
        v.hello_time,
        &mut SeededRandom::new(v.initiator_seed_utf8.as_bytes()),
    )
    .map_err(err("start"))?;
    if op == "session_respond" {
        let h: Hello = serde_json::from_value(field("hello")?).map_err(err("hello"))?;
        return Ok(PendingHandshake::respond(&*kr, &h, now()?, &mut rng_r).map(drop));
    }
    let (pending, challenge) = PendingHandshake::respond(&*kr, &hello, v.hello_time, &mut rng_r)
        .map_err(err("respond"))?;
    if op == "session_finish" {
        let c: Challenge = serde_json::from_value(field("challenge")?).map_err(err("challenge"))?;
        return Ok(init.finish(&c).map(drop));
    }
    let (mut client, confirm) = init.finish(&challenge).map_err(err("finish"))?;
    if op == "session_confirm" {
        let c: Confirm = serde_json::from_value(field("confirm")?).map_err(err("confirm"))?;
        return Ok(pending.confirm(&c, now()?).map(drop));
    }
    let mut server: Session = pending
        .confirm(&confirm, v.confirm_time)
        .map_err(err("confirm"))?;
    for x in &v.exchanges {
        let body = x.request_body_utf8.as_bytes();
        let a = client
            .sign_request(&x.method, &x.path, body, x.request_time)
            .map_err(err("sign"))?;
        server
            .verify_request(&a, &x.method, &x.path, body, x.request_time)
            .map_err(err("verify"))?;
    }
    match op {
        "session_verify_request" => {
            let a: MessageAuth = serde_json::from_value(field("auth")?).map_err(err("auth"))?;
            Ok(server
                .verify_request(
                    &a,
                    &text("method")?,
                    &text("path")?,
                    text("body")?.as_bytes(),
                    now()?,
                )
                .map(drop))
        }
        "session_verify_response" => {
            let q: MessageAuth =
                serde_json::from_value(field("request")?).map_err(err("request"))?;
            let r: MessageAuth =
                serde_json::from_value(field("response")?).map_err(err("response"))?;
            let status =
                u16::try_from(input["status"].as_u64().ok_or("status")?).map_err(err("status"))?;
            Ok(client.verify_response(&q, &r, status, text("body")?.as_bytes(), now()?))
        }
        other => Err(format!("unknown session operation {other}")),
    }
}
