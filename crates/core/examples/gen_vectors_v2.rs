//! Writes `testdata/vectors/v2/sealed.json`: sealed orders of format version 2 (purpose keys,
//! padded parts; PROTOCOL.md §18) with every intermediate value, for 15-, 16- and 19-digit
//! cards and a short and a long address. Run from the workspace root:
//! `cargo run -p warifu-core --example gen_vectors_v2`.

use std::error::Error;

use serde_json::{Value, json};
use warifu_core::PartyId;
use warifu_core::blom::Master;
use warifu_core::keysource::pairwise_key;
use warifu_core::order::{Order, OrderForm};
use warifu_core::policy::Policy;
use warifu_core::purpose::{Purpose, purpose_key};
use warifu_core::rand::SeededRandom;
use warifu_core::sealed::{self, SealedOrder};

/// The seed of the vectors' Blom master (k = 4).
pub const MASTER_SEED: &str = "warifu/vectors/v2/master";
const NOW: u64 = 1_800_000_000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let base: Value =
        serde_json::from_str(&std::fs::read_to_string("testdata/vectors/blom_k4.json")?)?;
    let sealed0 = &base["sealed"][0];
    let master = Master::generate(4, &mut SeededRandom::new(MASTER_SEED.as_bytes()))?;
    let cardholder = PartyId::parse("cardholder:hanako@mail.example")?;
    let ch_key = master.personal_key(&cardholder);
    let mut vectors = Vec::new();
    for (name, card, address) in [
        ("card15_short_address", "378282246310005", "1 A St"),
        ("card16", "4111111111111111", "2-2 Umeda, Kita-ku, Osaka"),
        (
            "card19_long_address",
            "6011000000000000001",
            "Flat 12, 3-4-5 Nishi-Shinjuku, Shinjuku-ku, Tokyo 160-0023, Japan",
        ),
    ] {
        let form: OrderForm = serde_json::from_value(sealed0["form"].clone())?;
        let mut order_json = sealed0["order"].clone();
        order_json["card"]["number"] = json!(card);
        order_json["destination"]["address"] = json!(address);
        let order: Order = serde_json::from_value(order_json.clone())?;
        let issuer = form.accepted_issuers[0].clone();
        let seed = format!("warifu/vectors/v2/seal/{name}");
        let s: SealedOrder = sealed::seal_within(
            &form,
            &order,
            &issuer,
            &Policy::patent_default(),
            &ch_key,
            NOW,
            &mut SeededRandom::new(seed.as_bytes()),
        )?;
        let mut parts = Vec::new();
        for p in &s.parts {
            let peer = s.header.party(p.recipient).ok_or("peer")?;
            let k = pairwise_key(&ch_key, peer)?;
            let seal_key = purpose_key(&k, Purpose::Seal)?;
            parts.push(json!({
                "recipient": p.recipient,
                "pairwise_key_hex": hex(k.expose()),
                "seal_key_hex": hex(seal_key.expose()),
                "nonce_hex": hex(&p.nonce.unwrap_or_default()),
                "commitment_hex": hex(&p.commitment),
                "ciphertext_len": p.ciphertext.len(),
            }));
        }
        vectors.push(json!({
            "name": name,
            "form": sealed0["form"],
            "order": order_json,
            "issuer": issuer,
            "now": NOW,
            "rng_seed_utf8": seed,
            "header_hex": hex(&s.header.encode()),
            "header_digest_hex": hex(&s.header.digest()),
            "parts": parts,
            "binary_hex": hex(&s.encode()),
        }));
    }
    let file = json!({
        "format": "warifu-vectors-sealed-v2",
        "description": "Sealed orders of format version 2 (PROTOCOL.md §18): purpose keys and padded parts. The cardholder's Blom key comes from Master::generate(4, SeededRandom(master_seed_utf8)); every part's ciphertext length is a bucket plus the 16-byte tag, equal across the three cards.",
        "master_seed_utf8": MASTER_SEED,
        "k": 4,
        "cardholder": cardholder,
        "vectors": vectors,
    });
    let text = serde_json::to_string_pretty(&file)? + "\n";
    std::fs::write("testdata/vectors/v2/sealed.json", text)?;
    println!("wrote testdata/vectors/v2/sealed.json ({} vectors)", 3);
    Ok(())
}
