//! Generates the known-answer vectors of `testdata/vectors/` from fixed seeds.
//!
//! Every value is computed twice where the spec allows it: once by `warifu-core` and once
//! from `docs/PROTOCOL.md` with the bare primitives (SHA-256, HKDF, HMAC, XChaCha20-Poly1305,
//! Argon2id); the generator stops if the two disagree.
//!
//! Run from the workspace root: `cargo run -p warifu-core --example gen_vectors`
//! (or pass an output directory). `cargo test -p warifu-core --test vectors` checks them.

#[path = "gen_vectors/schema.rs"]
mod schema;

use std::path::PathBuf;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use warifu_core::blom::{self, ID_TO_FIELD_LABEL, LANES, Master, id_to_field, vandermonde};
use warifu_core::field::{Fe, P};
use warifu_core::keyfile::{KdfParams, KeyFile, SokKeyFile};
use warifu_core::keysource::{
    Hybrid, KeySource, PAIRWISE_LABEL, Predistributed, pairwise_key, predistribute,
};
use warifu_core::order::{Card, CatalogItem, Destination, Expiry, Order, OrderForm, PaymentMethod};
use warifu_core::policy::Policy;
use warifu_core::rand::{Randomness, SeededRandom, TEST_RNG_LABEL};
use warifu_core::sealed::{
    self, AAD_LABEL, COMMIT_KEY_LABEL, Disclosed, ForCarrier, ForIssuer, ForMerchant,
    ForwardedPart, HEADER_LABEL, PART_KEY_LABEL, SealedOrder,
};
use warifu_core::secret::{Key32, Secret};
use warifu_core::session::{
    self, Challenge, Confirm, Direction, Hello, INITIATOR_TAG, Initiator, MessageAuth,
    PendingHandshake, RECORD_NONCE_LEN, REQUEST_SEAL_LABEL, REQUEST_TAG, RESPONDER_TAG,
    RESPONSE_SEAL_LABEL, RESPONSE_TAG, SESSION_LABEL, Session,
};
use warifu_core::sok::{self, DST_G1, DST_G2, SokMaster};
use warifu_core::{Error, PartyId, Role};

use schema::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The parties of every Blom file, in this order.
const PARTIES: [&str; 5] = [
    "cardholder:hanako@mail.example",
    "merchant:shop.example",
    "issuer:bank.example",
    "carrier:post.example",
    "merchant:evil.example",
];
const CARDHOLDER: &str = PARTIES[0];
const EVIL_MERCHANT: &str = PARTIES[4];
/// Seal time: 2027-01-15.
const NOW: u64 = 1_800_000_000;
/// Cheap Argon2id costs for the vectors (never for real files).
const CHEAP_KDF: Kdf = Kdf {
    m_cost: 64,
    t_cost: 1,
    p_cost: 1,
};
const PASSPHRASE: &str = "correct horse battery staple";
/// The 【0033】 variant: no FAX, the issuer does not need the product number, the merchant
/// needs the destination.
const CUSTOM_POLICY: &str = "\
cardholder_name = [\"merchant\", \"issuer\", \"carrier\"]
cardholder_address = [\"merchant\", \"issuer\"]
telephone = [\"merchant\", \"issuer\", \"carrier\"]
fax = []
card = [\"issuer\"]
product_name = [\"merchant\"]
quantity = [\"merchant\"]
product_number = [\"merchant\"]
amount = [\"merchant\", \"issuer\"]
payment_method = [\"merchant\", \"issuer\"]
delivery_destination = [\"merchant\", \"carrier\"]
";
/// A policy that differs from the default only in the FAX, for the wrong-policy twins.
const NO_FAX_POLICY: &str = "\
cardholder_name = [\"merchant\", \"issuer\", \"carrier\"]
cardholder_address = [\"merchant\", \"issuer\"]
telephone = [\"merchant\", \"issuer\", \"carrier\"]
fax = []
card = [\"issuer\"]
product_name = [\"merchant\"]
quantity = [\"merchant\"]
product_number = [\"merchant\", \"issuer\"]
amount = [\"merchant\", \"issuer\"]
payment_method = [\"merchant\", \"issuer\"]
delivery_destination = [\"carrier\"]
";

fn main() -> Res<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
        });
    std::fs::create_dir_all(&out)?;
    let out = out.canonicalize()?;
    let k4 = blom_file(4, true)?;
    let records = records_file(&k4, "blom_k4.json")?;
    let files = [
        ("primitives.json", primitives_file()?),
        ("blom_k4.json", k4),
        ("blom_k1024.json", blom_file(blom::DEFAULT_K, false)?),
        ("session_records.json", records),
    ];
    for (name, file) in files {
        let mut text = serde_json::to_string_pretty(&file)?;
        text.push('\n');
        let path = out.join(name);
        std::fs::write(&path, &text)?;
        println!("wrote {} ({} bytes)", path.display(), text.len());
    }
    Ok(())
}

fn id(s: &str) -> PartyId {
    PartyId::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn fe_hex(fe: Fe) -> String {
    hex(&fe.to_bytes())
}

fn fes_bytes(fes: &[Fe]) -> Vec<u8> {
    fes.iter().flat_map(|f| f.to_bytes()).collect()
}

fn ensure(ok: bool, what: &str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("independent computation disagrees: {what}").into())
    }
}

/// The name of an error's variant, as the vectors name it.
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

// ---------------------------------------------------------------- primitives

fn primitives_file() -> Res<VectorFile> {
    let mut test_rng = Vec::new();
    for (seed, len) in [("", 100usize), ("warifu/vectors/k4", 64)] {
        let mut buf = vec![0u8; len];
        SeededRandom::new(seed.as_bytes()).fill(&mut buf)?;
        let mut indep = Vec::new();
        for i in 0u64.. {
            if indep.len() >= len {
                break;
            }
            indep.extend_from_slice(&sha256(&[
                TEST_RNG_LABEL,
                seed.as_bytes(),
                &i.to_be_bytes(),
            ]));
        }
        ensure(indep[..len] == buf[..], "test rng")?;
        test_rng.push(RngVector {
            seed_utf8: seed.into(),
            hex: hex(&buf),
        });
    }

    let mut rng = SeededRandom::new(b"warifu/vectors/field");
    let mut random = || -> Res<u128> {
        let mut b = [0u8; 16];
        rng.fill(&mut b)?;
        Ok(u128::from_le_bytes(b) % P)
    };
    let mut pairs = vec![
        (0, 0),
        (1, P - 1),
        (P - 1, P - 1),
        (1 << 126, 2),
        (2, 1 << 126),
    ];
    for _ in 0..3 {
        pairs.push((random()?, random()?));
    }
    let field = pairs
        .into_iter()
        .map(|(a, b)| {
            let (fa, fb) = (Fe::new(a), Fe::new(b));
            FieldVector {
                a_hex: fe_hex(fa),
                b_hex: fe_hex(fb),
                sum_hex: fe_hex(fa + fb),
                difference_hex: fe_hex(fa - fb),
                product_hex: fe_hex(fa * fb),
                a_inverse_hex: fe_hex(fa.invert()),
            }
        })
        .collect();
    let non_canonical_hex = [P, 1 << 127, u128::MAX]
        .iter()
        .map(|v| hex(&v.to_le_bytes()))
        .collect();

    let mut id_vectors = Vec::new();
    for s in PARTIES
        .iter()
        .copied()
        .chain(["cardholder:山田花子@mail.example"])
    {
        for lane in 0..LANES {
            let party = id(s);
            let mut counter = 0u8;
            let (digest, v) = loop {
                let d = sha256(&[ID_TO_FIELD_LABEL, &[lane as u8, counter], s.as_bytes()]);
                let mut b = [0u8; 16];
                b.copy_from_slice(&d[..16]);
                let v = u128::from_le_bytes(b) & P;
                if v != 0 && v != P {
                    break (d, v);
                }
                counter += 1;
            };
            ensure(id_to_field(&party, lane).value() == v, "id to field")?;
            id_vectors.push(IdToFieldVector {
                id: s.into(),
                lane: lane as u8,
                counter,
                sha256_hex: hex(&digest),
                s_hex: hex(&v.to_le_bytes()),
                s_decimal: v.to_string(),
            });
        }
    }

    let vm = (0..LANES)
        .map(|lane| {
            let s = id_to_field(&id(PARTIES[1]), lane);
            VandermondeVector {
                id: PARTIES[1].into(),
                lane: lane as u8,
                k: 4,
                g_hex: vandermonde(s, 4).into_iter().map(fe_hex).collect(),
            }
        })
        .collect();

    let mut policies = Vec::new();
    for (name, p) in [
        ("patent_default", Policy::patent_default()),
        ("custom_0033", Policy::from_toml(CUSTOM_POLICY)?),
        ("no_fax", Policy::from_toml(NO_FAX_POLICY)?),
    ] {
        ensure(
            p.digest() == sha256(&[b"warifu/v1/policy", &p.encode()]),
            "policy digest",
        )?;
        policies.push(PolicyVector {
            name: name.into(),
            toml: p.to_toml(),
            encoding_hex: hex(&p.encode()),
            digest_hex: hex(&p.digest()),
        });
    }

    let mut fail = Vec::new();
    for (bad, why) in [
        ("", "empty"),
        ("shop.example", "no role"),
        ("bank:x", "unknown role"),
        ("Merchant:shop.example", "roles are lowercase"),
        ("issuer:", "empty name"),
        ("issuer:a b", "whitespace in the name"),
        ("carrier:\u{7}", "control character"),
    ] {
        let err = PartyId::parse(bad).err().ok_or("accepted a bad id")?;
        fail.push(FailVector {
            name: format!("fail_id_{}", why.replace(' ', "_")),
            twin_of: "id_to_field".into(),
            description: format!("identifier refused: {why}"),
            operation: "parse_id".into(),
            input_hex: None,
            input_ref: None,
            input_text: Some(bad.into()),
            open_as: None,
            holder: None,
            key_source: None,
            pairwise_key_hex: None,
            policy_toml: None,
            passphrase: None,
            error: kind(&err),
            field: field_of(&err),
        });
    }
    let long = format!("issuer:{}", "x".repeat(249));
    fail.push(FailVector {
        name: "fail_id_too_long".into(),
        twin_of: "id_to_field".into(),
        description: "identifier of 256 bytes (the limit is 255)".into(),
        operation: "parse_id".into(),
        input_text: Some(long.clone()),
        error: kind(&PartyId::parse(&long).err().ok_or("accepted a long id")?),
        ..FailVector::blank()
    });

    Ok(VectorFile {
        format: FORMAT.into(),
        description: "Primitives: the test random stream, GF(2^127-1) arithmetic, \
                      identifier-to-field hashing, Vandermonde columns, disclosure policies, \
                      identifier syntax."
            .into(),
        primitives: Some(Primitives {
            test_rng,
            field,
            non_canonical_hex,
            id_to_field: id_vectors,
            vandermonde: vm,
            policies,
        }),
        blom: None,
        key_sources: None,
        sok: None,
        sealed: Vec::new(),
        key_files: Vec::new(),
        sessions: Vec::new(),
        records: Vec::new(),
        fail,
    })
}

// ---------------------------------------------------------------- Blom files

/// The masters and the predistributed tables of one file, to rebuild any party's source.
struct World {
    master: Master,
    sok: SokMaster,
    ids: Vec<PartyId>,
    predist_seed: String,
}

impl World {
    fn table(&self, owner: &PartyId) -> Res<Predistributed> {
        predistribute(
            &self.ids,
            &mut SeededRandom::new(self.predist_seed.as_bytes()),
        )?
        .into_iter()
        .find(|t| t.owner() == owner)
        .ok_or_else(|| format!("no table for {owner}").into())
    }

    fn source(&self, owner: &str, kind: &str) -> Res<Box<dyn KeySource>> {
        let owner = id(owner);
        let blom = Box::new(self.master.personal_key(&owner));
        Ok(match kind {
            "blom" => blom,
            "sok" => Box::new(self.sok.personal_key(&owner)),
            "blom+predistributed" => {
                Box::new(Hybrid::new(vec![blom, Box::new(self.table(&owner)?)])?)
            }
            "blom+sok" => Box::new(sok::hybrid(
                self.master.personal_key(&owner),
                self.sok.personal_key(&owner),
            )?),
            other => return Err(format!("unknown key source {other}").into()),
        })
    }
}

fn pairwise_info(scheme: u8, a: &str, b: &str) -> Vec<u8> {
    let (lo, hi) = if a.as_bytes() < b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let mut info = vec![scheme];
    for s in [lo, hi] {
        info.extend_from_slice(&(s.len() as u16).to_be_bytes());
        info.extend_from_slice(s.as_bytes());
    }
    info
}

fn hkdf_pairwise(ikm: &[u8], info: &[u8]) -> Res<[u8; 32]> {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(PAIRWISE_LABEL), ikm)
        .expand(info, &mut okm)
        .map_err(|_| "hkdf")?;
    Ok(okm)
}

fn blom_file(k: u32, full: bool) -> Res<VectorFile> {
    let seed = format!("warifu/vectors/k{k}");
    let master = Master::generate(k, &mut SeededRandom::new(seed.as_bytes()))?;
    let upper = master.upper();
    // The stream read independently: 16 bytes, top bit cleared, p rejected.
    let mut rng = SeededRandom::new(seed.as_bytes());
    for fe in upper.iter().take(8) {
        let v = loop {
            let mut b = [0u8; 16];
            rng.fill(&mut b)?;
            let v = u128::from_le_bytes(b) & P;
            if v != P {
                break v;
            }
        };
        ensure(fe.value() == v, "master entries from the stream")?;
    }
    let ids: Vec<PartyId> = PARTIES.iter().map(|s| id(s)).collect();
    let sok_seed = format!("warifu/vectors/k{k}/sok");
    let world = World {
        master,
        sok: SokMaster::generate(&mut SeededRandom::new(sok_seed.as_bytes()))?,
        ids: ids.clone(),
        predist_seed: format!("warifu/vectors/k{k}/predistributed"),
    };
    let keys: Vec<_> = ids.iter().map(|i| world.master.personal_key(i)).collect();
    let head = |lane: &[Fe]| lane.iter().take(3).copied().map(fe_hex).collect::<Vec<_>>();
    let parties = keys
        .iter()
        .map(|key| {
            let all: Vec<Fe> = (0..LANES).flat_map(|l| key.lane(l).to_vec()).collect();
            PartyVector {
                id: key.id().to_string(),
                s_hex: (0..LANES)
                    .map(|l| fe_hex(id_to_field(key.id(), l)))
                    .collect(),
                personal_key_hex: full.then(|| {
                    (0..LANES)
                        .map(|l| key.lane(l).iter().copied().map(fe_hex).collect())
                        .collect()
                }),
                personal_key_head_hex: (0..LANES).map(|l| head(key.lane(l))).collect(),
                personal_key_sha256_hex: hex(&sha256(&[&fes_bytes(&all)])),
            }
        })
        .collect();
    let mut pairs = Vec::new();
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            let raw = a.raw_shared_bytes(b.id());
            ensure(raw == b.raw_shared_bytes(a.id()), "raw keys agree")?;
            let info = pairwise_info(1, a.id().as_str(), b.id().as_str());
            let key = pairwise_key(a, b.id())?;
            ensure(
                key.expose() == &hkdf_pairwise(&raw, &info)?,
                "blom pairwise key",
            )?;
            pairs.push(PairVector {
                a: a.id().to_string(),
                b: b.id().to_string(),
                raw_shared_hex: hex(&raw),
                hkdf_info_hex: hex(&info),
                pairwise_key_hex: hex(key.expose()),
            });
        }
    }
    let blom_vectors = BlomVectors {
        k,
        lanes: LANES as u8,
        master_seed_utf8: seed.clone(),
        master_upper_hex: full.then(|| upper.iter().copied().map(fe_hex).collect()),
        master_upper_head_hex: upper.iter().take(8).copied().map(fe_hex).collect(),
        master_upper_sha256_hex: hex(&sha256(&[&fes_bytes(&upper)])),
        parties,
        pairs,
    };

    let key_sources = if full {
        Some(key_source_vectors(&world)?)
    } else {
        None
    };
    let sok_vectors = sok_vectors(&world, &sok_seed)?;

    let mut sealed_vectors = Vec::new();
    let mut fail = Vec::new();
    let tag = format!("k{k}");
    let with_carrier = form("ord-0001", true, Policy::patent_default());
    let first = sealed_vector(
        &world,
        &format!("{tag}_blom_with_carrier"),
        "Blom keys, the patent's default policy, with a carrier",
        "blom",
        &with_carrier,
        &order_with_carrier(&with_carrier),
        &format!("warifu/vectors/{tag}/seal/1"),
    )?;
    let second_form = form("ord-0002", true, Policy::patent_default());
    let second = sealed_vector(
        &world,
        &format!("{tag}_blom_second_order"),
        "A second order of the same cardholder to the same parties (the splice source)",
        "blom",
        &second_form,
        &order_with_carrier(&second_form),
        &format!("warifu/vectors/{tag}/seal/2"),
    )?;
    let no_carrier = form("ord-0003", false, Policy::patent_default());
    let third = sealed_vector(
        &world,
        &format!("{tag}_blom_without_carrier"),
        "Blom keys, the default policy, digital goods without a carrier (【0052】)",
        "blom",
        &no_carrier,
        &order_without_carrier(&no_carrier),
        &format!("warifu/vectors/{tag}/seal/3"),
    )?;
    fail.extend(sealed_fails(&world, &first, Some(&second), !full)?);
    fail.extend(sealed_fails(&world, &second, Some(&first), true)?);
    fail.extend(sealed_fails(&world, &third, None, !full)?);
    sealed_vectors.extend([first.vector, second.vector, third.vector]);
    if full {
        let custom = form("ord-0004", true, Policy::from_toml(CUSTOM_POLICY)?);
        let v = sealed_vector(
            &world,
            &format!("{tag}_blom_custom_policy"),
            "Blom keys, the 【0033】 variant policy (no FAX; the merchant gets the destination; \
             the issuer not the product number), non-ASCII text",
            "blom",
            &custom,
            &order_custom(&custom),
            &format!("warifu/vectors/{tag}/seal/4"),
        )?;
        fail.extend(sealed_fails(&world, &v, None, true)?);
        let custom_nc = form("ord-0008", false, Policy::from_toml(CUSTOM_POLICY)?);
        let w = sealed_vector(
            &world,
            &format!("{tag}_blom_custom_policy_without_carrier"),
            "Blom keys, the 【0033】 variant policy that gives the merchant the destination, but \
             no carrier: no part carries a destination",
            "blom",
            &custom_nc,
            &order_without_carrier(&custom_nc),
            &format!("warifu/vectors/{tag}/seal/8"),
        )?;
        fail.extend(sealed_fails(&world, &w, None, true)?);
        sealed_vectors.push(w.vector);
        let hy_form = form("ord-0005", true, Policy::patent_default());
        let h = sealed_vector(
            &world,
            &format!("{tag}_blom_predistributed_with_carrier"),
            "Hybrid keys (Blom + predistributed, scheme 0x80), default policy, with a carrier",
            "blom+predistributed",
            &hy_form,
            &order_with_carrier(&hy_form),
            &format!("warifu/vectors/{tag}/seal/5"),
        )?;
        fail.extend(sealed_fails(&world, &h, None, true)?);
        let sok_form = form("ord-0006", true, Policy::patent_default());
        let so = sealed_vector(
            &world,
            &format!("{tag}_sok_with_carrier"),
            "SOK keys alone (scheme 0x03), default policy, with a carrier",
            "sok",
            &sok_form,
            &order_with_carrier(&sok_form),
            &format!("warifu/vectors/{tag}/seal/6"),
        )?;
        fail.extend(sealed_fails(&world, &so, None, true)?);
        sealed_vectors.extend([v.vector, h.vector, so.vector]);
    }
    let bs_form = form("ord-0007", true, Policy::patent_default());
    let bs = sealed_vector(
        &world,
        &format!("{tag}_blom_sok_with_carrier"),
        "The default deployment: Blom + SOK hybrid keys (scheme 0x80), default policy, with a \
         carrier",
        "blom+sok",
        &bs_form,
        &order_with_carrier(&bs_form),
        &format!("warifu/vectors/{tag}/seal/7"),
    )?;
    fail.extend(sealed_fails(&world, &bs, None, true)?);
    sealed_vectors.push(bs.vector);

    let (key_files, kf_fail) = key_file_vectors(&world, &tag, full)?;
    fail.extend(kf_fail);
    let mut sessions = Vec::new();
    if full {
        for (name, initiator, responder, kind) in [
            ("merchant_issuer_blom", PARTIES[1], PARTIES[2], "blom"),
            (
                "cardholder_merchant_blom_sok",
                CARDHOLDER,
                PARTIES[1],
                "blom+sok",
            ),
        ] {
            let (v, f) = session_vector(
                &world,
                &format!("{tag}_session_{name}"),
                initiator,
                responder,
                kind,
            )?;
            sessions.push(v);
            fail.extend(f);
        }
    }

    Ok(VectorFile {
        format: FORMAT.into(),
        description: format!(
            "Blom with k = {k}: master -> identifier elements -> personal keys -> raw shared \
             bytes -> pairwise keys -> sealed orders -> opened views -> key files{}",
            if full {
                "; predistributed, SOK and hybrid key sources; handshakes and sessions"
            } else {
                "; SOK and the Blom + SOK hybrid (large values as SHA-256 digests)"
            }
        ),
        primitives: None,
        blom: Some(blom_vectors),
        key_sources,
        sok: Some(sok_vectors),
        sealed: sealed_vectors,
        key_files,
        sessions,
        records: Vec::new(),
        fail,
    })
}

fn key_source_vectors(world: &World) -> Res<KeySourceVectors> {
    let mut rng = SeededRandom::new(world.predist_seed.as_bytes());
    let mut table = Vec::new();
    for (i, a) in world.ids.iter().enumerate() {
        for b in &world.ids[i + 1..] {
            let mut s = [0u8; 32];
            rng.fill(&mut s)?;
            table.push(TableEntry {
                a: a.to_string(),
                b: b.to_string(),
                secret_hex: hex(&s),
            });
        }
    }
    let mut pairs = Vec::new();
    for scheme in ["predistributed", "blom+predistributed"] {
        for (i, a) in PARTIES.iter().enumerate() {
            for b in &PARTIES[i + 1..] {
                let (src_a, src_b): (Box<dyn KeySource>, Box<dyn KeySource>) =
                    if scheme == "blom+predistributed" {
                        (world.source(a, scheme)?, world.source(b, scheme)?)
                    } else {
                        (
                            Box::new(world.table(&id(a))?),
                            Box::new(world.table(&id(b))?),
                        )
                    };
                let ikm = src_a.shared_secret(&id(b))?;
                let info = pairwise_info(src_a.scheme().code(), a, b);
                let key = pairwise_key(&*src_a, &id(b))?;
                ensure(key == pairwise_key(&*src_b, &id(a))?, "source keys agree")?;
                ensure(key.expose() == &hkdf_pairwise(&ikm, &info)?, "source key")?;
                if scheme == "predistributed" {
                    let entry = table
                        .iter()
                        .find(|t| (t.a == *a && t.b == *b) || (t.a == *b && t.b == *a))
                        .ok_or("table entry")?;
                    ensure(entry.secret_hex == hex(&ikm), "predistributed ikm")?;
                } else {
                    let blom = world.master.personal_key(&id(a)).raw_shared_bytes(&id(b));
                    let pre = world.table(&id(a))?.shared_secret(&id(b))?;
                    let mut expect = vec![1u8, 0, 32];
                    expect.extend_from_slice(&blom);
                    expect.extend_from_slice(&[2, 0, 32]);
                    expect.extend_from_slice(&pre);
                    ensure(expect == *ikm, "hybrid ikm")?;
                }
                pairs.push(SourcePairVector {
                    scheme: scheme.into(),
                    a: a.to_string(),
                    b: b.to_string(),
                    ikm_hex: hex(&ikm),
                    hkdf_info_hex: hex(&info),
                    pairwise_key_hex: hex(key.expose()),
                });
            }
        }
    }
    Ok(KeySourceVectors {
        predistributed_seed_utf8: world.predist_seed.clone(),
        parties: PARTIES.iter().map(|s| s.to_string()).collect(),
        table,
        pairs,
    })
}

// ---------------------------------------------------------------- orders

fn form(order_id: &str, carrier: bool, policy: Policy) -> OrderForm {
    OrderForm {
        order_id: order_id.into(),
        merchant: id(PARTIES[1]),
        carrier: carrier.then(|| id(PARTIES[3])),
        accepted_issuers: vec![id(PARTIES[2])],
        currency: "JPY".into(),
        catalog: if carrier {
            vec![
                CatalogItem {
                    product_number: "P-1".into(),
                    name: "Green tea 100 g".into(),
                    unit_price: 1200,
                    ships: true,
                },
                CatalogItem {
                    product_number: "P-2".into(),
                    name: "Tea cup".into(),
                    unit_price: 800,
                    ships: true,
                },
            ]
        } else {
            vec![CatalogItem {
                product_number: "E-7".into(),
                name: "E-book: \"Tea\" \\ a history".into(),
                unit_price: 1500,
                ships: false,
            }]
        },
        expires_at: 4_000_000_000,
        policy,
    }
}

fn card() -> Card {
    Card {
        number: "4111111111111111".into(),
        expiry: Expiry {
            year: 2030,
            month: 12,
        },
    }
}

fn order_with_carrier(f: &OrderForm) -> Order {
    let (lines, amount) =
        Order::lines_from(f, &[("P-1", 2), ("P-2", 1)]).unwrap_or_else(|e| panic!("{e}"));
    Order {
        cardholder_name: "Hanako Yamada".into(),
        cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: Some("+81-3-0000-0001".into()),
        card: card(),
        lines,
        amount,
        currency: f.currency.clone(),
        payment_method: PaymentMethod::Installments { count: 3 },
        destination: Some(Destination {
            addressee: "Taro Suzuki".into(),
            address: "2-2 Umeda, Kita-ku, Osaka".into(),
        }),
    }
}

fn order_without_carrier(f: &OrderForm) -> Order {
    let (lines, amount) = Order::lines_from(f, &[("E-7", 1)]).unwrap_or_else(|e| panic!("{e}"));
    Order {
        cardholder_name: "Hanako Yamada".into(),
        cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: None,
        card: card(),
        lines,
        amount,
        currency: f.currency.clone(),
        payment_method: PaymentMethod::LumpSum,
        destination: None,
    }
}

fn order_custom(f: &OrderForm) -> Order {
    let (lines, amount) = Order::lines_from(f, &[("P-2", 4)]).unwrap_or_else(|e| panic!("{e}"));
    Order {
        cardholder_name: "山田花子".into(),
        cardholder_address: "東京都千代田区千代田1-1".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: None,
        card: card(),
        lines,
        amount,
        currency: f.currency.clone(),
        payment_method: PaymentMethod::Revolving,
        destination: Some(Destination {
            addressee: "鈴木太郎".into(),
            address: "大阪府大阪市北区梅田2-2\n(gift wrap)".into(),
        }),
    }
}

// ---------------------------------------------------------------- sealed orders

struct Sealed {
    vector: SealedVector,
    sealed: SealedOrder,
    form: OrderForm,
    key_kind: String,
}

fn expand(prk: &[u8; 32], label: &[u8], role: Role, digest: &[u8; 32]) -> Res<[u8; 32]> {
    let mut info = label.to_vec();
    info.push(role.code());
    info.extend_from_slice(digest);
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::from_prk(prk)
        .map_err(|_| "prk")?
        .expand(&info, &mut okm)
        .map_err(|_| "hkdf")?;
    Ok(okm)
}

fn aad(header: &[u8], parts: &[(Role, [u8; 32])]) -> Vec<u8> {
    let mut a = AAD_LABEL.to_vec();
    a.extend_from_slice(header);
    a.push(parts.len() as u8);
    for (role, c) in parts {
        a.push(role.code());
        a.extend_from_slice(c);
    }
    a
}

/// Opens `role`'s part of a forwarded part with a key source.
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

/// Opens `role`'s part with an explicit pairwise key.
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

fn sealed_vector(
    world: &World,
    name: &str,
    description: &str,
    key_kind: &str,
    form: &OrderForm,
    order: &Order,
    seed: &str,
) -> Res<Sealed> {
    let src = world.source(CARDHOLDER, key_kind)?;
    let issuer = form.accepted_issuers[0].clone();
    // Vectors cover the 【0033】 variant too: the cardholder allows each form's policy.
    // Version 1 (gen_vectors_v2 writes the version-2 vectors).
    let s = sealed::seal_version(
        sealed::FORMAT_V1,
        form,
        order,
        &issuer,
        &form.policy,
        &*src,
        NOW,
        &mut SeededRandom::new(seed.as_bytes()),
    )?;
    let header = s.header.encode();
    let digest = sha256(&[HEADER_LABEL, &header]);
    ensure(digest == s.header.digest(), "header digest")?;
    let commitments: Vec<(Role, [u8; 32])> = s
        .parts
        .iter()
        .map(|p| (p.recipient, p.commitment))
        .collect();
    let aad = aad(&header, &commitments);
    let mut nonces = vec![0u8; 24 * s.parts.len()];
    SeededRandom::new(seed.as_bytes()).fill(&mut nonces)?;
    let mut parts = Vec::new();
    for (i, p) in s.parts.iter().enumerate() {
        let peer = s.header.party(p.recipient).ok_or("recipient")?;
        let pairwise = pairwise_key(&*src, peer)?;
        let ek = expand(pairwise.expose(), PART_KEY_LABEL, p.recipient, &digest)?;
        let ck = expand(pairwise.expose(), COMMIT_KEY_LABEL, p.recipient, &digest)?;
        let plaintext = XChaCha20Poly1305::new(&ek.into())
            .decrypt(
                &XNonce::from(p.nonce.unwrap_or_default()),
                Payload {
                    msg: &p.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| "independent decryption failed")?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&ck).map_err(|_| "hmac")?;
        mac.update(&plaintext);
        ensure(
            mac.finalize().into_bytes()[..] == p.commitment[..],
            "commitment",
        )?;
        ensure(
            p.nonce.unwrap_or_default()[..] == nonces[24 * i..24 * i + 24],
            "nonce stream",
        )?;
        let expect = serde_json::to_vec(&Disclosed::from_order(order, &form.policy, p.recipient))?;
        ensure(expect == plaintext, "plaintext")?;
        parts.push(PartVector {
            recipient: p.recipient.to_string(),
            peer: peer.to_string(),
            pairwise_key_hex: hex(pairwise.expose()),
            encrypt_key_hex: hex(&ek),
            commit_key_hex: hex(&ck),
            plaintext: String::from_utf8(plaintext)?,
            commitment_hex: hex(&p.commitment),
            nonce_hex: hex(&p.nonce.unwrap_or_default()),
            ciphertext_hex: hex(&p.ciphertext),
        });
    }
    let mut forwarded = Vec::new();
    for role in [Role::Issuer, Role::Carrier] {
        if s.header.party(role).is_some() {
            let f = s.forward(role)?;
            forwarded.push(ForwardedVector {
                recipient: role.to_string(),
                binary_hex: hex(&f.encode()),
                json: serde_json::to_string(&f)?,
            });
        }
    }
    let mut views = Vec::new();
    for role in s.header.recipients() {
        let holder = s.header.party(role).ok_or("recipient")?.to_string();
        let keys = world.source(&holder, key_kind)?;
        let fields = open_as(&s.forward(role)?, role, &form.policy, &*keys)?;
        views.push(ViewVector {
            recipient: role.to_string(),
            holder,
            disclosed: serde_json::to_value(&fields)?,
        });
    }
    ensure(SealedOrder::decode(&s.encode())? == s, "binary round trip")?;
    ensure(
        SealedOrder::from_json(&s.to_json())? == s,
        "json round trip",
    )?;
    let vector = SealedVector {
        name: name.into(),
        description: description.into(),
        key_source: key_kind.into(),
        cardholder: CARDHOLDER.into(),
        form: serde_json::to_value(form)?,
        order: serde_json::to_value(order)?,
        issuer: issuer.to_string(),
        now: NOW,
        rng_seed_utf8: seed.into(),
        policy_digest_hex: hex(&form.policy.digest()),
        header_hex: hex(&header),
        header_digest_hex: hex(&digest),
        aad_hex: hex(&aad),
        parts,
        binary_hex: hex(&s.encode()),
        json: s.to_json(),
        forwarded,
        views,
    };
    Ok(Sealed {
        vector,
        sealed: s,
        form: form.clone(),
        key_kind: key_kind.into(),
    })
}

impl FailVector {
    fn blank() -> FailVector {
        FailVector {
            name: String::new(),
            twin_of: String::new(),
            description: String::new(),
            operation: String::new(),
            input_hex: None,
            input_ref: None,
            input_text: None,
            open_as: None,
            holder: None,
            key_source: None,
            pairwise_key_hex: None,
            policy_toml: None,
            passphrase: None,
            error: String::new(),
            field: None,
        }
    }
}

/// The tamper twins kept when only a few are wanted.
const FEW: [&str; 12] = [
    "flip_issuer_ciphertext",
    "swap_part_bodies",
    "header_created_at",
    "spliced_issuer_part",
    "truncated",
    "wrong_key",
    "wrong_holder",
    "other_policy",
    "no_carrier_part",
    "forwarded_flip_other_commitment",
    "forwarded_foreign_commitment",
    "json_flip_issuer_ciphertext",
];

/// The tamper twins of one sealed order (all, or only the [`FEW`]); each is checked to fail
/// here before it is written.
fn sealed_fails(
    world: &World,
    v: &Sealed,
    other: Option<&Sealed>,
    few: bool,
) -> Res<Vec<FailVector>> {
    let s = &v.sealed;
    let base = &v.vector.name;
    let policy = &v.form.policy;
    let kk = v.key_kind.as_str();
    let holder = |role: Role| s.header.party(role).map(|p| p.to_string());
    let mut out = Vec::new();

    // (name, description, tampered order, opener role)
    let mut binary: Vec<(&str, String, Vec<u8>, Role)> = Vec::new();
    let mut m = s.clone();
    m.parts[1].ciphertext[0] ^= 0x01;
    binary.push((
        "flip_issuer_ciphertext",
        "first ciphertext byte of the issuer's part flipped".into(),
        m.encode(),
        Role::Issuer,
    ));
    let mut m = s.clone();
    if let Some(last) = m.parts[0].ciphertext.last_mut() {
        *last ^= 0x80;
    }
    binary.push((
        "flip_merchant_tag",
        "last byte (Poly1305 tag) of the merchant's part flipped".into(),
        m.encode(),
        Role::Merchant,
    ));
    let mut m = s.clone();
    if let Some(n) = m.parts[1].nonce.as_mut() {
        n[23] ^= 0x01;
    }
    binary.push((
        "flip_issuer_nonce",
        "last nonce byte of the issuer's part flipped".into(),
        m.encode(),
        Role::Issuer,
    ));
    let mut m = s.clone();
    m.parts[1].commitment[0] ^= 0x01;
    binary.push((
        "flip_issuer_commitment_open_merchant",
        "the issuer's commitment flipped; the merchant's AAD binds it, so the merchant's part \
         fails"
            .into(),
        m.encode(),
        Role::Merchant,
    ));
    let mut m = s.clone();
    m.parts[0].commitment[31] ^= 0x01;
    binary.push((
        "flip_own_commitment",
        "the merchant's own commitment flipped".into(),
        m.encode(),
        Role::Merchant,
    ));
    let mut m = s.clone();
    let (a, b) = (m.parts[0].clone(), m.parts[1].clone());
    m.parts[0] = sealed::SealedPart {
        recipient: a.recipient,
        ..b.clone()
    };
    m.parts[1] = sealed::SealedPart {
        recipient: b.recipient,
        ..a
    };
    binary.push((
        "swap_part_bodies",
        "the merchant's and the issuer's nonce, commitment and ciphertext swapped (role codes \
         kept)"
            .into(),
        m.encode(),
        Role::Merchant,
    ));
    let mut m = s.clone();
    m.parts.swap(0, 1);
    binary.push((
        "reorder_parts",
        "the merchant's and the issuer's parts swapped whole (parts out of role order)".into(),
        m.encode(),
        Role::Merchant,
    ));
    let mut m = s.clone();
    m.header.created_at += 1;
    binary.push((
        "header_created_at",
        "header created_at + 1".into(),
        m.encode(),
        Role::Merchant,
    ));
    let mut m = s.clone();
    m.header.order_id = "ord-9999".into();
    binary.push((
        "header_order_id",
        "header order id replaced by ord-9999".into(),
        m.encode(),
        Role::Issuer,
    ));
    let mut m = s.clone();
    m.header.policy_digest[0] ^= 0x01;
    binary.push((
        "header_policy_digest",
        "header policy digest flipped (the opener's policy no longer matches)".into(),
        m.encode(),
        Role::Issuer,
    ));
    if s.header.carrier.is_some() {
        let mut m = s.clone();
        m.header.carrier = None;
        m.parts.pop();
        binary.push((
            "carrier_dropped",
            "carrier removed from the header and its part dropped".into(),
            m.encode(),
            Role::Merchant,
        ));
    }
    if let Some(o) = other {
        let mut m = s.clone();
        m.parts[1] = o.sealed.parts[1].clone();
        binary.push((
            "spliced_issuer_part",
            format!("the issuer's part replaced by that of {}", o.vector.name),
            m.encode(),
            Role::Issuer,
        ));
    }
    let mut bytes = s.encode();
    bytes[4] = 4;
    binary.push((
        "version",
        "format version byte set to 4 (1, 2 and 3 are read)".into(),
        bytes,
        Role::Merchant,
    ));
    let mut bytes = s.encode();
    bytes[0] = b'X';
    binary.push(("magic", "magic WRFS -> XRFS".into(), bytes, Role::Merchant));
    let bytes = s.encode();
    binary.push((
        "truncated",
        "last byte removed".into(),
        bytes[..bytes.len() - 1].to_vec(),
        Role::Merchant,
    ));
    let mut bytes = s.encode();
    bytes.push(0);
    binary.push((
        "trailing",
        "one byte appended".into(),
        bytes,
        Role::Merchant,
    ));
    for (name, description, bytes, role) in binary {
        out.push(FailVector {
            name: format!("fail_{base}_{name}"),
            twin_of: base.clone(),
            description,
            operation: "open_sealed".into(),
            input_hex: Some(hex(&bytes)),
            open_as: Some(role.to_string()),
            holder: holder(role),
            key_source: Some(kk.into()),
            ..FailVector::blank()
        });
    }

    // The wrong key, the wrong holder, the wrong recipient, the wrong policy.
    let bytes = hex(&s.encode());
    let wrong = pairwise_key(&*world.source(EVIL_MERCHANT, kk)?, &s.header.cardholder)?;
    out.push(FailVector {
        name: format!("fail_{base}_wrong_key"),
        twin_of: base.clone(),
        description: "the merchant's part opened with the cardholder–merchant:evil.example key"
            .into(),
        operation: "open_with_key".into(),
        input_hex: Some(bytes.clone()),
        open_as: Some("merchant".into()),
        pairwise_key_hex: Some(hex(wrong.expose())),
        ..FailVector::blank()
    });
    out.push(FailVector {
        name: format!("fail_{base}_wrong_holder"),
        twin_of: base.clone(),
        description: "merchant:evil.example tries to open the merchant's part".into(),
        operation: "open_sealed".into(),
        input_hex: Some(bytes.clone()),
        open_as: Some("merchant".into()),
        holder: Some(EVIL_MERCHANT.into()),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });
    out.push(FailVector {
        name: format!("fail_{base}_cardholder_opens"),
        twin_of: base.clone(),
        description: "the cardholder tries to open the merchant's part with its own key".into(),
        operation: "open_sealed".into(),
        input_hex: Some(bytes.clone()),
        open_as: Some("merchant".into()),
        holder: Some(CARDHOLDER.into()),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });
    out.push(FailVector {
        name: format!("fail_{base}_other_policy"),
        twin_of: base.clone(),
        description: "opened under another policy than the one sealed under".into(),
        operation: "open_sealed".into(),
        input_hex: Some(bytes.clone()),
        open_as: Some("merchant".into()),
        holder: holder(Role::Merchant),
        key_source: Some(kk.into()),
        policy_toml: Some(if policy == &Policy::patent_default() {
            NO_FAX_POLICY.into()
        } else {
            Policy::patent_default().to_toml()
        }),
        ..FailVector::blank()
    });
    if s.header.carrier.is_none() {
        out.push(FailVector {
            name: format!("fail_{base}_no_carrier_part"),
            twin_of: base.clone(),
            description: "the carrier asks for a part of an order without a carrier".into(),
            operation: "open_sealed".into(),
            input_hex: Some(bytes.clone()),
            open_as: Some("carrier".into()),
            holder: Some(PARTIES[3].into()),
            key_source: Some(kk.into()),
            ..FailVector::blank()
        });
    }

    // JSON wire form.
    let mut m = s.clone();
    m.parts[1].ciphertext[5] ^= 0x04;
    out.push(FailVector {
        name: format!("fail_{base}_json_flip_issuer_ciphertext"),
        twin_of: base.clone(),
        description: "JSON form with a bit of the issuer's ciphertext flipped".into(),
        operation: "open_sealed_json".into(),
        input_text: Some(m.to_json()),
        open_as: Some("issuer".into()),
        holder: holder(Role::Issuer),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });
    let json = s
        .to_json()
        .replacen("{\"header\":{", "{\"header\":{\"extra\":1,", 1);
    out.push(FailVector {
        name: format!("fail_{base}_json_unknown_field"),
        twin_of: base.clone(),
        description: "JSON form with an unknown header member".into(),
        operation: "open_sealed_json".into(),
        input_text: Some(json),
        open_as: Some("merchant".into()),
        holder: holder(Role::Merchant),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });
    let json = s.to_json().replacen("\"version\":1", "\"version\":4", 1);
    out.push(FailVector {
        name: format!("fail_{base}_json_version"),
        twin_of: base.clone(),
        description: "JSON form with version 4".into(),
        operation: "open_sealed_json".into(),
        input_text: Some(json),
        open_as: Some("merchant".into()),
        holder: holder(Role::Merchant),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });

    // Forwarded parts.
    let fwd = s.forward(Role::Issuer)?;
    let mut f = fwd.clone();
    f.others[0].commitment[0] ^= 0x01;
    out.push(FailVector {
        name: format!("fail_{base}_forwarded_flip_other_commitment"),
        twin_of: base.clone(),
        description: "forwarded issuer part with the merchant's commitment flipped".into(),
        operation: "open_forwarded".into(),
        input_hex: Some(hex(&f.encode())),
        open_as: Some("issuer".into()),
        holder: holder(Role::Issuer),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });
    let mut f = fwd.clone();
    f.others.pop();
    out.push(FailVector {
        name: format!("fail_{base}_forwarded_missing_commitment"),
        twin_of: base.clone(),
        description: "forwarded issuer part without the last other commitment".into(),
        operation: "open_forwarded".into(),
        input_hex: Some(hex(&f.encode())),
        open_as: Some("issuer".into()),
        holder: holder(Role::Issuer),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });
    if let Some(c) = s.header.carrier.as_ref() {
        out.push(FailVector {
            name: format!("fail_{base}_forwarded_wrong_recipient"),
            twin_of: base.clone(),
            description: "the carrier tries to open the part forwarded to the issuer".into(),
            operation: "open_forwarded".into(),
            input_hex: Some(hex(&fwd.encode())),
            open_as: Some("carrier".into()),
            holder: Some(c.to_string()),
            key_source: Some(kk.into()),
            ..FailVector::blank()
        });
    }
    if let Some(o) = other {
        let mut f = fwd.clone();
        f.others[0].commitment = o.sealed.parts[0].commitment;
        out.push(FailVector {
            name: format!("fail_{base}_forwarded_foreign_commitment"),
            twin_of: base.clone(),
            description: format!(
                "forwarded issuer part with the merchant commitment of {}",
                o.vector.name
            ),
            operation: "open_forwarded".into(),
            input_hex: Some(hex(&f.encode())),
            open_as: Some("issuer".into()),
            holder: holder(Role::Issuer),
            key_source: Some(kk.into()),
            ..FailVector::blank()
        });
    }
    let mut f = fwd.clone();
    f.part.ciphertext[0] ^= 0x10;
    out.push(FailVector {
        name: format!("fail_{base}_forwarded_json_flip_ciphertext"),
        twin_of: base.clone(),
        description: "forwarded issuer part (JSON) with a ciphertext bit flipped".into(),
        operation: "open_forwarded_json".into(),
        input_text: Some(serde_json::to_string(&f)?),
        open_as: Some("issuer".into()),
        holder: holder(Role::Issuer),
        key_source: Some(kk.into()),
        ..FailVector::blank()
    });

    if few {
        out.retain(|f| FEW.iter().any(|s| f.name == format!("fail_{base}_{s}")));
    }
    // Every twin but `other_policy` is opened under the policy its order was sealed under,
    // so that it fails for what it names and not at the policy check (§10 step 4).
    if policy != &Policy::patent_default() {
        for fv in &mut out {
            if fv.policy_toml.is_none() {
                fv.policy_toml = Some(policy.to_toml());
            }
        }
    }
    for fv in &mut out {
        (fv.error, fv.field) = run_fail(world, fv, &[])?;
    }
    Ok(out)
}

/// Runs a tamper twin; returns the error kind, or an error if it was accepted.
fn run_fail(
    world: &World,
    f: &FailVector,
    files: &[KeyFileVector],
) -> Res<(String, Option<String>)> {
    let role = |f: &FailVector| -> Res<Role> {
        let r = f.open_as.as_deref().ok_or("open_as")?;
        Role::ALL
            .into_iter()
            .find(|x| x.as_str() == r)
            .ok_or_else(|| format!("role {r}").into())
    };
    let policy = match &f.policy_toml {
        Some(t) => Policy::from_toml(t)?,
        None => Policy::patent_default(),
    };
    let input_hex = match &f.input_ref {
        Some(r) => files
            .iter()
            .find(|k| &k.name == r)
            .and_then(|k| k.hex.clone())
            .ok_or_else(|| format!("input_ref {r}"))?,
        None => f.input_hex.clone().unwrap_or_default(),
    };
    let bytes = unhex(&input_hex).ok_or("input hex")?;
    let text = f.input_text.clone().unwrap_or_default();
    let keys = || -> Res<Box<dyn KeySource>> {
        world.source(
            f.holder.as_deref().ok_or("holder")?,
            f.key_source.as_deref().unwrap_or("blom"),
        )
    };
    let result: Result<(), Error> = match f.operation.as_str() {
        "open_sealed" => {
            let (r, k) = (role(f)?, keys()?);
            SealedOrder::decode(&bytes)
                .and_then(|s| s.forward(r))
                .and_then(|fw| open_as(&fw, r, &policy, &*k).map(drop))
        }
        "open_sealed_json" => {
            let (r, k) = (role(f)?, keys()?);
            SealedOrder::from_json(&text)
                .and_then(|s| s.forward(r))
                .and_then(|fw| open_as(&fw, r, &policy, &*k).map(drop))
        }
        "open_forwarded" => {
            let (r, k) = (role(f)?, keys()?);
            ForwardedPart::decode(&bytes).and_then(|fw| open_as(&fw, r, &policy, &*k).map(drop))
        }
        "open_forwarded_json" => {
            let (r, k) = (role(f)?, keys()?);
            let fw: ForwardedPart = serde_json::from_str(&text)?;
            open_as(&fw, r, &policy, &*k).map(drop)
        }
        "open_with_key" => {
            let r = role(f)?;
            let key: [u8; 32] = unhex(f.pairwise_key_hex.as_deref().ok_or("key")?)
                .ok_or("hex")?
                .try_into()
                .map_err(|_| "key length")?;
            SealedOrder::decode(&bytes)
                .and_then(|s| s.forward(r))
                .and_then(|fw| open_with_key(&fw, r, &policy, &Key32::from_bytes(key)).map(drop))
        }
        "decode_key_file" => {
            let pass = f.passphrase.as_deref().map(Secret::new);
            if SokKeyFile::is_sok_kind(&bytes) {
                SokKeyFile::decode(&bytes, pass.as_ref()).map(drop)
            } else {
                KeyFile::decode(&bytes, pass.as_ref()).map(drop)
            }
        }
        other => return Err(format!("unknown operation {other}").into()),
    };
    match result {
        Ok(()) => Err(format!("{} was accepted", f.name).into()),
        Err(e) => Ok((kind(&e), field_of(&e))),
    }
}

// ---------------------------------------------------------------- key files

fn key_file_vectors(
    world: &World,
    tag: &str,
    full: bool,
) -> Res<(Vec<KeyFileVector>, Vec<FailVector>)> {
    let holder = id(CARDHOLDER);
    let params = KdfParams {
        m_cost: CHEAP_KDF.m_cost,
        t_cost: CHEAP_KDF.t_cost,
        p_cost: CHEAP_KDF.p_cost,
    };
    let pass = Secret::new(PASSPHRASE);
    let mut files = Vec::new();
    let mut fail = Vec::new();

    let hybrid_file = || {
        AnyFile::Sok(Box::new(SokKeyFile::Hybrid(
            world.master.personal_key(&holder),
            world.sok.personal_key(&holder),
        )))
    };
    // (name, kind, holder, file, sealed?)
    let mut make: Vec<(String, &str, Option<String>, AnyFile, bool)> = vec![
        (
            format!("{tag}_personal_plain"),
            "personal",
            Some(CARDHOLDER.into()),
            AnyFile::Classic(KeyFile::Personal(world.master.personal_key(&holder))),
            false,
        ),
        (
            format!("{tag}_personal_sealed"),
            "personal",
            Some(CARDHOLDER.into()),
            AnyFile::Classic(KeyFile::Personal(world.master.personal_key(&holder))),
            true,
        ),
        (
            format!("{tag}_blom_sok_personal_sealed"),
            "blom_sok_personal",
            Some(CARDHOLDER.into()),
            hybrid_file(),
            true,
        ),
    ];
    if full {
        make.push((
            format!("{tag}_master_plain"),
            "master",
            None,
            AnyFile::Classic(KeyFile::Master(Master::from_upper(
                world.master.k(),
                &world.master.upper(),
            )?)),
            false,
        ));
        make.push((
            format!("{tag}_predistributed_plain"),
            "predistributed",
            Some(PARTIES[1].into()),
            AnyFile::Classic(KeyFile::Predistributed(world.table(&id(PARTIES[1]))?)),
            false,
        ));
        make.push((
            format!("{tag}_sok_master_plain"),
            "sok_master",
            None,
            AnyFile::Sok(Box::new(SokKeyFile::Master(SokMaster::from_bytes(
                &world.sok.to_bytes(),
            )?))),
            false,
        ));
        make.push((
            format!("{tag}_sok_personal_plain"),
            "sok_personal",
            Some(CARDHOLDER.into()),
            AnyFile::Sok(Box::new(SokKeyFile::Personal(
                world.sok.personal_key(&holder),
            ))),
            false,
        ));
        make.push((
            format!("{tag}_blom_sok_personal_plain"),
            "blom_sok_personal",
            Some(CARDHOLDER.into()),
            hybrid_file(),
            false,
        ));
    }
    for (name, kind_name, holder, file, sealed) in make {
        let seed = format!("warifu/vectors/{name}");
        let bytes = file.encode(
            sealed.then_some((&pass, params)),
            &mut SeededRandom::new(seed.as_bytes()),
        )?;
        let (file_key, body) = if sealed {
            let (k, b) = open_key_file_independently(&bytes, PASSPHRASE)?;
            (Some(hex(&k)), b)
        } else {
            let body_len = u32::from_be_bytes(bytes[7..11].try_into()?) as usize;
            ensure(bytes.len() == 11 + body_len + 32, "plain key file layout")?;
            ensure(
                bytes[11 + body_len..]
                    == sha256(&[b"warifu/v1/keyfile-checksum", &bytes[..11 + body_len]]),
                "plain key file checksum",
            )?;
            (None, bytes[11..11 + body_len].to_vec())
        };
        ensure(
            AnyFile::decode(&bytes, Some(&pass))?.kind_name() == file.kind_name(),
            "key file kind",
        )?;
        files.push(KeyFileVector {
            name: name.clone(),
            kind: kind_name.into(),
            holder,
            passphrase: sealed.then(|| PASSPHRASE.into()),
            kdf: sealed.then_some(CHEAP_KDF),
            rng_seed_utf8: sealed.then_some(seed),
            file_key_hex: file_key,
            body_hex: full.then(|| hex(&body)),
            hex: Some(hex(&bytes)),
            len: bytes.len(),
            sha256_hex: hex(&sha256(&[&bytes])),
        });

        // A plain twin carries a checksum recomputed over its changed bytes (when its layout
        // is whole), so that it fails for what it names and not at the checksum.
        let twin = |suffix: &str, description: &str, input: Option<Vec<u8>>, pw: Option<&str>| {
            let input = input.map(|b| {
                if suffix.contains("checksum") {
                    b
                } else {
                    rechecksum(b)
                }
            });
            FailVector {
                name: format!("fail_{name}_{suffix}"),
                twin_of: name.clone(),
                description: description.into(),
                operation: "decode_key_file".into(),
                input_hex: input.as_deref().map(hex),
                input_ref: input.is_none().then(|| name.clone()),
                passphrase: pw.map(str::to_owned),
                ..FailVector::blank()
            }
        };
        if sealed {
            fail.push(twin(
                "wrong_passphrase",
                "correct file, passphrase \"Correct horse battery staple\"",
                None,
                Some("Correct horse battery staple"),
            ));
            fail.push(twin(
                "no_passphrase",
                "correct file, no passphrase",
                None,
                None,
            ));
        }
        if full || !sealed {
            let short = bytes.len() - 1;
            let mut flip_body = bytes.clone();
            flip_body[short] ^= 0x01;
            let mut version = bytes.clone();
            version[4] = 2;
            let mut magic = bytes.clone();
            magic[3] = b'S';
            let mut trailing = bytes.clone();
            trailing.push(0);
            let mut edits = vec![("truncated", "last byte removed", bytes[..short].to_vec())];
            if full && sealed {
                edits.push((
                    "flip_last_byte",
                    "last byte (the AEAD tag) flipped",
                    flip_body,
                ));
            } else if full {
                // A plain file's last byte is its checksum's: the checksum names the change.
                edits.push((
                    "flip_checksum",
                    "last byte (of the checksum) flipped",
                    flip_body,
                ));
                let mut flip = bytes.clone();
                flip[11] ^= 0x01;
                edits.push((
                    "flip_body_checksum",
                    "first body byte flipped, checksum kept: the checksum stops it",
                    flip,
                ));
            }
            if full {
                edits.extend([
                    ("version", "version byte set to 2", version),
                    ("magic", "magic WRFK -> WRFS", magic),
                    ("trailing", "one byte appended", trailing),
                ]);
            }
            for (suffix, description, input) in edits {
                fail.push(twin(
                    suffix,
                    description,
                    Some(input),
                    sealed.then_some(PASSPHRASE),
                ));
            }
            if sealed {
                let mut salt = bytes.clone();
                salt[7] ^= 0x01;
                fail.push(twin(
                    "flip_salt",
                    "first salt byte flipped",
                    Some(salt),
                    Some(PASSPHRASE),
                ));
                let mut hostile = bytes.clone();
                hostile[23..27].copy_from_slice(&u32::MAX.to_be_bytes());
                fail.push(twin(
                    "hostile_memory_cost",
                    "Argon2 memory cost 2^32-1 KiB (over the 1 GiB limit)",
                    Some(hostile),
                    Some(PASSPHRASE),
                ));
            } else if full && kind_name == "sok_personal" {
                // Body: scheme(1) ‖ u16 len ‖ id ‖ G1[48] ‖ G2[96].
                let g1 = 11 + 1 + 2 + CARDHOLDER.len();
                let mut flip = bytes.clone();
                flip[g1 + 47] ^= 0x01;
                fail.push(twin(
                    "flip_g1",
                    "last byte of the G1 key flipped (off the curve or another point)",
                    Some(flip),
                    None,
                ));
                let other = SokMaster::generate(&mut SeededRandom::new(b"warifu/vectors/other"))?
                    .personal_key(&id(CARDHOLDER));
                let mut mixed = bytes.clone();
                mixed[g1 + 48..g1 + 144].copy_from_slice(&other.g2_bytes());
                fail.push(twin(
                    "mixed_halves",
                    "G2 key from another SOK master (fails the pairing consistency check)",
                    Some(mixed),
                    None,
                ));
                let mut infinity = bytes.clone();
                infinity[g1..g1 + 48].fill(0);
                infinity[g1] = 0xc0; // compressed, infinity
                fail.push(twin(
                    "g1_infinity",
                    "G1 key replaced by the point at infinity",
                    Some(infinity),
                    None,
                ));
            } else if full && kind_name == "sok_master" {
                let mut zero = bytes.clone();
                zero[12..44].fill(0);
                fail.push(twin("zero_scalar", "master scalar 0", Some(zero), None));
                let mut big = bytes.clone();
                big[12..44].fill(0xff);
                fail.push(twin(
                    "scalar_too_large",
                    "master scalar 2^256 - 1 (>= r)",
                    Some(big),
                    None,
                ));
            } else if full && kind_name == "personal" {
                // Body: scheme(1) ‖ u16 len ‖ id ‖ u32 k ‖ u8 lanes ‖ elements.
                let first = 11 + 1 + 2 + CARDHOLDER.len() + 4 + 1;
                let mut nc = bytes.clone();
                nc[first..first + 16].copy_from_slice(&P.to_le_bytes());
                fail.push(twin(
                    "non_canonical_element",
                    "first key element replaced by p (not canonical)",
                    Some(nc),
                    None,
                ));
                let mut lanes = bytes.clone();
                lanes[first - 1] = 3;
                fail.push(twin("lanes", "lane count 3", Some(lanes), None));
                let mut k0 = bytes.clone();
                k0[first - 5..first - 1].copy_from_slice(&0u32.to_be_bytes());
                fail.push(twin("k_zero", "k = 0", Some(k0), None));
            } else if full && kind_name == "master" {
                let mut huge = bytes.clone();
                huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
                fail.push(twin(
                    "huge_k",
                    "k = 2^32 - 1 (over the limit 8192)",
                    Some(huge),
                    None,
                ));
            } else if full && kind_name == "predistributed" {
                // owner ‖ u16(2) ‖ the first peer and its key, twice.
                let owner = PARTIES[1];
                let first_peer = 11 + 2 + owner.len() + 2;
                let entry_len = 2 + CARDHOLDER.len() + 32;
                let mut body = Vec::new();
                str16(&mut body, owner.as_bytes());
                body.extend_from_slice(&2u16.to_be_bytes());
                for _ in 0..2 {
                    body.extend_from_slice(&bytes[first_peer..first_peer + entry_len]);
                }
                let mut dup = b"WRFK\x01\x03\x00".to_vec();
                dup.extend_from_slice(&(body.len() as u32).to_be_bytes());
                dup.extend_from_slice(&body);
                dup.extend_from_slice(&[0; 32]); // the checksum, recomputed by `twin`
                fail.push(twin(
                    "duplicate_peer",
                    "a table listing its first peer twice",
                    Some(dup),
                    None,
                ));
            }
        }
    }
    for fv in &mut fail {
        (fv.error, fv.field) = run_fail(world, fv, &files)?;
    }
    Ok((files, fail))
}

/// A plain key file (protection 0) whose layout is whole (`11 + L + 32` bytes) with its
/// checksum recomputed over the bytes before it (§11.1); anything else unchanged.
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
}

/// Opens a sealed key file from the spec alone: returns the Argon2id output and the body.
fn open_key_file_independently(bytes: &[u8], pass: &str) -> Res<([u8; 32], Vec<u8>)> {
    // magic 4 ‖ version 1 ‖ kind 1 ‖ protection 1 ‖ salt 16 ‖ m,t,p 4+4+4 ‖ nonce 24 ‖
    // u32 len ‖ ciphertext
    ensure(
        &bytes[..4] == b"WRFK" && bytes[4] == 1 && bytes[6] == 1,
        "sealed header",
    )?;
    let salt = &bytes[7..23];
    let u = |at: usize| -> Res<u32> { Ok(u32::from_be_bytes(bytes[at..at + 4].try_into()?)) };
    let (m, t, p) = (u(23)?, u(27)?, u(31)?);
    let nonce: [u8; 24] = bytes[35..59].try_into()?;
    let len = u(59)? as usize;
    ensure(bytes.len() == 63 + len, "sealed length")?;
    let params = Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.as_bytes(), salt, &mut key)
        .map_err(|e| e.to_string())?;
    let body = XChaCha20Poly1305::new(&key.into())
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &bytes[63..],
                aad: &bytes[..59],
            },
        )
        .map_err(|_| "independent key-file decryption failed")?;
    Ok((key, body))
}

// ---------------------------------------------------------------- SOK

/// The scalar 1, so that `sign` with it yields the bare hash H1(id) or H2(id).
fn scalar_one() -> [u8; 32] {
    let mut b = [0u8; 32];
    b[31] = 1;
    b
}

fn sok_vectors(world: &World, seed: &str) -> Res<SokVectors> {
    let s = world.sok.to_bytes();
    // Spec: 32 bytes from the stream, top bit cleared, redrawn until 0 < s < r.
    let mut rng = SeededRandom::new(seed.as_bytes());
    let drawn = loop {
        let mut b = [0u8; 32];
        rng.fill(&mut b)?;
        b[0] &= 0x7f;
        if blst::min_pk::SecretKey::from_bytes(&b).is_ok() {
            break b;
        }
    };
    ensure(drawn == *s, "SOK master from the stream")?;
    let err = |e: blst::BLST_ERROR| format!("blst: {e:?}");
    let one_g1 = blst::min_sig::SecretKey::from_bytes(&scalar_one()).map_err(err)?;
    let one_g2 = blst::min_pk::SecretKey::from_bytes(&scalar_one()).map_err(err)?;
    let s_g1 = blst::min_sig::SecretKey::from_bytes(&s[..]).map_err(err)?;
    let parties = PARTIES
        .iter()
        .map(|p| {
            let key = world.sok.personal_key(&id(p));
            let g1 = s_g1.sign(p.as_bytes(), DST_G1, &[]).compress();
            ensure(g1 == key.g1_bytes(), "SOK G1 key")?;
            Ok(SokPartyVector {
                id: p.to_string(),
                h1_hex: hex(&one_g1.sign(p.as_bytes(), DST_G1, &[]).compress()),
                h2_hex: hex(&one_g2.sign(p.as_bytes(), DST_G2, &[]).compress()),
                g1_key_hex: hex(&key.g1_bytes()),
                g2_key_hex: hex(&key.g2_bytes()),
            })
        })
        .collect::<Res<Vec<_>>>()?;
    let mut pairs = Vec::new();
    for (i, a) in PARTIES.iter().enumerate() {
        for b in &PARTIES[i + 1..] {
            let (ka, kb) = (
                world.sok.personal_key(&id(a)),
                world.sok.personal_key(&id(b)),
            );
            let gt = ka.shared_gt(&id(b))?;
            ensure(gt == kb.shared_gt(&id(a))?, "GT agrees")?;
            // Spec: e(s·H1(lo), H2(hi)) with a plain Miller loop and final exponentiation.
            let (lo, hi) = if a.as_bytes() < b.as_bytes() {
                (a, b)
            } else {
                (b, a)
            };
            let p: blst::blst_p1_affine = s_g1.sign(lo.as_bytes(), DST_G1, &[]).into();
            let q: blst::blst_p2_affine = one_g2.sign(hi.as_bytes(), DST_G2, &[]).into();
            let spec = blst::blst_fp12::miller_loop(&q, &p)
                .final_exp()
                .to_bendian();
            ensure(spec[..] == gt[..], "GT from the pairing")?;
            let sok_info = pairwise_info(3, a, b);
            let sok_key = pairwise_key(&ka, &id(b))?;
            ensure(
                sok_key.expose() == &hkdf_pairwise(&gt, &sok_info)?,
                "SOK key",
            )?;
            let raw = world.master.personal_key(&id(a)).raw_shared_bytes(&id(b));
            let mut ikm = vec![1u8, 0, 32];
            ikm.extend_from_slice(&raw);
            ikm.extend_from_slice(&[3, 0x02, 0x40]);
            ikm.extend_from_slice(&gt);
            let hy_info = pairwise_info(0x80, a, b);
            let hy_key = pairwise_key(&*world.source(a, "blom+sok")?, &id(b))?;
            ensure(
                hy_key.expose() == &hkdf_pairwise(&ikm, &hy_info)?,
                "Blom+SOK key",
            )?;
            ensure(
                hy_key == pairwise_key(&*world.source(b, "blom+sok")?, &id(a))?,
                "Blom+SOK keys agree",
            )?;
            pairs.push(SokPairVector {
                a: a.to_string(),
                b: b.to_string(),
                gt_hex: hex(&gt),
                sok_info_hex: hex(&sok_info),
                sok_pairwise_key_hex: hex(sok_key.expose()),
                hybrid_ikm_hex: hex(&ikm),
                hybrid_info_hex: hex(&hy_info),
                hybrid_pairwise_key_hex: hex(hy_key.expose()),
            });
        }
    }
    // e(g1, g2): blst's (Warifu's) GT is the textbook reduced pairing cubed.
    // 1·g is the generator: the public key of the scalar 1 (min_pk: G1, min_sig: G2).
    let g1: blst::blst_p1_affine = blst::min_pk::SecretKey::from_bytes(&scalar_one())
        .map_err(err)?
        .sk_to_pk()
        .into();
    let g2: blst::blst_p2_affine = one_g1.sk_to_pk().into();
    let gen_gt = blst::blst_fp12::miller_loop(&g2, &g1).final_exp();
    let textbook = textbook_pairing(&g2, &g1);
    ensure(
        textbook * textbook * textbook == gen_gt,
        "GT = textbook pairing cubed",
    )?;
    Ok(SokVectors {
        master_seed_utf8: seed.into(),
        master_hex: hex(&s[..]),
        dst_g1: String::from_utf8(DST_G1.to_vec())?,
        dst_g2: String::from_utf8(DST_G2.to_vec())?,
        pairing_generators_hex: hex(&gen_gt.to_bendian()),
        pairing_generators_textbook_hex: hex(&textbook.to_bendian()),
        parties,
        pairs,
    })
}

// ---------------------------------------------------------------- sessions

fn str16(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn bytes32(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Res<[u8; 32]> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| "hmac")?;
    for p in parts {
        m.update(p);
    }
    Ok(m.finalize().into_bytes().into())
}

/// The requests of every session: method, path, body, time; status, body, time.
/// Two exchanges on real routes of the responder (the HTTP API section): for an issuer an
/// authorization and a lookup of an unknown one, for a merchant an order form and a lookup of
/// an unknown order. The bodies are short examples, not full wire bodies.
fn exchanges(
    responder: &str,
) -> [(
    &'static str,
    &'static str,
    &'static str,
    u64,
    u16,
    &'static str,
    u64,
); 2] {
    if responder.starts_with("issuer:") {
        [
            (
                "POST",
                "/v1/authorizations",
                r#"{"order_id":"ord-0001","amount":3200}"#,
                NOW + 2,
                200,
                r#"{"outcome":"approved"}"#,
                NOW + 3,
            ),
            (
                "GET",
                "/v1/authorizations/ord-0002",
                "",
                NOW + 4,
                404,
                "",
                NOW + 5,
            ),
        ]
    } else {
        [
            (
                "POST",
                "/v1/order-forms",
                r#"{"digital":false}"#,
                NOW + 2,
                200,
                r#"{"order_id":"ord-0001"}"#,
                NOW + 3,
            ),
            ("GET", "/v1/orders/ord-0002", "", NOW + 4, 404, "", NOW + 5),
        ]
    }
}

fn session_vector(
    world: &World,
    name: &str,
    initiator: &str,
    responder: &str,
    source: &str,
) -> Res<(SessionVector, Vec<FailVector>)> {
    let (ki, kr) = (
        world.source(initiator, source)?,
        world.source(responder, source)?,
    );
    let iseed = format!("warifu/vectors/{name}/initiator");
    let rseed = format!("warifu/vectors/{name}/responder");
    let (t0, t1) = (NOW, NOW + 1);
    let (init, hello) = Initiator::start(
        &*ki,
        &id(responder),
        t0,
        &mut SeededRandom::new(iseed.as_bytes()),
    )?;
    let (pending, challenge) =
        PendingHandshake::respond(&*kr, &hello, t0, &mut SeededRandom::new(rseed.as_bytes()))?;
    let (mut client, confirm) = init.finish(&challenge)?;
    let mut server = pending.confirm(&confirm, t1)?;

    // The spec, independently.
    let k = pairwise_key(&*ki, &id(responder))?;
    let mut stream_i = [0u8; 32];
    SeededRandom::new(iseed.as_bytes()).fill(&mut stream_i)?;
    let mut stream_r = [0u8; 32];
    SeededRandom::new(rseed.as_bytes()).fill(&mut stream_r)?;
    ensure(
        hello.nonce_i == stream_i && challenge.nonce_r == stream_r,
        "nonces",
    )?;
    let mut t = vec![1u8];
    str16(&mut t, initiator.as_bytes());
    str16(&mut t, responder.as_bytes());
    t.extend_from_slice(&hello.nonce_i);
    t.extend_from_slice(&challenge.nonce_r);
    t.extend_from_slice(&t0.to_be_bytes());
    let mac_r = hmac(k.expose(), &[RESPONDER_TAG, &t])?;
    let mac_i = hmac(k.expose(), &[INITIATOR_TAG, &t])?;
    ensure(
        mac_r == challenge.mac && mac_i == confirm.mac,
        "handshake MACs",
    )?;
    let salt = [hello.nonce_i, challenge.nonce_r].concat();
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(&salt), k.expose())
        .expand(&[SESSION_LABEL, &t].concat(), &mut okm)
        .map_err(|_| "hkdf")?;
    let sid = hex(&sha256(&[SESSION_LABEL, &t])[..16]);
    ensure(client.id() == sid && server.id() == sid, "session id")?;

    let mut xs = Vec::new();
    let mut auths = Vec::new();
    for (method, path, body, rt, status, rbody, st) in exchanges(responder) {
        let auth = client.sign_request(method, path, body.as_bytes(), rt)?;
        server.verify_request(&auth, method, path, body.as_bytes(), rt)?;
        let mut input = Vec::new();
        str16(&mut input, sid.as_bytes());
        input.extend_from_slice(&auth.seq.to_be_bytes());
        input.extend_from_slice(&rt.to_be_bytes());
        bytes32(&mut input, method.as_bytes());
        bytes32(&mut input, path.as_bytes());
        input.extend_from_slice(&sha256(&[body.as_bytes()]));
        ensure(
            hmac(&okm[..32], &[REQUEST_TAG, &input])? == auth.mac,
            "request MAC",
        )?;
        let resp = server.sign_response(&auth, status, rbody.as_bytes(), st);
        client.verify_response(&auth, &resp, status, rbody.as_bytes(), st)?;
        let mut rinput = Vec::new();
        str16(&mut rinput, sid.as_bytes());
        rinput.extend_from_slice(&auth.seq.to_be_bytes());
        rinput.extend_from_slice(&auth.mac);
        rinput.extend_from_slice(&st.to_be_bytes());
        rinput.extend_from_slice(&status.to_be_bytes());
        rinput.extend_from_slice(&sha256(&[rbody.as_bytes()]));
        ensure(
            hmac(&okm[32..], &[RESPONSE_TAG, &rinput])? == resp.mac,
            "response MAC",
        )?;
        xs.push(ExchangeVector {
            method: method.into(),
            path: path.into(),
            request_body_utf8: body.into(),
            request_time: rt,
            request_mac_input_hex: hex(&input),
            request_auth: serde_json::to_string(&auth)?,
            status,
            response_body_utf8: rbody.into(),
            response_time: st,
            response_mac_input_hex: hex(&rinput),
            response_auth: serde_json::to_string(&resp)?,
        });
        auths.push((auth, resp));
    }
    let v = SessionVector {
        name: name.into(),
        description: format!("{initiator} confirms {responder} ({source} keys), then two requests"),
        key_source: source.into(),
        initiator: initiator.into(),
        responder: responder.into(),
        initiator_seed_utf8: iseed,
        responder_seed_utf8: rseed,
        hello_time: t0,
        confirm_time: t1,
        pairwise_key_hex: hex(k.expose()),
        hello: serde_json::to_string(&hello)?,
        challenge: serde_json::to_string(&challenge)?,
        confirm: serde_json::to_string(&confirm)?,
        transcript_hex: hex(&t),
        responder_mac_hex: hex(&mac_r),
        initiator_mac_hex: hex(&mac_i),
        request_key_hex: hex(&okm[..32]),
        response_key_hex: hex(&okm[32..]),
        session_id: sid.clone(),
        exchanges: xs,
    };

    // Tamper twins.
    let impostor = pairwise_key(&*world.source(EVIL_MERCHANT, source)?, &id(responder))?;
    let impostor_r = pairwise_key(&*world.source(EVIL_MERCHANT, source)?, &id(initiator))?;
    let mut twins: Vec<(&str, String, &str, serde_json::Value)> = Vec::new();
    let mut h = hello.clone();
    h.version = 2;
    twins.push((
        "hello_version",
        "Hello with version 2".into(),
        "session_respond",
        serde_json::json!({"hello": h, "now": t0}),
    ));
    let mut h = hello.clone();
    h.responder = id(&responder.replacen(':', ":other-", 1));
    twins.push((
        "hello_wrong_responder",
        "Hello addressed to another party".into(),
        "session_respond",
        serde_json::json!({"hello": h, "now": t0}),
    ));
    twins.push((
        "hello_stale",
        "Hello answered 301 s after its time".into(),
        "session_respond",
        serde_json::json!({"hello": hello, "now": t0 + 301}),
    ));
    let mut c = challenge.clone();
    c.mac[0] ^= 1;
    twins.push((
        "challenge_flipped_mac",
        "Challenge with a flipped MAC bit".into(),
        "session_finish",
        serde_json::json!({"challenge": c}),
    ));
    let c = Challenge {
        nonce_r: challenge.nonce_r,
        mac: hmac(impostor_r.expose(), &[RESPONDER_TAG, &t])?,
    };
    twins.push((
        "challenge_from_impostor",
        format!("Challenge MACed by {EVIL_MERCHANT} with its own key, posing as the responder"),
        "session_finish",
        serde_json::json!({"challenge": c}),
    ));
    let c = Confirm {
        nonce_r: challenge.nonce_r,
        mac: challenge.mac,
    };
    twins.push((
        "confirm_reflected",
        "the responder's own MAC reflected as the Confirm".into(),
        "session_confirm",
        serde_json::json!({"confirm": c, "now": t1}),
    ));
    let mut c = confirm.clone();
    c.nonce_r[0] ^= 1;
    twins.push((
        "confirm_wrong_nonce",
        "Confirm naming another nonce_r".into(),
        "session_confirm",
        serde_json::json!({"confirm": c, "now": t1}),
    ));
    twins.push((
        "confirm_late",
        "Confirm checked 301 s after the Hello".into(),
        "session_confirm",
        serde_json::json!({"confirm": confirm, "now": t0 + 301}),
    ));
    let c = Confirm {
        nonce_r: challenge.nonce_r,
        mac: hmac(impostor.expose(), &[INITIATOR_TAG, &t])?,
    };
    twins.push((
        "confirm_from_impostor",
        format!("Confirm MACed by {EVIL_MERCHANT} with its own key, posing as the initiator"),
        "session_confirm",
        serde_json::json!({"confirm": c, "now": t1}),
    ));
    let (a0, r0) = &auths[0];
    let (a1, _) = &auths[1];
    let x0 = &exchanges(responder)[0];
    let req = |auth: &MessageAuth, method: &str, path: &str, body: &str, now: u64| serde_json::json!({"auth": auth, "method": method, "path": path, "body": body, "now": now});
    let now = NOW + 6;
    twins.push((
        "request_body_changed",
        "request 1 with another body".into(),
        "session_verify_request",
        req(a0, x0.0, x0.1, r#"{"order_id":"ord-0001","amount":1}"#, now),
    ));
    twins.push((
        "request_path_changed",
        "request 1 presented for another path".into(),
        "session_verify_request",
        req(a0, x0.0, "/v1/capture", x0.2, now),
    ));
    twins.push((
        "request_replayed",
        "request 1 again, after both were accepted".into(),
        "session_verify_request",
        req(a0, x0.0, x0.1, x0.2, now),
    ));
    let mut other = a1.clone();
    other.session = hex(&[0u8; 16]);
    twins.push((
        "request_other_session",
        "request 2 with another session id".into(),
        "session_verify_request",
        req(&other, "GET", "/v1/orders/ord-0001", "", now),
    ));
    twins.push((
        "response_as_request",
        "response 1 reflected as a request".into(),
        "session_verify_request",
        req(r0, x0.0, x0.1, x0.2, now),
    ));
    // A fresh, correctly MACed request with a time outside the window.
    let old = NOW - 1000;
    let mut input = Vec::new();
    str16(&mut input, sid.as_bytes());
    input.extend_from_slice(&3u64.to_be_bytes());
    input.extend_from_slice(&old.to_be_bytes());
    bytes32(&mut input, b"GET");
    bytes32(&mut input, b"/x");
    input.extend_from_slice(&sha256(&[b""]));
    let stale = MessageAuth {
        session: sid.clone(),
        seq: 3,
        time: old,
        mac: hmac(&okm[..32], &[REQUEST_TAG, &input])?,
    };
    twins.push((
        "request_stale",
        "a correctly MACed request stamped 1006 s before the clock".into(),
        "session_verify_request",
        req(&stale, "GET", "/x", "", now),
    ));
    let resp = |request: &MessageAuth, response: &MessageAuth, status: u16, body: &str| serde_json::json!({"request": request, "response": response, "status": status, "body": body, "now": NOW + 3});
    twins.push((
        "response_status_changed",
        "response 1 read with status 500".into(),
        "session_verify_response",
        resp(a0, r0, 500, x0.5),
    ));
    twins.push((
        "response_moved",
        "response 1 presented as the answer to request 2".into(),
        "session_verify_response",
        resp(a1, r0, x0.4, x0.5),
    ));
    twins.push((
        "request_as_response",
        "request 1 reflected as its own response".into(),
        "session_verify_response",
        resp(a0, a0, x0.4, x0.5),
    ));
    let mut fails = Vec::new();
    for (suffix, description, op, input) in twins {
        let mut f = FailVector {
            name: format!("fail_{name}_{suffix}"),
            twin_of: name.into(),
            description,
            operation: op.into(),
            input_text: Some(input.to_string()),
            ..FailVector::blank()
        };
        (f.error, f.field) = match session_op(world, &v, op, &input)? {
            Ok(()) => return Err(format!("{} was accepted", f.name).into()),
            Err(e) => (kind(&e), field_of(&e)),
        };
        fails.push(f);
    }
    Ok((v, fails))
}

// ---------------------------------------------------------------- session records

/// The record layer (§12.4) under the keys of the first session of `k4`: a request with a
/// body, its response, and an empty GET answered with an empty body; each computed by the
/// library and again from the spec, with tamper twins.
fn records_file(k4: &VectorFile, from_file: &str) -> Res<VectorFile> {
    let s = k4.sessions.first().ok_or("no session vector")?;
    let request_key: [u8; 32] = unhex(&s.request_key_hex)
        .and_then(|k| k.try_into().ok())
        .ok_or("request key")?;
    let response_key: [u8; 32] = unhex(&s.response_key_hex)
        .and_then(|k| k.try_into().ok())
        .ok_or("response key")?;
    let sid = s.session_id.clone();
    let spec_key = |key: &[u8; 32], label: &[u8]| -> Res<[u8; 32]> {
        let mut info = (label.len() as u16).to_be_bytes().to_vec();
        info.extend_from_slice(label);
        let mut k = [0u8; 32];
        Hkdf::<Sha256>::from_prk(key)
            .map_err(|_| "prk")?
            .expand(&info, &mut k)
            .map_err(|_| "hkdf")?;
        Ok(k)
    };
    let keys = [
        (
            Direction::Request,
            "request",
            request_key,
            REQUEST_SEAL_LABEL,
            REQUEST_TAG,
        ),
        (
            Direction::Response,
            "response",
            response_key,
            RESPONSE_SEAL_LABEL,
            RESPONSE_TAG,
        ),
    ];
    // (name, direction index, seq, time, method, path, request mac, status, body)
    let req_mac = [0x5au8; 32];
    type Case<'a> = (
        &'a str,
        usize,
        u64,
        u64,
        Option<&'a str>,
        Option<&'a str>,
        Option<[u8; 32]>,
        Option<u16>,
        &'a str,
    );
    let tracking =
        r#"{"order_id":"ord-0001","destination":{"addressee":"Taro","address":"7-3-1 Hongo"}}"#;
    let cases: [Case; 4] = [
        (
            "record_request_post",
            0,
            7,
            NOW + 10,
            Some("POST"),
            Some("/v1/authorizations"),
            None,
            None,
            r#"{"order_id":"ord-0001","amount":3200}"#,
        ),
        (
            "record_request_get_empty",
            0,
            8,
            NOW + 11,
            Some("GET"),
            Some("/v1/shipments/merchant:shop.example/ord-0001"),
            None,
            None,
            "",
        ),
        (
            "record_response_tracking",
            1,
            8,
            NOW + 12,
            None,
            None,
            Some(req_mac),
            Some(200),
            tracking,
        ),
        (
            "record_response_empty",
            1,
            9,
            NOW + 13,
            None,
            None,
            Some(req_mac),
            Some(404),
            "",
        ),
    ];
    let mut records = Vec::new();
    let mut fail = Vec::new();
    for (name, d, seq, time, method, path, rmac, status, body) in cases {
        let (direction, dname, session_key, label, tag) = keys[d];
        let seed = format!("warifu/vectors/{name}/nonce");
        let mut nonce = [0u8; RECORD_NONCE_LEN];
        SeededRandom::new(seed.as_bytes()).fill(&mut nonce)?;
        // The library.
        let key = session::record_key(&session_key, direction)?;
        let aad = match direction {
            Direction::Request => session::request_aad(
                &sid,
                seq,
                time,
                method.ok_or("method")?,
                path.ok_or("path")?,
            ),
            Direction::Response => session::response_aad(
                &sid,
                seq,
                &rmac.ok_or("request mac")?,
                time,
                status.ok_or("status")?,
            ),
        };
        let record = session::seal_record(&key, &nonce, &aad, body.as_bytes())?;
        ensure(
            session::open_record(&key, &aad, &record)? == body.as_bytes(),
            "record round trip",
        )?;
        // The spec.
        let spec = spec_key(&session_key, label)?;
        ensure(&spec == key.expose(), "record key")?;
        let mut spec_aad = Vec::new();
        str16(&mut spec_aad, sid.as_bytes());
        spec_aad.extend_from_slice(&seq.to_be_bytes());
        match direction {
            Direction::Request => {
                spec_aad.extend_from_slice(&time.to_be_bytes());
                bytes32(&mut spec_aad, method.ok_or("method")?.as_bytes());
                bytes32(&mut spec_aad, path.ok_or("path")?.as_bytes());
            }
            Direction::Response => {
                spec_aad.extend_from_slice(&rmac.ok_or("request mac")?);
                spec_aad.extend_from_slice(&time.to_be_bytes());
                spec_aad.extend_from_slice(&status.ok_or("status")?.to_be_bytes());
            }
        }
        ensure(spec_aad == aad, "associated data")?;
        let ct = XChaCha20Poly1305::new((&spec).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body.as_bytes(),
                    aad: &spec_aad,
                },
            )
            .map_err(|_| "aead")?;
        ensure([&nonce[..], &ct].concat() == record, "record")?;
        let mac = hmac(&session_key, &[tag, &spec_aad, &sha256(&[&record])])?;
        records.push(RecordVector {
            name: name.into(),
            description: format!(
                "a {dname} record{} in session {}",
                if body.is_empty() {
                    " of an empty body"
                } else {
                    ""
                },
                s.name
            ),
            session: s.name.clone(),
            from_file: from_file.into(),
            request_key_hex: s.request_key_hex.clone(),
            response_key_hex: s.response_key_hex.clone(),
            session_id: sid.clone(),
            direction: dname.into(),
            seq,
            time,
            method: method.map(str::to_owned),
            path: path.map(str::to_owned),
            request_mac_hex: rmac.map(|m| hex(&m)),
            status,
            body_utf8: body.into(),
            nonce_seed_utf8: seed,
            nonce_hex: hex(&nonce),
            record_key_hex: hex(&spec),
            aad_hex: hex(&aad),
            record_hex: hex(&record),
            mac_hex: hex(&mac),
        });
        // Twins: (suffix, description, direction opened as, aad, record)
        let other = if d == 0 { "response" } else { "request" };
        let mut other_seq = spec_aad.clone();
        // seq sits right after str16(session id).
        let at = 2 + sid.len() + 7;
        other_seq[at] ^= 1;
        let mut flipped_ct = record.clone();
        flipped_ct[RECORD_NONCE_LEN] ^= 1;
        let mut flipped_nonce = record.clone();
        flipped_nonce[0] ^= 1;
        let mut flipped_tag = record.clone();
        let last = flipped_tag.len() - 1;
        flipped_tag[last] ^= 0x80;
        type Twin<'a> = (&'a str, String, &'a str, Vec<u8>, Vec<u8>);
        let twins: [Twin; 6] = [
            (
                "flipped_ciphertext",
                "first ciphertext bit flipped".into(),
                dname,
                aad.clone(),
                flipped_ct,
            ),
            (
                "flipped_nonce",
                "first nonce bit flipped".into(),
                dname,
                aad.clone(),
                flipped_nonce,
            ),
            (
                "flipped_tag",
                "last tag bit flipped".into(),
                dname,
                aad.clone(),
                flipped_tag,
            ),
            (
                "short_record",
                "the record cut to its nonce and 15 bytes".into(),
                dname,
                aad.clone(),
                record[..session::RECORD_OVERHEAD - 1].to_vec(),
            ),
            (
                "other_seq",
                "opened with another sequence number in the associated data".into(),
                dname,
                other_seq,
                record.clone(),
            ),
            (
                "wrong_direction",
                format!("opened as a {other} record (the other direction's key)"),
                other,
                aad.clone(),
                record.clone(),
            ),
        ];
        for (suffix, description, as_dir, twin_aad, twin_record) in twins {
            let input = serde_json::json!({
                "direction": as_dir,
                "aad_hex": hex(&twin_aad),
                "record_hex": hex(&twin_record),
            });
            let (k, dir) = if as_dir == "request" {
                (request_key, Direction::Request)
            } else {
                (response_key, Direction::Response)
            };
            let e =
                match session::open_record(&session::record_key(&k, dir)?, &twin_aad, &twin_record)
                {
                    Ok(_) => return Err(format!("{name} {suffix} was accepted").into()),
                    Err(e) => e,
                };
            fail.push(FailVector {
                name: format!("fail_{name}_{suffix}"),
                twin_of: name.into(),
                description,
                operation: "record_open".into(),
                input_text: Some(input.to_string()),
                error: kind(&e),
                field: field_of(&e),
                ..FailVector::blank()
            });
        }
    }
    Ok(VectorFile {
        format: FORMAT.into(),
        description: format!(
            "The session record layer: sealed request and response bodies under the keys of \
             session {} of {from_file}",
            s.name
        ),
        primitives: None,
        blom: None,
        key_sources: None,
        sok: None,
        sealed: Vec::new(),
        key_files: Vec::new(),
        sessions: Vec::new(),
        records,
        fail,
    })
}

/// Replays the honest handshake and exchanges of `v` up to the step `op` tampers with, then
/// runs that step on `input`.
fn session_op(
    world: &World,
    v: &SessionVector,
    op: &str,
    input: &serde_json::Value,
) -> Res<Result<(), Error>> {
    let (ki, kr) = (
        world.source(&v.initiator, &v.key_source)?,
        world.source(&v.responder, &v.key_source)?,
    );
    let now = || input["now"].as_u64().ok_or("now");
    let field =
        |k: &str| -> Res<serde_json::Value> { Ok(input.get(k).ok_or(k.to_owned())?.clone()) };
    let mut rng_r = SeededRandom::new(v.responder_seed_utf8.as_bytes());
    let (init, hello) = Initiator::start(
        &*ki,
        &id(&v.responder),
        v.hello_time,
        &mut SeededRandom::new(v.initiator_seed_utf8.as_bytes()),
    )?;
    if op == "session_respond" {
        let h: Hello = serde_json::from_value(field("hello")?)?;
        return Ok(PendingHandshake::respond(&*kr, &h, now()?, &mut rng_r).map(drop));
    }
    let (pending, challenge) = PendingHandshake::respond(&*kr, &hello, v.hello_time, &mut rng_r)?;
    if op == "session_finish" {
        let c: Challenge = serde_json::from_value(field("challenge")?)?;
        return Ok(init.finish(&c).map(drop));
    }
    let (mut client, confirm) = init.finish(&challenge)?;
    if op == "session_confirm" {
        let c: Confirm = serde_json::from_value(field("confirm")?)?;
        return Ok(pending.confirm(&c, now()?).map(drop));
    }
    let mut server: Session = pending.confirm(&confirm, v.confirm_time)?;
    for x in &v.exchanges {
        let body = x.request_body_utf8.as_bytes();
        let a = client.sign_request(&x.method, &x.path, body, x.request_time)?;
        server.verify_request(&a, &x.method, &x.path, body, x.request_time)?;
    }
    let text = |k: &str| -> Res<String> {
        Ok(input[k]
            .as_str()
            .ok_or(format!("{k}: not a string"))?
            .to_owned())
    };
    match op {
        "session_verify_request" => {
            let a: MessageAuth = serde_json::from_value(field("auth")?)?;
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
            let q: MessageAuth = serde_json::from_value(field("request")?)?;
            let r: MessageAuth = serde_json::from_value(field("response")?)?;
            let status = input["status"].as_u64().ok_or("status")? as u16;
            Ok(client.verify_response(&q, &r, status, text("body")?.as_bytes(), now()?))
        }
        other => Err(format!("unknown session operation {other}").into()),
    }
}
