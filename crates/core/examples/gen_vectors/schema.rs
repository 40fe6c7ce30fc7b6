//! The JSON schema of `testdata/vectors/*.json`, shared by the generator and the vectors test.
//!
//! Conventions: every `*_hex` field is lowercase hexadecimal; field elements are their
//! canonical 16-byte little-endian encoding; every `*_utf8` seed is fed to the test random
//! stream as its UTF-8 bytes. See `docs/PROTOCOL.md` §"Test vectors".

use serde::{Deserialize, Serialize};

/// The value of [`VectorFile::format`].
pub const FORMAT: &str = "warifu-vectors/v1";

/// One file of vectors.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// What the file covers.
    pub description: String,
    /// Stand-alone primitives (test RNG, field, id-to-field, Vandermonde, policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primitives: Option<Primitives>,
    /// A Blom deployment: master, personal keys, raw and pairwise keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blom: Option<BlomVectors>,
    /// Predistributed and hybrid key sources over the same parties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_sources: Option<KeySourceVectors>,
    /// SOK over BLS12-381 and the Blom + SOK hybrid over the same parties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sok: Option<SokVectors>,
    /// Sealed orders, from inputs to every party's opened view.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<SealedVector>,
    /// Key files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_files: Vec<KeyFileVector>,
    /// Mutual-confirmation handshakes and authenticated sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionVector>,
    /// Sealed records of the session record layer (§12.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordVector>,
    /// Tamper twins: inputs that must be refused with the named error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail: Vec<FailVector>,
}

/// Primitive-level vectors.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Primitives {
    /// The deterministic test random stream.
    pub test_rng: Vec<RngVector>,
    /// GF(2^127 − 1) arithmetic.
    pub field: Vec<FieldVector>,
    /// 16-byte strings that are not canonical field elements and must be refused.
    pub non_canonical_hex: Vec<String>,
    /// Identifier → field element.
    pub id_to_field: Vec<IdToFieldVector>,
    /// Public Vandermonde columns.
    pub vandermonde: Vec<VandermondeVector>,
    /// Disclosure policies: encoding and digest.
    pub policies: Vec<PolicyVector>,
}

/// The first `hex.len() / 2` bytes of the test stream for a seed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngVector {
    /// The seed.
    pub seed_utf8: String,
    /// The stream's first bytes.
    pub hex: String,
}

/// a, b and the results of the field operations on them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldVector {
    /// a.
    pub a_hex: String,
    /// b.
    pub b_hex: String,
    /// a + b.
    pub sum_hex: String,
    /// a − b.
    pub difference_hex: String,
    /// a · b.
    pub product_hex: String,
    /// a^(p−2) (0 for a = 0).
    pub a_inverse_hex: String,
}

/// One identifier's field element in one lane.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdToFieldVector {
    /// The identifier.
    pub id: String,
    /// The lane.
    pub lane: u8,
    /// The counter of the first acceptable hash.
    pub counter: u8,
    /// SHA-256(label ‖ u8(lane) ‖ u8(counter) ‖ id).
    pub sha256_hex: String,
    /// The element, 16 bytes little-endian.
    pub s_hex: String,
    /// The element in decimal.
    pub s_decimal: String,
}

/// g(s) = (1, s, …, s^k).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VandermondeVector {
    /// The identifier.
    pub id: String,
    /// The lane.
    pub lane: u8,
    /// The degree.
    pub k: u32,
    /// The k+1 entries.
    pub g_hex: Vec<String>,
}

/// A disclosure policy.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVector {
    /// A short name.
    pub name: String,
    /// The policy as TOML.
    pub toml: String,
    /// The canonical 22-byte encoding.
    pub encoding_hex: String,
    /// SHA-256("warifu/v1/policy" ‖ encoding).
    pub digest_hex: String,
}

/// A Blom deployment with collusion bound k.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlomVectors {
    /// The collusion bound.
    pub k: u32,
    /// Independent lanes (2).
    pub lanes: u8,
    /// Seed of the test stream the master is drawn from.
    pub master_seed_utf8: String,
    /// Every upper-triangle entry, lane by lane, row by row (i ≤ j); omitted for large k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_upper_hex: Option<Vec<String>>,
    /// The first entries of the upper triangles (a check for large k).
    pub master_upper_head_hex: Vec<String>,
    /// SHA-256 of the concatenated upper-triangle entries (16 bytes each).
    pub master_upper_sha256_hex: String,
    /// The parties and their personal keys.
    pub parties: Vec<PartyVector>,
    /// Every unordered pair of parties.
    pub pairs: Vec<PairVector>,
}

/// A party's public elements and secret personal key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyVector {
    /// The identifier.
    pub id: String,
    /// s per lane.
    pub s_hex: Vec<String>,
    /// The personal key, per lane k+1 elements; omitted for large k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_key_hex: Option<Vec<Vec<String>>>,
    /// The first elements of each lane.
    pub personal_key_head_hex: Vec<Vec<String>>,
    /// SHA-256 of lane 0's elements then lane 1's (16 bytes each).
    pub personal_key_sha256_hex: String,
}

/// The keys of one pair.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairVector {
    /// One party.
    pub a: String,
    /// The other.
    pub b: String,
    /// a(A)·g(B) per lane, lane 0 then lane 1, 16 bytes LE each (the HKDF ikm).
    pub raw_shared_hex: String,
    /// The HKDF info.
    pub hkdf_info_hex: String,
    /// The pairwise key.
    pub pairwise_key_hex: String,
}

/// The 【0053】 key source and a hybrid with Blom.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySourceVectors {
    /// Seed of the test stream the center draws the table from.
    pub predistributed_seed_utf8: String,
    /// The identifiers, in the order given to the center.
    pub parties: Vec<String>,
    /// The drawn secret of each pair, in drawing order.
    pub table: Vec<TableEntry>,
    /// Pairwise keys of the predistributed and the hybrid sources.
    pub pairs: Vec<SourcePairVector>,
}

/// One pair's predistributed secret.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The earlier identifier in the center's list.
    pub a: String,
    /// The later one.
    pub b: String,
    /// The 32-byte secret.
    pub secret_hex: String,
}

/// A pairwise key from a non-Blom source.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePairVector {
    /// "predistributed" or "hybrid" (Blom then predistributed).
    pub scheme: String,
    /// One party.
    pub a: String,
    /// The other.
    pub b: String,
    /// The shared secret (HKDF ikm).
    pub ikm_hex: String,
    /// The HKDF info.
    pub hkdf_info_hex: String,
    /// The pairwise key.
    pub pairwise_key_hex: String,
}

/// SOK (Sakai–Ohgishi–Kasahara) on BLS12-381 and the Blom + SOK hybrid.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SokVectors {
    /// Seed of the test stream the master scalar is drawn from.
    pub master_seed_utf8: String,
    /// The master scalar s, 32 bytes big-endian.
    pub master_hex: String,
    /// The RFC 9380 domain separation tag of H1 (to G1).
    pub dst_g1: String,
    /// The RFC 9380 domain separation tag of H2 (to G2).
    pub dst_g2: String,
    /// The parties' hashes and personal keys.
    pub parties: Vec<SokPartyVector>,
    /// e(g1, g2) of the two generators as Warifu computes GT (blst's final exponentiation,
    /// exponent 3·(p¹² − 1)/r), 576 bytes in the GT encoding.
    pub pairing_generators_hex: String,
    /// e(g1, g2) with the textbook exponent (p¹² − 1)/r; its cube is `pairing_generators_hex`.
    pub pairing_generators_textbook_hex: String,
    /// Every unordered pair of parties.
    pub pairs: Vec<SokPairVector>,
}

/// One party's SOK values (points compressed as in the ZCash/IETF BLS encoding).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SokPartyVector {
    /// The identifier.
    pub id: String,
    /// H1(id) ∈ G1, 48 bytes.
    pub h1_hex: String,
    /// H2(id) ∈ G2, 96 bytes.
    pub h2_hex: String,
    /// s·H1(id), 48 bytes (personal key, G1 half).
    pub g1_key_hex: String,
    /// s·H2(id), 96 bytes (personal key, G2 half).
    pub g2_key_hex: String,
}

/// The SOK and Blom + SOK keys of one pair.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SokPairVector {
    /// One party.
    pub a: String,
    /// The other.
    pub b: String,
    /// e(H1(lo), H2(hi))^s, 576 bytes.
    pub gt_hex: String,
    /// The HKDF info of the SOK pairwise key (scheme 0x03).
    pub sok_info_hex: String,
    /// The SOK pairwise key.
    pub sok_pairwise_key_hex: String,
    /// The Blom + SOK hybrid ikm: 01 0020 ‖ Blom raw ‖ 03 0240 ‖ GT.
    pub hybrid_ikm_hex: String,
    /// The HKDF info of the hybrid pairwise key (scheme 0x80).
    pub hybrid_info_hex: String,
    /// The Blom + SOK pairwise key.
    pub hybrid_pairwise_key_hex: String,
}

/// A handshake between two parties and the requests and responses of the session.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionVector {
    /// A short name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The key source of both parties.
    pub key_source: String,
    /// The initiator's identifier.
    pub initiator: String,
    /// The responder's identifier.
    pub responder: String,
    /// Seed of the initiator's test stream (nonce_i).
    pub initiator_seed_utf8: String,
    /// Seed of the responder's test stream (nonce_r).
    pub responder_seed_utf8: String,
    /// The initiator's clock at Hello, and the responder's when it answers.
    pub hello_time: u64,
    /// The responder's clock when it checks the Confirm.
    pub confirm_time: u64,
    /// The pairwise key.
    pub pairwise_key_hex: String,
    /// Message 1, JSON.
    pub hello: String,
    /// Message 2, JSON.
    pub challenge: String,
    /// Message 3, JSON.
    pub confirm: String,
    /// The bytes under both handshake MACs.
    pub transcript_hex: String,
    /// The responder's MAC.
    pub responder_mac_hex: String,
    /// The initiator's MAC.
    pub initiator_mac_hex: String,
    /// HKDF output, first half.
    pub request_key_hex: String,
    /// HKDF output, second half.
    pub response_key_hex: String,
    /// The session id.
    pub session_id: String,
    /// Requests and their responses, in order.
    pub exchanges: Vec<ExchangeVector>,
}

/// One sealed record of a session (§12.4): a request or response body, its record key,
/// associated data, record and session MAC.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordVector {
    /// A short name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The session vector (in `from_file`) whose keys and id these are.
    pub session: String,
    /// The file holding that session vector.
    pub from_file: String,
    /// The session's request key (§12.2).
    pub request_key_hex: String,
    /// The session's response key.
    pub response_key_hex: String,
    /// The session id.
    pub session_id: String,
    /// "request" or "response".
    pub direction: String,
    /// The request's sequence number (a response repeats it).
    pub seq: u64,
    /// The sender's clock.
    pub time: u64,
    /// For a request: the HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// For a request: the path with query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For a response: its request's MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_mac_hex: Option<String>,
    /// For a response: the HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The plain body.
    pub body_utf8: String,
    /// Seed of the sender's test stream: its first 24 bytes are the nonce.
    pub nonce_seed_utf8: String,
    /// The nonce.
    pub nonce_hex: String,
    /// HKDF-Expand(PRK = the direction's session key, info = u16(len(label)) ‖ label, 32).
    pub record_key_hex: String,
    /// The associated data: the MAC input without the body digest.
    pub aad_hex: String,
    /// The record, the body on the wire: nonce ‖ ciphertext ‖ tag.
    pub record_hex: String,
    /// The session MAC (`Warifu-Mac`): HMAC-SHA256(direction's session key, tag ‖ aad ‖
    /// SHA-256(record)).
    pub mac_hex: String,
}

/// One authenticated request and its response.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeVector {
    /// HTTP method.
    pub method: String,
    /// HTTP path.
    pub path: String,
    /// Request body.
    pub request_body_utf8: String,
    /// The initiator's clock.
    pub request_time: u64,
    /// The request MAC's input after its label: the MAC is HMAC-SHA256(request_key,
    /// "warifu/v1/session/request" ‖ these bytes) (§12.3).
    pub request_mac_input_hex: String,
    /// The request's `MessageAuth`, JSON.
    pub request_auth: String,
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub response_body_utf8: String,
    /// The responder's clock.
    pub response_time: u64,
    /// The response MAC's input after its label: the MAC is HMAC-SHA256(response_key,
    /// "warifu/v1/session/response" ‖ these bytes) (§12.3).
    pub response_mac_input_hex: String,
    /// The response's `MessageAuth`, JSON.
    pub response_auth: String,
}

/// A sealed order from its inputs to every opened view.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedVector {
    /// A short name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The key source of every party: "blom", "sok", "blom+predistributed" or "blom+sok".
    pub key_source: String,
    /// The cardholder who seals.
    pub cardholder: String,
    /// The merchant's order form (JSON of `OrderForm`).
    pub form: serde_json::Value,
    /// The cardholder's order (JSON of `Order`).
    pub order: serde_json::Value,
    /// The issuer the cardholder pays with.
    pub issuer: String,
    /// Seal time, Unix seconds.
    pub now: u64,
    /// Seed of the test stream the nonces are drawn from.
    pub rng_seed_utf8: String,
    /// The form policy's digest.
    pub policy_digest_hex: String,
    /// The binary header.
    pub header_hex: String,
    /// SHA-256("warifu/v1/header" ‖ header).
    pub header_digest_hex: String,
    /// The associated data shared by every part.
    pub aad_hex: String,
    /// The parts and their intermediates.
    pub parts: Vec<PartVector>,
    /// The binary wire form.
    pub binary_hex: String,
    /// The JSON wire form, exactly as serialized.
    pub json: String,
    /// What the merchant forwards to the issuer and the carrier.
    pub forwarded: Vec<ForwardedVector>,
    /// Each recipient's opened view.
    pub views: Vec<ViewVector>,
}

/// One part and its intermediates.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartVector {
    /// "merchant", "issuer" or "carrier".
    pub recipient: String,
    /// The recipient's identifier.
    pub peer: String,
    /// The cardholder–recipient pairwise key.
    pub pairwise_key_hex: String,
    /// HKDF-Expand(pairwise, "warifu/v1/part-key" ‖ u8(role) ‖ header digest).
    pub encrypt_key_hex: String,
    /// HKDF-Expand(pairwise, "warifu/v1/part-commit" ‖ u8(role) ‖ header digest).
    pub commit_key_hex: String,
    /// The plaintext JSON, exactly as sealed.
    pub plaintext: String,
    /// HMAC-SHA256(commit key, plaintext).
    pub commitment_hex: String,
    /// The 24-byte nonce.
    pub nonce_hex: String,
    /// Ciphertext ‖ tag.
    pub ciphertext_hex: String,
}

/// A forwarded part in both wire forms.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardedVector {
    /// Whose part.
    pub recipient: String,
    /// The binary form.
    pub binary_hex: String,
    /// The JSON form, exactly as serialized.
    pub json: String,
}

/// A recipient's opened view.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewVector {
    /// The recipient's role.
    pub recipient: String,
    /// The identifier whose key opens it.
    pub holder: String,
    /// The disclosed fields.
    pub disclosed: serde_json::Value,
}

/// Argon2id costs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    /// Memory, KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

/// A key file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFileVector {
    /// A short name.
    pub name: String,
    /// "master", "personal", "predistributed", "sok_master", "sok_personal" or
    /// "blom_sok_personal".
    pub kind: String,
    /// The holder (personal and predistributed files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// The passphrase, if sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// The Argon2id costs, if sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<Kdf>,
    /// Seed of the test stream the salt and nonce are drawn from, if sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rng_seed_utf8: Option<String>,
    /// The Argon2id output, if sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_key_hex: Option<String>,
    /// The plaintext body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hex: Option<String>,
    /// The whole file; omitted for large files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// The file's length in bytes.
    pub len: usize,
    /// SHA-256 of the whole file.
    pub sha256_hex: String,
}

/// A tamper twin: an input that must be refused with `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailVector {
    /// Starts with `fail_`.
    pub name: String,
    /// The vector it was derived from.
    pub twin_of: String,
    /// What was changed.
    pub description: String,
    /// "open_sealed", "open_sealed_json", "open_forwarded", "open_forwarded_json",
    /// "open_with_key", "decode_key_file", "parse_id", or for a session (`twin_of` names it)
    /// "session_respond", "session_finish", "session_confirm", "session_verify_request",
    /// "session_verify_response", or for a record (`twin_of` names it) "record_open".
    pub operation: String,
    /// Binary input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_hex: Option<String>,
    /// Instead of `input_hex`: the input is the `hex` of the key file of this name, unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ref: Option<String>,
    /// Text input (JSON, an identifier, or for session operations a JSON object of the
    /// tampered message and its context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_text: Option<String>,
    /// The role whose part is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_as: Option<String>,
    /// The identifier whose key source opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// "blom", "sok", "blom+predistributed" or "blom+sok".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_source: Option<String>,
    /// For `open_with_key`: the (wrong) pairwise key used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairwise_key_hex: Option<String>,
    /// The policy the opener expects (TOML); the patent default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_toml: Option<String>,
    /// For `decode_key_file`: the passphrase supplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// The `warifu_core::Error` variant expected.
    pub error: String,
    /// For `Malformed` and `Truncated`: the field the error names (`warifu_core::Error`'s
    /// `field`), so that a twin stopped by another check (a stale checksum, say) is noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes lowercase or uppercase hex; `None` on odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The textbook final exponent (p¹² − 1)/r of BLS12-381, big-endian hex (4314 bits). The
/// vectors test checks it against p and r.
pub const TEXTBOOK_FINAL_EXPONENT_HEX: &str = concat!(
    "02ee1db5dcc825b7e1bda9c0496a1c0a89ee0193d4977b3f7d4507d07363baa13f8d14a917848517badc3a43",
    "d1073776ab353f2c30698e8cc7deada9c0aadff5e9cfee9a074e43b9a660835cc872ee83ff3a0f0f1c0ad0d6",
    "106feaf4e347aa68ad49466fa927e7bb9375331807a0dce2630d9aa4b113f414386b0e8819328148978e2b0d",
    "d39099b86e1ab656d2670d93e4d7acdd350da5359bc73ab61a0c5bf24c374693c49f570bcd2b01f3077ffb10",
    "bf24dde41064837f27611212596bc293c8d4c01f25118790f4684d0b9c40a68eb74bb22a40ee7169cdc10412",
    "96532fef459f12438dfc8e2886ef965e61a474c5c85b0129127a1b5ad0463434724538411d1676a53b5a62eb",
    "34c05739334f46c02c3f0bd0c55d3109cd15948d0a1fad20044ce6ad4c6bec3ec03ef19592004cedd556952c",
    "6d8823b19dadd7c2498345c6e5308f1c511291097db60b1749bf9b71a9f9e0100418a3ef0bc627751bbd8136",
    "7066bca6a4c1b6dcfc5cceb73fc56947a403577dfa9e13c24ea820b09c1d9f7c31759c3635de3f7a36399917",
    "08e88adce88177456c49637fd7961be1a4c7e79fb02faa732e2f3ec2bea83d196283313492caa9d4aff1c910",
    "e9622d2a73f62537f2701aaef6539314043f7bbce5b78c7869aeb2181a67e49eeed2161daf3f881bd88592d7",
    "67f67c4717489119226c2f011d4cab803e9d71650a6f80698e2f8491d12191a04406fbc8fbd5f48925f98630",
    "e68bfb24c0bcb9b55df57510"
);

/// f^e by square-and-multiply over the big-endian bytes of `e` (public values only: not
/// constant time).
pub fn fp12_pow(f: &blst::blst_fp12, e: &[u8]) -> blst::blst_fp12 {
    // blst_fp12::default() is the unit 1.
    let mut acc = blst::blst_fp12::default();
    for byte in e {
        for bit in (0..8).rev() {
            acc = acc * acc;
            if byte >> bit & 1 == 1 {
                acc *= *f;
            }
        }
    }
    acc
}

/// The reduced optimal ate pairing with the textbook final exponentiation (p¹² − 1)/r:
/// blst's Miller loop (z negative: conjugated), then f^((p¹² − 1)/r) by square-and-multiply.
pub fn textbook_pairing(q: &blst::blst_p2_affine, p: &blst::blst_p1_affine) -> blst::blst_fp12 {
    let e = unhex(TEXTBOOK_FINAL_EXPONENT_HEX).unwrap_or_default();
    fp12_pow(&blst::blst_fp12::miller_loop(q, p), &e)
}
