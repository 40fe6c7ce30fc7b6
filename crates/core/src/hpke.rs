//! HPKE (RFC 9180) in PSK mode, one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use curve25519_dalek::edwards::EdwardsBasepointTable;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use curve25519_dalek::traits::BasepointTable;
use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// RFC 9180 KEM identifier: DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// RFC 9180 KDF identifier: HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// RFC 9180 AEAD identifier: ChaCha20-Poly1305.
pub const AEAD_ID: u16 = 0x0003;
/// RFC 9180 `mode_psk`.
const MODE_PSK: u8 = 0x01;

/// The KEM's `suite_id`: `"KEM" ‖ I2OSP(kem_id, 2)`.
const KEM_SUITE: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];
/// The key schedule's `suite_id`: `"HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖
/// I2OSP(aead_id, 2)`.
const HPKE_SUITE: [u8; 10] = [b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03];
/// The version label of every labeled KDF call.
const VERSION: &[u8] = b"HPKE-v1";

/// Why an HPKE operation failed. Deliberately coarse: nothing about secret values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpkeError {
    /// An input was not of its fixed length.
    #[error("HPKE: {0} has the wrong length")]
    Length(&'static str),
    /// The Diffie-Hellman output was all zeros (a small-order public key).
    #[error("HPKE: the Diffie-Hellman output is all zeros")]
    ZeroSharedSecret,
    /// PSK mode without a PSK or without a PSK identifier.
    #[error("HPKE: PSK mode needs a non-empty psk and psk_id")]
    Psk,
    /// Authenticated encryption or decryption failed.
    #[error("HPKE: authenticated encryption failed")]
    Aead,
    /// The context's sequence number is exhausted.
    #[error("HPKE: the context's message limit is reached")]
    MessageLimit,
    /// More output asked of the KDF than it gives (`L` > 255 · Nh).
    #[error("HPKE: the KDF cannot give that many bytes")]
    KdfLength,
}

/// `LabeledExtract(salt, label, ikm)` under `suite`.
fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    for part in [VERSION, suite, label, ikm] {
        extract.input_ikm(part);
    }
    let (mut prk, _) = extract.finalize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&prk);
    prk.as_mut_slice().zeroize();
    out
}

/// `LabeledExpand(prk, label, info, L)` under `suite`, `L = out.len()`.
fn labeled_expand(
    suite: &[u8],
    prk: &[u8; 32],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), HpkeError> {
    let len = u16::try_from(out.len()).map_err(|_| HpkeError::KdfLength)?;
    Hkdf::<Sha256>::from_prk(prk)
        .map_err(|_| HpkeError::KdfLength)?
        .expand_multi_info(&[&len.to_be_bytes(), VERSION, suite, label, info], out)
        .map_err(|_| HpkeError::KdfLength)
}

/// [`labeled_expand`] to a 32-byte secret.
fn expand32(suite: &[u8], prk: &[u8; 32], label: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    labeled_expand(suite, prk, label, info, out.as_mut())
        .unwrap_or_else(|_| unreachable!("32 bytes is within HKDF-SHA256's limit"));
    out
}

/// The X25519 public key of a private key: the fixed-base multiplication by the clamped
/// scalar (precomputed base-point tables).
pub fn public_key(sk: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*sk).to_bytes()
}

/// RFC 9180 `DeriveKeyPair(ikm)` of DHKEM(X25519): the private key as derived (unclamped, as
/// RFC 9180's vectors print `skEm`) and its public key.
pub fn derive_key_pair(ikm: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let dkp_prk = labeled_extract(&KEM_SUITE, b"", b"dkp_prk", ikm);
    let sk = expand32(&KEM_SUITE, &dkp_prk, b"sk", b"");
    let pk = public_key(&sk);
    (sk, pk)
}

/// The sender's precomputation for one recipient public key `u`: a constant-time table of
/// the multiples of `8·P` (`P` either point of u-coordinate `u`), or `None` when `u` is not
/// the u-coordinate of a curve point (a twist point, `u = −1`).
type SenderTable = Option<EdwardsBasepointTable>;

/// Diffie-Hellmans to one key by the ladder before its table is built. The table costs
/// about 23 ladders (≈ 1 ms: a field inversion for each of its 256 entries) and saves about
/// 0.7 of one per use, so a key sealed to a few times (the cardholder service asks again
/// every minute) never pays for it, and a key sealed to often pays at most about twice what
/// the best choice in hindsight would have (ski rental).
pub const LADDERS_BEFORE_TABLE: u32 = 24;

/// What the clones of one [`RecipientKey`] share: the count of ladders so far, the table.
#[derive(Default)]
struct Shared {
    ladders: AtomicU32,
    table: OnceLock<SenderTable>,
}

/// A recipient's X25519 public key, with the sender's precomputed table for Diffie-Hellman
/// to it, built after [`LADDERS_BEFORE_TABLE`] encapsulations (or by
/// [`RecipientKey::precompute`]) and shared by every clone.
///
/// `X25519(sk, u)` is `clamp(sk)·P` for `P` on the curve; the clamped scalar is a multiple of
/// 8, so it is `(clamp(sk)/8 mod ℓ)·(8·P)` with `8·P` in the prime-order subgroup: a
/// fixed-base multiplication by a table of `8·P`, about a third of the Montgomery ladder's
/// time. Twist points take the ladder: the result is always exactly `X25519(sk, u)`, and
/// which way it is computed depends only on public values (`u`, the count of uses).
#[derive(Clone)]
pub struct RecipientKey {
    u: [u8; 32],
    shared: Arc<Shared>,
}

impl core::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecipientKey")
            .field("u", &self.u)
            .field(
                "table",
                &match self.shared.table.get() {
                    None => "not yet",
                    Some(None) => "none: off the curve, the ladder",
                    Some(Some(_)) => "built",
                },
            )
            .finish()
    }
}

impl PartialEq for RecipientKey {
    fn eq(&self, other: &RecipientKey) -> bool {
        self.u == other.u
    }
}
impl Eq for RecipientKey {}

impl RecipientKey {
    /// The key of these bytes (any 32 bytes are an X25519 public key).
    pub fn new(u: [u8; 32]) -> RecipientKey {
        RecipientKey {
            u,
            shared: Arc::default(),
        }
    }

    /// The key of these bytes, if there are 32 of them.
    pub fn from_slice(bytes: &[u8]) -> Result<RecipientKey, HpkeError> {
        let u = bytes
            .try_into()
            .map_err(|_| HpkeError::Length("public key"))?;
        Ok(RecipientKey::new(u))
    }

    /// The serialized key (`pkRm`).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.u
    }

    /// Builds the table now (for a key about to be sealed to many times) rather than after
    /// [`LADDERS_BEFORE_TABLE`] encapsulations.
    pub fn precompute(&self) {
        self.shared.table.get_or_init(|| sender_table(&self.u));
    }

    /// `X25519(sk, u)`, constant-time in `sk`.
    pub fn dh(&self, sk: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        let table = match self.shared.table.get() {
            Some(table) => table,
            None if self.shared.ladders.fetch_add(1, Ordering::Relaxed) < LADDERS_BEFORE_TABLE => {
                return ladder(sk, &self.u);
            }
            None => self.shared.table.get_or_init(|| sender_table(&self.u)),
        };
        match table {
            Some(table) => {
                let clamped = Zeroizing::new(clamp_integer(*sk));
                let s = Zeroizing::new(Scalar::from_bytes_mod_order(*div8(&clamped)));
                let mut point = table.mul_base(&s);
                let dh = Zeroizing::new(point.to_montgomery().to_bytes());
                point.zeroize();
                dh
            }
            None => ladder(sk, &self.u),
        }
    }
}

/// The table of `8·P` for the u-coordinate `u`, if `u` is on the curve.
fn sender_table(u: &[u8; 32]) -> SenderTable {
    let p = MontgomeryPoint(*u).to_edwards(0)?;
    Some(EdwardsBasepointTable::create(&p.mul_by_cofactor()))
}

/// `c / 8` of a clamped scalar `c` (little-endian; its three low bits are zero).
fn div8(c: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, o) in out.iter_mut().enumerate() {
        let high = c.get(i + 1).copied().unwrap_or(0);
        *o = (c[i] >> 3) | (high << 5);
    }
    out
}

/// `X25519(sk, u)` by the Montgomery ladder.
fn ladder(sk: &[u8; 32], u: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut point = MontgomeryPoint(*u).mul_clamped(*sk);
    let dh = Zeroizing::new(point.to_bytes());
    point.zeroize();
    dh
}

/// DHKEM's `ExtractAndExpand(dh, enc ‖ pkR)`, refusing an all-zero `dh` (RFC 9180 §7.1.4).
fn shared_secret(
    dh: &[u8; 32],
    enc: &[u8; 32],
    pk_r: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, HpkeError> {
    if bool::from(dh.ct_eq(&[0u8; 32])) {
        return Err(HpkeError::ZeroSharedSecret);
    }
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(enc);
    kem_context[32..].copy_from_slice(pk_r);
    let eae_prk = labeled_extract(&KEM_SUITE, b"", b"eae_prk", dh);
    Ok(expand32(
        &KEM_SUITE,
        &eae_prk,
        b"shared_secret",
        &kem_context,
    ))
}

/// An HPKE context after setup: the AEAD key, base nonce and sequence number, and the
/// exporter secret. The sender's seals and the receiver's opens count the same sequence.
pub struct Context {
    key: Zeroizing<[u8; 32]>,
    base_nonce: Zeroizing<[u8; 12]>,
    exporter_secret: Zeroizing<[u8; 32]>,
    seq: u64,
}

impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// `KeySchedule(mode_psk, shared_secret, info, psk, psk_id)`; an empty `psk` or `psk_id`
    /// is refused (`VerifyPSKInputs`).
    fn psk(
        shared_secret: &[u8; 32],
        info: &[u8],
        psk: &[u8],
        psk_id: &[u8],
    ) -> Result<Context, HpkeError> {
        if psk.is_empty() || psk_id.is_empty() {
            return Err(HpkeError::Psk);
        }
        let psk_id_hash = labeled_extract(&HPKE_SUITE, b"", b"psk_id_hash", psk_id);
        let info_hash = labeled_extract(&HPKE_SUITE, b"", b"info_hash", info);
        let mut context = [0u8; 65];
        context[0] = MODE_PSK;
        context[1..33].copy_from_slice(psk_id_hash.as_ref());
        context[33..].copy_from_slice(info_hash.as_ref());
        let secret = labeled_extract(&HPKE_SUITE, shared_secret, b"secret", psk);
        let mut base_nonce = Zeroizing::new([0u8; 12]);
        labeled_expand(
            &HPKE_SUITE,
            &secret,
            b"base_nonce",
            &context,
            base_nonce.as_mut(),
        )?;
        Ok(Context {
            key: expand32(&HPKE_SUITE, &secret, b"key", &context),
            base_nonce,
            exporter_secret: expand32(&HPKE_SUITE, &secret, b"exp", &context),
            seq: 0,
        })
    }

    /// The nonce of the current sequence number: `base_nonce XOR I2OSP(seq, 12)`.
    fn nonce(&self) -> Result<Nonce, HpkeError> {
        if self.seq == u64::MAX {
            return Err(HpkeError::MessageLimit);
        }
        let mut nonce = *self.base_nonce;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        Ok(Nonce::from(nonce))
    }

    /// `ContextS.Seal(aad, pt)`: the ciphertext with its tag.
    pub fn seal(&mut self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let nonce = self.nonce()?;
        let ciphertext = ChaCha20Poly1305::new((&*self.key).into())
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| HpkeError::Aead)?;
        self.seq += 1;
        Ok(ciphertext)
    }

    /// `ContextR.Open(aad, ct)`: the plaintext, or an error if anything was tampered with.
    pub fn open(&mut self, ciphertext: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
        let nonce = self.nonce()?;
        let plaintext = ChaCha20Poly1305::new((&*self.key).into())
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| HpkeError::Aead)?;
        self.seq += 1;
        Ok(Zeroizing::new(plaintext))
    }

    /// `Context.Export(exporter_context, L)` into `out` (`L = out.len()` ≤ 255 · 32).
    pub fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<(), HpkeError> {
        labeled_expand(
            &HPKE_SUITE,
            &self.exporter_secret,
            b"sec",
            exporter_context,
            out,
        )
    }
}

/// `SetupPSKS(pkR, info, psk, psk_id)` with the ephemeral key `DeriveKeyPair(ikm_e)`: the
/// encapsulated key `enc` and the sender's context.
pub fn setup_psk_sender(
    pk_r: &RecipientKey,
    ikm_e: &[u8],
    info: &[u8],
    psk: &[u8],
    psk_id: &[u8],
) -> Result<([u8; 32], Context), HpkeError> {
    let (sk_e, enc) = derive_key_pair(ikm_e);
    let dh = pk_r.dh(&sk_e);
    let secret = shared_secret(&dh, &enc, pk_r.as_bytes())?;
    Ok((enc, Context::psk(&secret, info, psk, psk_id)?))
}

/// `SetupPSKR(enc, skR, info, psk, psk_id)`. `pk_r` must be the public key of `sk_r`
/// ([`public_key`], computed once when the key is loaded): it is not recomputed here.
pub fn setup_psk_receiver(
    enc: &[u8],
    sk_r: &[u8; 32],
    pk_r: &[u8; 32],
    info: &[u8],
    psk: &[u8],
    psk_id: &[u8],
) -> Result<Context, HpkeError> {
    let enc: [u8; 32] = enc.try_into().map_err(|_| HpkeError::Length("enc"))?;
    let dh = ladder(sk_r, &enc);
    let secret = shared_secret(&dh, &enc, pk_r)?;
    Context::psk(&secret, info, psk, psk_id)
}
