//! Known-answer vectors of the stateless responder (PROTOCOL.md §12.5): responder secrets,
//! cookie and ticket keys, a handshake whose `nonce_r` is a cookie, its ticket and a request
//! under it, and twins refused for exactly the reason they name.
//!
//! `WARIFU_WRITE_TICKET_VECTORS=1 cargo test -p warifu-core --test session_tickets` writes
//! `testdata/vectors/session/tickets.json`; otherwise every value is recomputed twice — with
//! the library and from the specification with the bare primitives — and compared.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::KeyInit as _;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use warifu_core::blom::{Master, PersonalKey};
use warifu_core::id::PartyId;
use warifu_core::keysource::KeySource;
use warifu_core::rand::{Randomness, SeededRandom};
use warifu_core::session::{
    COOKIE_LIFETIME, HelloConfirm, Initiator, RECORD_NONCE_LEN, Responder, SESSION_LIFETIME,
};
use warifu_core::{Error, Result};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/vectors/session/tickets.json"
);
const MASTER_SEED: &str = "warifu/vectors/k4";
const RESPONDER: &str = "issuer:bank.example";
const INITIATOR: &str = "merchant:shop.example";
const T0: u64 = 1_800_000_000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn keys() -> (PersonalKey, PersonalKey) {
    let master =
        Master::generate(4, &mut SeededRandom::new(MASTER_SEED.as_bytes())).expect("master");
    let id = |s: &str| PartyId::parse(s).expect("id");
    (
        master.personal_key(&id(RESPONDER)),
        master.personal_key(&id(INITIATOR)),
    )
}

fn str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// §12.5 from the bare primitives: responder secret, cookie key, ticket key.
fn spec_keys(keys: &dyn KeySource) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let owner = keys.owner().as_str().to_owned();
    let ikm = keys.shared_secret(keys.owner()).expect("self secret");
    let mut info = vec![keys.scheme().code()];
    str16(&mut info, &owner);
    let mut secret = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"warifu/v1/responder-secret"), &ikm)
        .expand(&info, &mut secret)
        .expect("hkdf");
    let expand = |label: &[u8]| {
        let mut k = [0u8; 32];
        Hkdf::<Sha256>::from_prk(&secret)
            .expect("prk")
            .expand_multi_info(&[&(label.len() as u16).to_be_bytes(), label], &mut k)
            .expect("expand");
        k
    };
    (
        secret,
        expand(b"warifu/v1/handshake/cookie-key"),
        expand(b"warifu/v1/session/ticket-key"),
    )
}

/// Everything the vectors hold, computed with the library and checked against the spec.
fn compute() -> Value {
    let (responder_key, initiator_key) = keys();
    let responder = Responder::new(&responder_key).expect("responder");
    let (secret, cookie_key, ticket_key) = spec_keys(&responder_key);
    assert_eq!(
        Responder::secret(&responder_key).expect("secret").expose(),
        &secret,
        "responder secret (spec)"
    );
    let mut rng = SeededRandom::new(b"warifu/vectors/tickets/initiator");
    let (init, hello) =
        Initiator::start(&initiator_key, responder_key.owner(), T0, &mut rng).expect("start");
    let issued = T0 + 1;
    let challenge = responder
        .challenge(&responder_key, &hello, issued)
        .expect("challenge");
    // The cookie from the spec.
    let mut input = b"warifu/v1/handshake/cookie".to_vec();
    input.push(hello.version);
    str16(&mut input, INITIATOR);
    str16(&mut input, RESPONDER);
    input.extend_from_slice(&hello.nonce_i);
    input.extend_from_slice(&hello.time.to_be_bytes());
    input.extend_from_slice(&issued.to_be_bytes());
    let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&cookie_key).expect("hmac");
    m.update(&input);
    let tag = m.finalize().into_bytes();
    let mut cookie = issued.to_be_bytes().to_vec();
    cookie.extend_from_slice(&tag[..24]);
    assert_eq!(
        challenge.nonce_r.as_slice(),
        cookie.as_slice(),
        "cookie (spec)"
    );
    let (mut client, confirm) = init.finish(&challenge).expect("finish");
    let msg = HelloConfirm::new(hello.clone(), confirm);
    let server = responder
        .confirm(&responder_key, &msg, T0 + 2)
        .expect("confirm");
    assert_eq!(server.expires_at(), issued + SESSION_LIFETIME);
    let mut nonce = [0u8; RECORD_NONCE_LEN];
    SeededRandom::new(b"warifu/vectors/tickets/ticket")
        .fill(&mut nonce)
        .expect("nonce");
    let ticket = responder.ticket(&server, &nonce).expect("ticket");
    // The ticket from the spec: open it with the spec's key and read its plaintext.
    let raw = B64.decode(&ticket).expect("base64url");
    let mut aad = b"warifu/v1/session/ticket".to_vec();
    str16(&mut aad, RESPONDER);
    let plain = XChaCha20Poly1305::new((&ticket_key).into())
        .decrypt(
            &XNonce::try_from(&raw[..24]).expect("nonce"),
            Payload {
                msg: &raw[24..],
                aad: &aad,
            },
        )
        .expect("ticket opens under the spec's key");
    assert_eq!(&raw[..24], &nonce);
    assert_eq!(plain[0], 1, "ticket version");
    assert_eq!(hex(&plain[1..17]), server.key_id(), "ticket key id");
    assert_eq!(plain[17..25], (issued + SESSION_LIFETIME).to_be_bytes());
    let mut tail = Vec::new();
    str16(&mut tail, INITIATOR);
    assert_eq!(&plain[89..], tail.as_slice(), "ticket peer");
    client.adopt_ticket(&ticket).expect("adopt");
    let mut record_rng = SeededRandom::new(b"warifu/vectors/tickets/record");
    let body = br#"{"order_id":"ord_1"}"#;
    let (auth, record) = client
        .seal_request("POST", "/v1/authorizations", body, T0 + 3, &mut record_rng)
        .expect("seal");
    let mut resumed = responder.resume(&ticket, T0 + 3).expect("resume");
    assert_eq!(
        resumed
            .open_request(&auth, "POST", "/v1/authorizations", &record, T0 + 3)
            .expect("open"),
        body
    );
    let twin = |name: &str, operation: &str, input: Value, error: &str| json!({"name": name, "operation": operation, "input": input, "error": error});
    let mut late = serde_json::to_value(&msg).expect("json");
    let mut flipped = msg.clone();
    flipped.nonce_r[31] ^= 1;
    let mut other_hello = msg.clone();
    other_hello.hello.nonce_i[0] ^= 1;
    let mut bad_ticket = raw.clone();
    bad_ticket[30] ^= 1;
    late = json!({"confirm": late, "now": issued + COOKIE_LIFETIME + 1});
    json!({
        "format": "warifu-vectors/v1",
        "description": "PROTOCOL.md §12.5: the stateless responder's secret, cookie and ticket keys, a handshake whose nonce_r is a cookie, its HelloConfirm and ticket, a request under the ticket; twins",
        "master_seed_utf8": MASTER_SEED,
        "k": 4,
        "responder": RESPONDER,
        "initiator": INITIATOR,
        "responder_secret_hex": hex(&secret),
        "cookie_key_hex": hex(&cookie_key),
        "ticket_key_hex": hex(&ticket_key),
        "initiator_rng_seed_utf8": "warifu/vectors/tickets/initiator",
        "hello": serde_json::to_value(&hello).expect("json"),
        "issued": issued,
        "cookie_mac_input_hex": hex(&input[b"warifu/v1/handshake/cookie".len()..]),
        "challenge": serde_json::to_value(&challenge).expect("json"),
        "hello_confirm": serde_json::to_value(&msg).expect("json"),
        "confirm_now": T0 + 2,
        "session_id": server.key_id(),
        "expires": issued + SESSION_LIFETIME,
        "ticket_nonce_seed_utf8": "warifu/vectors/tickets/ticket",
        "ticket_plaintext_hex": hex(&plain),
        "ticket_aad_hex": hex(&aad),
        "ticket": ticket,
        "request": {
            "method": "POST",
            "path": "/v1/authorizations",
            "body_utf8": String::from_utf8_lossy(body),
            "time": T0 + 3,
            "record_nonce_seed_utf8": "warifu/vectors/tickets/record",
            "auth": serde_json::to_value(&auth).expect("json"),
            "record_hex": hex(&record),
        },
        "fail": [
            twin("fail_cookie_late", "confirm", late, "Stale"),
            twin("fail_cookie_flipped", "confirm", json!({"confirm": flipped, "now": T0 + 2}), "Decrypt"),
            twin("fail_cookie_other_hello", "confirm", json!({"confirm": other_hello, "now": T0 + 2}), "Decrypt"),
            twin("fail_ticket_flipped", "resume", json!({"ticket": B64.encode(&bad_ticket), "now": T0 + 3}), "Decrypt"),
            twin("fail_ticket_expired", "resume", json!({"ticket": ticket, "now": issued + SESSION_LIFETIME + 1}), "Decrypt"),
            twin("fail_ticket_other_responder", "resume_as", json!({"ticket": ticket, "now": T0 + 3, "as": INITIATOR}), "Decrypt"),
        ],
    })
}

fn run_twin(t: &Value) -> Result<()> {
    let (responder_key, initiator_key) = keys();
    let input = &t["input"];
    let now = input["now"].as_u64().expect("now");
    match t["operation"].as_str().expect("operation") {
        "confirm" => {
            let msg: HelloConfirm =
                serde_json::from_value(input["confirm"].clone()).expect("confirm");
            Responder::new(&responder_key)?
                .confirm(&responder_key, &msg, now)
                .map(drop)
        }
        "resume" => Responder::new(&responder_key)?
            .resume(input["ticket"].as_str().expect("ticket"), now)
            .map(drop),
        "resume_as" => Responder::new(&initiator_key)?
            .resume(input["ticket"].as_str().expect("ticket"), now)
            .map(drop),
        other => panic!("unknown operation {other}"),
    }
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::Stale => "Stale",
        Error::Decrypt => "Decrypt",
        _ => "other",
    }
}

#[test]
fn stateless_responder_vectors() {
    let computed = compute();
    if std::env::var_os("WARIFU_WRITE_TICKET_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&computed).expect("json") + "\n";
        std::fs::write(FILE, text).expect("write the vectors");
        return;
    }
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(FILE).expect("read the vectors"))
            .expect("vectors JSON");
    assert_eq!(
        stored, computed,
        "session_tickets.json differs from the library"
    );
    let twins = stored["fail"].as_array().expect("fail");
    assert_eq!(twins.len(), 6);
    for t in twins {
        let name = t["name"].as_str().expect("name");
        let err = run_twin(t).expect_err(name);
        assert_eq!(error_name(&err), t["error"], "{name}");
    }
    // Controls: the untampered Confirm and ticket are accepted.
    let (responder_key, _) = keys();
    let r = Responder::new(&responder_key).expect("responder");
    let msg: HelloConfirm =
        serde_json::from_value(stored["hello_confirm"].clone()).expect("confirm");
    let now = stored["confirm_now"].as_u64().expect("now");
    assert!(r.confirm(&responder_key, &msg, now).is_ok());
    assert!(
        r.resume(stored["ticket"].as_str().expect("ticket"), now)
            .is_ok()
    );
}
