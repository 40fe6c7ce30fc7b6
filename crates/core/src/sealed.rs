//! The sealed order (claims 1–3): one AEAD part per recipient, bound to the header and to
//! every part's commitment, so parts can neither be read by others nor moved between orders.

use core::marker::PhantomData;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::hpke;
use crate::id::{OrderId, PartyId, Role};
use crate::kem::{KemId, KemPublicKey, KemRing, KemSecretKey};
use crate::keysource::{KeySource, PairwiseKey, Scheme, pairwise_key};
use crate::order::{Card, Destination, Order, OrderForm, PaymentMethod};
use crate::policy::{Field, Policy};
use crate::purpose::{Purpose, purpose_key};
use crate::rand::Randomness;
use crate::secret::Key32;
use crate::{Error, Result};

/// The sealed-order format version this build writes with the recipients' KEM keys
/// ([`seal_to`]): each part sealed with HPKE to the recipient's KEM key of an epoch, in PSK
/// mode under a purpose key of K (forward secrecy). It reads [`FORMAT_V2`] and [`FORMAT_V1`]
/// too.
pub const FORMAT_VERSION: u8 = 3;
/// Version 2: padded parts under keys from K alone (no forward secrecy). Still opened; written
/// by [`seal_within`] where no KEM keys of the recipients are at hand.
pub const FORMAT_V2: u8 = 2;
/// The first format version: no padding, part keys expanded from K directly. Still opened
/// (orders sealed before version 2), never written.
pub const FORMAT_V1: u8 = 1;
/// The first four bytes of an encoded header.
pub const MAGIC: &[u8; 4] = b"WRFS";
/// Label hashed in front of the header bytes to give the header digest.
pub const HEADER_LABEL: &[u8] = b"warifu/v1/header";
/// HKDF info prefix of a part's encryption key.
pub const PART_KEY_LABEL: &[u8] = b"warifu/v1/part-key";
/// HKDF info prefix of a part's commitment key.
pub const COMMIT_KEY_LABEL: &[u8] = b"warifu/v1/part-commit";
/// Prefix of every part's associated data.
pub const AAD_LABEL: &[u8] = b"warifu/v1/part-aad";
/// Version 2: HKDF info label of a part's encryption key, under the seal purpose key.
pub const PART_KEY_LABEL_V2: &[u8] = b"warifu/v2/part-key";
/// Version 2: HKDF info label of a part's commitment key, under the seal purpose key.
pub const COMMIT_KEY_LABEL_V2: &[u8] = b"warifu/v2/part-commit";
/// Version 2: prefix of every part's associated data.
pub const AAD_LABEL_V2: &[u8] = b"warifu/v2/part-aad";
/// Version 3: the HPKE `info` label of a part (`lp(label) ‖ u8(role) ‖ header digest`).
pub const HPKE_INFO_LABEL_V3: &[u8] = b"warifu/v3/part";
/// Version 3: the HPKE `psk_id` label (`lp(label) ‖ u32(epoch)`).
pub const PSK_ID_LABEL_V3: &[u8] = b"warifu/v3/kem-psk";
/// Version 3: the HPKE exporter context of a part's commitment key (`lp(label)`).
pub const COMMIT_EXPORT_LABEL_V3: &[u8] = b"warifu/v3/part-commit";
/// Version 3: prefix of every part's associated data.
pub const AAD_LABEL_V3: &[u8] = b"warifu/v3/part-aad";
/// Version 2: the smallest padded part plaintext; buckets double up to [`PAD_STEP`].
pub const PAD_MIN: usize = 256;
/// Version 2: above this, plaintexts are padded to a multiple of it.
pub const PAD_STEP: usize = 4096;

/// Version 2: the padded length of a part plaintext of `n` bytes — the smallest of 256, 512,
/// 1024, 2048, 4096 that holds it, above that the next multiple of 4096 — so that a part's
/// length tells only its bucket (a 15- and a 19-digit card, a short and a long address, seal
/// to the same length).
pub fn padded_len(n: usize) -> usize {
    if n <= PAD_STEP {
        n.max(PAD_MIN).next_power_of_two()
    } else {
        n.div_ceil(PAD_STEP) * PAD_STEP
    }
}
/// The largest part ciphertext accepted, in bytes.
pub const MAX_PART: usize = 64 * 1024;

/// The header in clear: who is involved in which order, under which policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The format version ([`FORMAT_VERSION`]).
    pub version: u8,
    /// The key scheme of the pairwise keys.
    pub scheme: Scheme,
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The cardholder, in clear so that each party can derive its key (【0035】).
    pub cardholder: PartyId,
    /// The merchant.
    pub merchant: PartyId,
    /// The issuer.
    pub issuer: PartyId,
    /// The carrier, if the order is delivered.
    pub carrier: Option<PartyId>,
    /// Digest of the disclosure policy ([`Policy::digest`]).
    #[serde(with = "b64_array")]
    pub policy_digest: [u8; 32],
    /// When the order was sealed, Unix seconds.
    pub created_at: u64,
}

impl Header {
    /// The identifier of the party in `role`, if the order has one.
    pub fn party(&self, role: Role) -> Option<&PartyId> {
        match role {
            Role::Cardholder => Some(&self.cardholder),
            Role::Merchant => Some(&self.merchant),
            Role::Issuer => Some(&self.issuer),
            Role::Carrier => self.carrier.as_ref(),
        }
    }

    /// The roles that must have a part, in order.
    pub fn recipients(&self) -> Vec<Role> {
        let mut r = vec![Role::Merchant, Role::Issuer];
        if self.carrier.is_some() {
            r.push(Role::Carrier);
        }
        r
    }

    /// The binary encoding (the bytes every part's associated data binds).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(MAGIC).u8(self.version).u8(self.scheme.code());
        for s in [
            self.order_id.as_str(),
            self.cardholder.as_str(),
            self.merchant.as_str(),
            self.issuer.as_str(),
        ] {
            w.bytes16(s.as_bytes());
        }
        match &self.carrier {
            Some(c) => w.u8(1).bytes16(c.as_str().as_bytes()),
            None => w.u8(0),
        };
        w.raw(&self.policy_digest).u64(self.created_at);
        w.finish()
    }

    fn read(r: &mut Reader<'_>) -> Result<Header> {
        if r.take(4, "magic")? != MAGIC {
            return Err(Error::malformed("magic", "not a Warifu sealed order"));
        }
        let version = r.u8("version")?;
        check_version(version)?;
        let scheme_code = r.u8("scheme")?;
        let scheme = Scheme::from_code(scheme_code)
            .ok_or_else(|| Error::malformed("scheme", format!("unknown code {scheme_code}")))?;
        let order_id = OrderId::from(r.str16("order id")?);
        let id = |r: &mut Reader<'_>, f| PartyId::parse(r.str16(f)?);
        let cardholder = id(r, "cardholder")?;
        let merchant = id(r, "merchant")?;
        let issuer = id(r, "issuer")?;
        let carrier = match r.u8("carrier flag")? {
            0 => None,
            1 => Some(id(r, "carrier")?),
            _ => return Err(Error::malformed("carrier flag", "must be 0 or 1")),
        };
        let h = Header {
            version,
            scheme,
            order_id,
            cardholder,
            merchant,
            issuer,
            carrier,
            policy_digest: r.array("policy digest")?,
            created_at: r.u64("created at")?,
        };
        h.check()?;
        Ok(h)
    }

    /// Decodes a header, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Header> {
        let mut r = Reader::new(bytes);
        let h = Header::read(&mut r)?;
        r.finish("header")?;
        Ok(h)
    }

    /// Structural checks shared by the binary and JSON decoders.
    fn check(&self) -> Result<()> {
        check_version(self.version)?;
        if self.order_id.is_empty() || self.order_id.len() > 64 {
            return Err(Error::malformed("order id", "must be 1–64 bytes"));
        }
        for role in Role::ALL {
            if let Some(id) = self.party(role).filter(|id| id.role() != role) {
                return Err(Error::malformed("header", format!("{id} is not a {role}")));
            }
        }
        Ok(())
    }

    /// `SHA-256(HEADER_LABEL ‖ encode())`.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(HEADER_LABEL);
        h.update(self.encode());
        h.finalize().into()
    }
}

/// Versions 1, 2 and 3 are read; others are [`Error::UnsupportedVersion`].
fn check_version(version: u8) -> Result<()> {
    if !(FORMAT_V1..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            what: "sealed order",
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// Version 3: which recipient KEM key of which epoch a part is sealed to, and the HPKE
/// encapsulated key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KemCapsule {
    /// The KEM (its RFC 9180 id on the wire).
    pub kem: KemId,
    /// The epoch of the recipient's KEM key.
    pub epoch: u32,
    /// HPKE's `enc` (`Nenc` bytes).
    #[serde(with = "b64_vec")]
    pub enc: Vec<u8>,
}

/// One recipient's sealed part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedPart {
    /// Who can open it.
    pub recipient: Role,
    /// Versions 1 and 2: the XChaCha20 nonce (version 3 has none: HPKE derives its nonce).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "b64_opt_array"
    )]
    pub nonce: Option<[u8; 24]>,
    /// Version 3: the recipient's KEM key epoch and the encapsulated key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kem: Option<KemCapsule>,
    /// HMAC-SHA256 commitment to the plaintext under the recipient's commitment key.
    #[serde(with = "b64_array")]
    pub commitment: [u8; 32],
    /// The AEAD ciphertext and tag (XChaCha20-Poly1305; ChaCha20-Poly1305 in version 3).
    #[serde(with = "b64_vec")]
    pub ciphertext: Vec<u8>,
}

impl SealedPart {
    fn write(&self, w: &mut Writer) {
        w.u8(self.recipient.code());
        if let Some(nonce) = &self.nonce {
            w.raw(nonce);
        }
        if let Some(k) = &self.kem {
            w.u16(k.kem.code()).u32(k.epoch).raw(&k.enc);
        }
        w.raw(&self.commitment).bytes32(&self.ciphertext);
    }

    fn read(r: &mut Reader<'_>, version: u8) -> Result<SealedPart> {
        let code = r.u8("part recipient")?;
        let recipient = Role::from_code(code)
            .filter(|r| *r != Role::Cardholder)
            .ok_or_else(|| Error::malformed("part recipient", format!("unknown code {code}")))?;
        let (nonce, kem) = if version == FORMAT_VERSION {
            let code = r.u16("part KEM")?;
            let kem = KemId::from_code(code)
                .ok_or_else(|| Error::malformed("part KEM", format!("unknown KEM {code:#06x}")))?;
            let epoch = r.u32("part KEM epoch")?;
            let enc = r.take(kem.enc_len(), "part KEM enc")?.to_vec();
            (None, Some(KemCapsule { kem, epoch, enc }))
        } else {
            (Some(r.array("part nonce")?), None)
        };
        let commitment = r.array("part commitment")?;
        let ciphertext = r.bytes32("part ciphertext")?.to_vec();
        let part = SealedPart {
            recipient,
            nonce,
            kem,
            commitment,
            ciphertext,
        };
        part.check(version)?;
        Ok(part)
    }

    fn check(&self, version: u8) -> Result<()> {
        match (&self.nonce, &self.kem) {
            (Some(_), None) if version != FORMAT_VERSION => {}
            (None, Some(k)) if version == FORMAT_VERSION => {
                if k.epoch == 0 {
                    return Err(Error::malformed("part KEM epoch", "epochs start at 1"));
                }
                if k.enc.len() != k.kem.enc_len() {
                    return Err(Error::malformed("part KEM enc", "wrong length"));
                }
            }
            _ => {
                return Err(Error::malformed(
                    "part",
                    "versions 1 and 2 carry a nonce, version 3 a KEM capsule",
                ));
            }
        }
        if self.recipient == Role::Cardholder {
            return Err(Error::malformed(
                "part recipient",
                "the cardholder is not a recipient",
            ));
        }
        if self.ciphertext.len() < 16 || self.ciphertext.len() > MAX_PART {
            return Err(Error::malformed(
                "part ciphertext",
                "must be 16 bytes to 64 KiB",
            ));
        }
        Ok(())
    }
}

/// The whole sealed order, as the cardholder sends it to the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "SealedOrderJson")]
pub struct SealedOrder {
    /// The header in clear.
    pub header: Header,
    /// One part per recipient, in role order (merchant, issuer, carrier).
    pub parts: Vec<SealedPart>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedOrderJson {
    header: Header,
    parts: Vec<SealedPart>,
}

impl TryFrom<SealedOrderJson> for SealedOrder {
    type Error = Error;
    fn try_from(j: SealedOrderJson) -> Result<SealedOrder> {
        let s = SealedOrder {
            header: j.header,
            parts: j.parts,
        };
        s.check()?;
        Ok(s)
    }
}

/// A recipient's commitment, as forwarded with a single part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Whose part it commits to.
    pub recipient: Role,
    /// The commitment.
    #[serde(with = "b64_array")]
    pub commitment: [u8; 32],
}

/// What the merchant forwards to the issuer or the carrier: the header, that party's part
/// and the other parts' commitments, enough to verify the part belongs to this bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "ForwardedPartJson")]
pub struct ForwardedPart {
    /// The header in clear.
    pub header: Header,
    /// The recipient's part.
    pub part: SealedPart,
    /// The other parts' commitments, in role order.
    pub others: Vec<Commitment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardedPartJson {
    header: Header,
    part: SealedPart,
    others: Vec<Commitment>,
}

impl TryFrom<ForwardedPartJson> for ForwardedPart {
    type Error = Error;
    fn try_from(j: ForwardedPartJson) -> Result<ForwardedPart> {
        j.header.check()?;
        j.part.check(j.header.version)?;
        let f = ForwardedPart {
            header: j.header,
            part: j.part,
            others: j.others,
        };
        f.commitments()?;
        Ok(f)
    }
}

impl SealedOrder {
    fn check(&self) -> Result<()> {
        self.header.check()?;
        let roles: Vec<Role> = self.parts.iter().map(|p| p.recipient).collect();
        if roles != self.header.recipients() {
            return Err(Error::malformed(
                "parts",
                "must be one part each for the merchant, the issuer and (if any) the carrier, in that order",
            ));
        }
        self.parts
            .iter()
            .try_for_each(|p| p.check(self.header.version))
    }

    /// The binary wire form: header ‖ u8(count) ‖ parts.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.header.encode()).u8(self.parts.len() as u8);
        for p in &self.parts {
            p.write(&mut w);
        }
        w.finish()
    }

    /// Decodes the binary wire form, refusing anything malformed or trailing.
    pub fn decode(bytes: &[u8]) -> Result<SealedOrder> {
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let count = r.u8("part count")?;
        if count > 3 {
            return Err(Error::malformed("part count", "at most 3"));
        }
        let parts = (0..count)
            .map(|_| SealedPart::read(&mut r, header.version))
            .collect::<Result<Vec<_>>>()?;
        r.finish("sealed order")?;
        let s = SealedOrder { header, parts };
        s.check()?;
        Ok(s)
    }

    /// The JSON wire form (binary fields in unpadded base64url).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes the JSON wire form; structural errors keep their type (e.g. an unknown version
    /// is [`Error::UnsupportedVersion`]).
    pub fn from_json(s: &str) -> Result<SealedOrder> {
        serde_json::from_str::<SealedOrderJson>(s)
            .map_err(|e| Error::malformed("sealed order JSON", e.to_string()))?
            .try_into()
    }

    /// What to send `role`: its part and the others' commitments.
    pub fn forward(&self, role: Role) -> Result<ForwardedPart> {
        let part = self
            .parts
            .iter()
            .find(|p| p.recipient == role)
            .ok_or(Error::MissingPart(role_name(role)))?
            .clone();
        let others = self
            .parts
            .iter()
            .filter(|p| p.recipient != role)
            .map(|p| Commitment {
                recipient: p.recipient,
                commitment: p.commitment,
            })
            .collect();
        Ok(ForwardedPart {
            header: self.header.clone(),
            part,
            others,
        })
    }

    /// Opens the part of `R` with the holder's key source (versions 1 and 2; a version-3
    /// part needs the holder's KEM keys too: [`SealedOrder::open_with_ring`]).
    pub fn open<R: Recipient>(&self, policy: &Policy, keys: &dyn KeySource) -> Result<View<R>> {
        self.forward(R::ROLE)?.open(policy, keys)
    }

    /// Opens the part of `R` with the holder's key source and KEM key ring (any version).
    pub fn open_with_ring<R: Recipient>(
        &self,
        policy: &Policy,
        keys: &dyn KeySource,
        ring: &KemRing,
    ) -> Result<View<R>> {
        self.forward(R::ROLE)?.open_with_ring(policy, keys, ring)
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    role.as_str()
}

impl ForwardedPart {
    /// Every commitment in role order, checking that the set matches the header.
    fn commitments(&self) -> Result<Vec<Commitment>> {
        if !self
            .others
            .windows(2)
            .all(|w| w[0].recipient < w[1].recipient)
        {
            return Err(Error::malformed("commitments", "must be in role order"));
        }
        let mut all = self.others.clone();
        all.push(Commitment {
            recipient: self.part.recipient,
            commitment: self.part.commitment,
        });
        all.sort_by_key(|c| c.recipient);
        let roles: Vec<Role> = all.iter().map(|c| c.recipient).collect();
        if roles != self.header.recipients() {
            return Err(Error::malformed(
                "commitments",
                "must cover exactly the header's recipients",
            ));
        }
        Ok(all)
    }

    /// Opens the part for `R` with the holder's key source (which must be `R`'s party).
    /// Versions 1 and 2 only: a version-3 part gives [`Error::KemKeyUnavailable`] (use
    /// [`ForwardedPart::open_with_ring`]).
    pub fn open<R: Recipient>(&self, policy: &Policy, keys: &dyn KeySource) -> Result<View<R>> {
        crate::meter::measure(crate::meter::Section::Sealing, || {
            self.open_inner(policy, keys, None)
        })
    }

    /// Opens the part for `R` with the holder's key source and its KEM key ring: any version.
    pub fn open_with_ring<R: Recipient>(
        &self,
        policy: &Policy,
        keys: &dyn KeySource,
        ring: &KemRing,
    ) -> Result<View<R>> {
        crate::meter::measure(crate::meter::Section::Sealing, || {
            self.open_inner(policy, keys, Some(ring))
        })
    }

    fn open_inner<R: Recipient>(
        &self,
        policy: &Policy,
        keys: &dyn KeySource,
        ring: Option<&KemRing>,
    ) -> Result<View<R>> {
        let baseline = Scheme::PlaintextBaseline;
        if (self.header.scheme == baseline) != (keys.scheme() == baseline) {
            return Err(baseline_mismatch());
        }
        let key = pairwise_key(keys, &self.header.cardholder)?;
        self.check_recipient::<R>(keys.owner())?;
        self.open_with_keys(policy, &key, ring)
    }

    fn check_recipient<R: Recipient>(&self, me: &PartyId) -> Result<()> {
        if self.part.recipient != R::ROLE {
            return Err(Error::MissingPart(role_name(R::ROLE)));
        }
        if self.header.party(R::ROLE) != Some(me) {
            return Err(Error::HeaderMismatch(format!(
                "this order is not addressed to {me}"
            )));
        }
        Ok(())
    }

    /// Opens with an already derived pairwise key (e.g. from a cache). The caller is
    /// responsible for having derived it for `header.cardholder` and itself. Versions 1 and 2
    /// only, as [`ForwardedPart::open`].
    pub fn open_with_key<R: Recipient>(
        &self,
        policy: &Policy,
        key: &PairwiseKey,
    ) -> Result<View<R>> {
        self.open_with_keys(policy, key, None)
    }

    /// Opens with an already derived pairwise key and, for version 3, the holder's KEM key
    /// ring (§10: steps 2 and 4–9; a version-3 part whose epoch is not in the ring gives
    /// [`Error::KemKeyUnavailable`] before any decryption).
    pub fn open_with_keys<R: Recipient>(
        &self,
        policy: &Policy,
        key: &PairwiseKey,
        ring: Option<&KemRing>,
    ) -> Result<View<R>> {
        if self.part.recipient != R::ROLE {
            return Err(Error::MissingPart(role_name(R::ROLE)));
        }
        if policy
            .digest()
            .ct_eq(&self.header.policy_digest)
            .unwrap_u8()
            == 0
        {
            return Err(Error::HeaderMismatch(
                "the order was sealed under another disclosure policy".into(),
            ));
        }
        let commitments = self.commitments()?;
        let plaintext = if self.header.scheme == Scheme::PlaintextBaseline {
            open_baseline(&self.header, &self.part, R::ROLE, key)?
        } else {
            let aad = associated_data(self.header.version, &self.header.encode(), &commitments);
            let (plaintext, commit_key) = match (&self.part.kem, &self.part.nonce) {
                (Some(capsule), _) => {
                    let ring = ring.ok_or(Error::KemKeyUnavailable {
                        epoch: capsule.epoch,
                    })?;
                    let sk =
                        ring.get(capsule.kem, capsule.epoch)
                            .ok_or(Error::KemKeyUnavailable {
                                epoch: capsule.epoch,
                            })?;
                    let mut ctx = HpkePart::new(key, R::ROLE, &self.header, capsule.epoch)?
                        .receiver(sk, &capsule.enc)?;
                    let commit_key = hpke_commit_key(&ctx)?;
                    let plaintext = ctx
                        .open(&self.part.ciphertext, &aad)
                        .map_err(|_| Error::Decrypt)?;
                    (plaintext, commit_key)
                }
                (None, Some(nonce)) => {
                    let keys = PartKeys::derive(key, R::ROLE, &self.header)?;
                    let plaintext = XChaCha20Poly1305::new(keys.encrypt.expose().into())
                        .decrypt(
                            &XNonce::from(*nonce),
                            Payload {
                                msg: &self.part.ciphertext,
                                aad: &aad,
                            },
                        )
                        .map_err(|_| Error::Decrypt)?;
                    (Zeroizing::new(plaintext), keys.commit)
                }
                (None, None) => return Err(Error::malformed("part", "no nonce, no KEM")),
            };
            if commit(&commit_key, &plaintext)
                .ct_eq(&self.part.commitment)
                .unwrap_u8()
                == 0
            {
                return Err(Error::Decrypt);
            }
            if self.header.version != FORMAT_V1 && padded_len(plaintext.len()) != plaintext.len() {
                return Err(Error::Decrypt);
            }
            plaintext
        };
        let fields: Disclosed = serde_json::from_slice(&plaintext).map_err(|_| Error::Decrypt)?;
        // An order without a carrier has no destination, whoever the policy would give it to.
        let expected = policy
            .fields_for(R::ROLE)
            .filter(|f| *f != Field::DeliveryDestination || self.header.carrier.is_some())
            .collect();
        if fields.present() != Some(expected) {
            return Err(Error::HeaderMismatch(
                "the part does not hold exactly the policy's fields for this party".into(),
            ));
        }
        Ok(View {
            header: self.header.clone(),
            fields,
            recipient: PhantomData,
        })
    }

    /// The binary form: header ‖ part ‖ u8(count) ‖ (u8 role ‖ commitment)*.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.header.encode());
        self.part.write(&mut w);
        w.u8(self.others.len() as u8);
        for c in &self.others {
            w.u8(c.recipient.code()).raw(&c.commitment);
        }
        w.finish()
    }

    /// The JSON wire form (binary fields in unpadded base64url).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes the JSON wire form, keeping structural errors typed.
    pub fn from_json(s: &str) -> Result<ForwardedPart> {
        serde_json::from_str::<ForwardedPartJson>(s)
            .map_err(|e| Error::malformed("forwarded part JSON", e.to_string()))?
            .try_into()
    }

    /// Decodes the binary form.
    pub fn decode(bytes: &[u8]) -> Result<ForwardedPart> {
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let part = SealedPart::read(&mut r, header.version)?;
        let n = r.u8("commitment count")?;
        if n > 2 {
            return Err(Error::malformed("commitment count", "at most 2"));
        }
        let mut others = Vec::new();
        for _ in 0..n {
            let code = r.u8("commitment recipient")?;
            let recipient = Role::from_code(code).ok_or_else(|| {
                Error::malformed("commitment recipient", format!("unknown code {code}"))
            })?;
            others.push(Commitment {
                recipient,
                commitment: r.array("commitment")?,
            });
        }
        r.finish("forwarded part")?;
        let f = ForwardedPart {
            header,
            part,
            others,
        };
        f.commitments()?;
        Ok(f)
    }
}

struct PartKeys {
    encrypt: Key32,
    commit: Key32,
}

impl PartKeys {
    /// Per-order subkeys, one for the AEAD and one for the commitment. Version 2:
    /// HKDF-Expand(PRK = the seal purpose key of K, info = u16-len label ‖ label ‖ u8(role) ‖
    /// header digest). Version 1: HKDF-Expand(PRK = K, info = label ‖ u8(role) ‖ digest).
    fn derive(pairwise: &PairwiseKey, role: Role, header: &Header) -> Result<PartKeys> {
        let v1 = header.version == FORMAT_V1;
        let seal_key = purpose_key(pairwise, Purpose::Seal)?;
        let prk = if v1 { pairwise } else { &seal_key };
        let hk = Hkdf::<Sha256>::from_prk(prk.expose()).map_err(|_| Error::Rng)?;
        let digest = header.digest();
        let expand = |label: &[u8]| -> Result<Key32> {
            let mut k = [0u8; 32];
            let len = (label.len() as u16).to_be_bytes();
            let prefix: &[u8] = if v1 { &[] } else { &len };
            hk.expand_multi_info(&[prefix, label, &[role.code()], &digest], &mut k)
                .map_err(|_| Error::Rng)?;
            Ok(Key32::from_bytes(k))
        };
        let (encrypt, commit_label) = if v1 {
            (PART_KEY_LABEL, COMMIT_KEY_LABEL)
        } else {
            (PART_KEY_LABEL_V2, COMMIT_KEY_LABEL_V2)
        };
        Ok(PartKeys {
            encrypt: expand(encrypt)?,
            commit: expand(commit_label)?,
        })
    }
}

/// A part's commitment: HMAC-SHA256 under its commitment key.
fn commit(key: &Key32, plaintext: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(plaintext);
    mac.finalize().into_bytes().into()
}

/// Version 3: the HPKE inputs of one part (§19.2): the PSK (the `kem-psk` purpose key of K),
/// `psk_id = lp("warifu/v3/kem-psk") ‖ u32(epoch)` and `info = lp("warifu/v3/part") ‖
/// u8(role) ‖ header digest`.
struct HpkePart {
    psk: Key32,
    psk_id: Vec<u8>,
    info: Vec<u8>,
}

impl HpkePart {
    fn new(k: &PairwiseKey, role: Role, header: &Header, epoch: u32) -> Result<HpkePart> {
        let mut psk_id = Writer::new();
        psk_id.bytes16(PSK_ID_LABEL_V3).u32(epoch);
        let mut info = Writer::new();
        info.bytes16(HPKE_INFO_LABEL_V3)
            .u8(role.code())
            .raw(&header.digest());
        Ok(HpkePart {
            psk: purpose_key(k, Purpose::KemPsk)?,
            psk_id: psk_id.finish(),
            info: info.finish(),
        })
    }

    /// SetupPSKS: the encapsulated key and the sender's context, the ephemeral key from 32
    /// bytes of `rng` (RFC 9180 `DeriveKeyPair`).
    fn sender(
        &self,
        pk: &KemPublicKey,
        rng: &mut dyn Randomness,
    ) -> Result<(Vec<u8>, hpke::Context)> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill(ikm.as_mut())?;
        let (enc, ctx) = hpke::setup_psk_sender(
            &pk.recipient()?,
            ikm.as_ref(),
            &self.info,
            self.psk.expose(),
            &self.psk_id,
        )
        .map_err(|_| Error::malformed("KEM public key", "encapsulation failed"))?;
        Ok((enc.to_vec(), ctx))
    }

    /// SetupPSKR with the recipient's private key of the part's epoch (and its public key as
    /// stored with it).
    fn receiver(&self, sk: &KemSecretKey, enc: &[u8]) -> Result<hpke::Context> {
        hpke::setup_psk_receiver(
            enc,
            sk.expose_bytes(),
            sk.public_bytes(),
            &self.info,
            self.psk.expose(),
            &self.psk_id,
        )
        .map_err(|_| Error::Decrypt)
    }
}

/// Version 3: a part's commitment key, `Export(lp("warifu/v3/part-commit"), 32)` of its
/// HPKE context, so that it needs the KEM private key as well as K (a commitment under a key
/// of K alone would let a later holder of K test guesses of a captured part's plaintext).
fn hpke_commit_key(ctx: &hpke::Context) -> Result<Key32> {
    let mut label = Writer::new();
    label.bytes16(COMMIT_EXPORT_LABEL_V3);
    let mut k = [0u8; 32];
    ctx.export(&label.finish(), &mut k)
        .map_err(|_| Error::Rng)?;
    Ok(Key32::from_bytes(k))
}

/// A plaintext-baseline part's plaintext ([`crate::baseline`], feature `baseline`).
#[cfg(feature = "baseline")]
fn open_baseline(
    header: &Header,
    part: &SealedPart,
    role: Role,
    key: &PairwiseKey,
) -> Result<Zeroizing<Vec<u8>>> {
    crate::baseline::open_part(header, part, role, key)
}

/// Without the `baseline` feature a plaintext-baseline part is refused.
#[cfg(not(feature = "baseline"))]
fn open_baseline(
    _: &Header,
    _: &SealedPart,
    _: Role,
    _: &PairwiseKey,
) -> Result<Zeroizing<Vec<u8>>> {
    Err(baseline_mismatch())
}

/// The error for a plaintext-baseline order met with real keys, or the other way round (or
/// in a build without the `baseline` feature).
pub(crate) fn baseline_mismatch() -> Error {
    Error::HeaderMismatch(
        "the plaintext benchmark baseline and real keys do not mix (another key scheme)".into(),
    )
}

/// AAD = label ‖ header bytes ‖ u8(count) ‖ (u8 role ‖ commitment)* in role order, the label
/// [`AAD_LABEL`] (version 1) or [`AAD_LABEL_V2`].
fn associated_data(version: u8, header: &[u8], commitments: &[Commitment]) -> Vec<u8> {
    let label = match version {
        FORMAT_V1 => AAD_LABEL,
        FORMAT_V2 => AAD_LABEL_V2,
        _ => AAD_LABEL_V3,
    };
    let mut w = Writer::new();
    w.raw(label).raw(header).u8(commitments.len() as u8);
    for c in commitments {
        w.u8(c.recipient.code()).raw(&c.commitment);
    }
    w.finish()
}

/// Seals `order` for every recipient of `form`, paying with a card of `issuer`, under the
/// cardholder's key source, within the patent's disclosure table (see [`seal_within`]).
/// Validates the order first; `now` is Unix seconds.
pub fn seal(
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    keys: &dyn KeySource,
    now: u64,
    rng: &mut dyn Randomness,
) -> Result<SealedOrder> {
    let ceiling = Policy::patent_default();
    seal_within(form, order, issuer, &ceiling, keys, now, rng)
}

/// [`seal`] under the cardholder's own disclosure `ceiling`: a form whose policy gives any
/// field to a party beyond it is refused with [`Error::DisclosureRefused`] before anything is
/// sealed. The merchant writes the form; the cardholder decides what leaves its hands.
/// Writes version 2 (keys from K alone): [`seal_to`] writes version 3, forward secure, when
/// the recipients' KEM keys are at hand.
pub fn seal_within(
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    ceiling: &Policy,
    keys: &dyn KeySource,
    now: u64,
    rng: &mut dyn Randomness,
) -> Result<SealedOrder> {
    seal_version(FORMAT_V2, form, order, issuer, ceiling, keys, now, rng)
}

/// The recipients' current KEM public keys, by identifier, as the cardholder obtained them
/// (§19.3): what [`seal_to`] seals each part to.
#[derive(Debug, Clone, Default)]
pub struct RecipientKeys {
    keys: Vec<(PartyId, KemPublicKey)>,
}

impl RecipientKeys {
    /// No keys yet.
    pub fn new() -> RecipientKeys {
        RecipientKeys::default()
    }

    /// Sets `party`'s key (replacing an older one).
    pub fn insert(&mut self, party: PartyId, key: KemPublicKey) {
        self.keys.retain(|(p, _)| *p != party);
        self.keys.push((party, key));
    }

    /// `party`'s key, if known.
    pub fn get(&self, party: &PartyId) -> Option<&KemPublicKey> {
        self.keys.iter().find(|(p, _)| p == party).map(|(_, k)| k)
    }
}

/// Seals in format version 3 (what the cardholder's software writes): as [`seal_within`], and
/// each part sealed with HPKE (PSK mode, the PSK a purpose key of K) to its recipient's KEM
/// key in `recipients`, so that opening needs both K and the recipient's KEM private key of
/// that epoch (forward secrecy once the epoch's key is deleted). A recipient without a key in
/// `recipients` is refused with [`Error::InvalidOrder`] before anything is sealed.
#[allow(clippy::too_many_arguments)]
pub fn seal_to(
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    ceiling: &Policy,
    keys: &dyn KeySource,
    recipients: &RecipientKeys,
    now: u64,
    rng: &mut dyn Randomness,
) -> Result<SealedOrder> {
    crate::meter::measure(crate::meter::Section::Sealing, || {
        seal_any(
            FORMAT_VERSION,
            form,
            order,
            issuer,
            ceiling,
            keys,
            Some(recipients),
            now,
            rng,
        )
    })
}

/// [`seal_within`] in a given format version without KEM keys: [`FORMAT_V2`], or
/// [`FORMAT_V1`] only to reproduce the version-1 test vectors (nothing else writes version
/// 1). Version 3 needs [`seal_to`].
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn seal_version(
    version: u8,
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    ceiling: &Policy,
    keys: &dyn KeySource,
    now: u64,
    rng: &mut dyn Randomness,
) -> Result<SealedOrder> {
    crate::meter::measure(crate::meter::Section::Sealing, || {
        seal_any(version, form, order, issuer, ceiling, keys, None, now, rng)
    })
}

/// How one part is encrypted once the associated data is known.
enum PartSealer {
    /// Versions 1 and 2: XChaCha20-Poly1305 under a key of K.
    XChaCha(Key32),
    /// Version 3: the HPKE sender context and the capsule that goes on the wire.
    Hpke(hpke::Context, KemCapsule),
}

#[allow(clippy::too_many_arguments)]
fn seal_any(
    version: u8,
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    ceiling: &Policy,
    keys: &dyn KeySource,
    recipients: Option<&RecipientKeys>,
    now: u64,
    rng: &mut dyn Randomness,
) -> Result<SealedOrder> {
    check_version(version)?;
    form.policy.within(ceiling)?;
    order.validate(form, now)?;
    if keys.owner().role() != Role::Cardholder {
        return Err(Error::InvalidOrder(format!(
            "{} is not a cardholder",
            keys.owner()
        )));
    }
    if !form.accepted_issuers.contains(issuer) {
        return Err(Error::InvalidOrder(format!(
            "the merchant does not accept cards of {issuer}"
        )));
    }
    let baseline = keys.scheme() == Scheme::PlaintextBaseline;
    let header = Header {
        // The benchmark baseline has no KEM layer: it stays a version-2 bundle.
        version: if baseline { FORMAT_V2 } else { version },
        scheme: keys.scheme(),
        order_id: form.order_id.clone(),
        cardholder: keys.owner().clone(),
        merchant: form.merchant.clone(),
        issuer: issuer.clone(),
        carrier: form.carrier.clone(),
        policy_digest: form.policy.digest(),
        created_at: now,
    };
    if baseline {
        #[cfg(feature = "baseline")]
        return crate::baseline::seal(form, order, header);
        #[cfg(not(feature = "baseline"))]
        return Err(baseline_mismatch());
    }
    let kem_key = |peer: &PartyId| -> Result<&KemPublicKey> {
        recipients
            .and_then(|r| r.get(peer))
            .ok_or_else(|| Error::InvalidOrder(format!("no KEM public key of {peer} to seal to")))
    };
    if version == FORMAT_VERSION {
        for role in header.recipients() {
            let peer = header
                .party(role)
                .ok_or(Error::MissingPart(role_name(role)))?;
            kem_key(peer)?;
        }
    }
    let mut staged = Vec::new();
    for role in header.recipients() {
        let peer = header
            .party(role)
            .ok_or(Error::MissingPart(role_name(role)))?;
        let pairwise = pairwise_key(keys, peer)?;
        let mut plaintext = Zeroizing::new(
            serde_json::to_vec(&Disclosed::from_order(order, &form.policy, role))
                .map_err(|e| Error::InvalidOrder(e.to_string()))?,
        );
        if version != FORMAT_V1 {
            // JSON white space: the opener's parser skips it (§8.4).
            let padded = padded_len(plaintext.len());
            plaintext.resize(padded, b' ');
        }
        let (sealer, commit_key) = if version == FORMAT_VERSION {
            let pk = kem_key(peer)?;
            let (enc, ctx) = HpkePart::new(&pairwise, role, &header, pk.epoch)?.sender(pk, rng)?;
            let commit_key = hpke_commit_key(&ctx)?;
            let capsule = KemCapsule {
                kem: pk.kem,
                epoch: pk.epoch,
                enc,
            };
            (PartSealer::Hpke(ctx, capsule), commit_key)
        } else {
            let part_keys = PartKeys::derive(&pairwise, role, &header)?;
            (PartSealer::XChaCha(part_keys.encrypt), part_keys.commit)
        };
        let commitment = commit(&commit_key, &plaintext);
        staged.push((role, sealer, plaintext, commitment));
    }
    let commitments: Vec<Commitment> = staged
        .iter()
        .map(|(recipient, _, _, commitment)| Commitment {
            recipient: *recipient,
            commitment: *commitment,
        })
        .collect();
    let aad = associated_data(version, &header.encode(), &commitments);
    let mut parts = Vec::new();
    for (recipient, sealer, plaintext, commitment) in staged {
        let (nonce, kem, ciphertext) = match sealer {
            PartSealer::XChaCha(key) => {
                let mut nonce = [0u8; 24];
                rng.fill(&mut nonce)?;
                let ciphertext = XChaCha20Poly1305::new(key.expose().into())
                    .encrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: &plaintext,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| Error::Decrypt)?;
                (Some(nonce), None, ciphertext)
            }
            PartSealer::Hpke(mut ctx, capsule) => {
                let ciphertext = ctx.seal(&plaintext, &aad).map_err(|_| Error::Decrypt)?;
                (None, Some(capsule), ciphertext)
            }
        };
        if ciphertext.len() > MAX_PART {
            return Err(Error::InvalidOrder("the order is too large to seal".into()));
        }
        parts.push(SealedPart {
            recipient,
            nonce,
            kem,
            commitment,
            ciphertext,
        });
    }
    Ok(SealedOrder { header, parts })
}

/// A party that receives a part; its marker type fixes which view it can open.
pub trait Recipient {
    /// The party's role.
    const ROLE: Role;
}

/// Marker: the merchant's part.
#[derive(Debug)]
pub enum ForMerchant {}
/// Marker: the issuer's part.
#[derive(Debug)]
pub enum ForIssuer {}
/// Marker: the carrier's part.
#[derive(Debug)]
pub enum ForCarrier {}

impl Recipient for ForMerchant {
    const ROLE: Role = Role::Merchant;
}
impl Recipient for ForIssuer {
    const ROLE: Role = Role::Issuer;
}
impl Recipient for ForCarrier {
    const ROLE: Role = Role::Carrier;
}

/// One line as disclosed: only the policy's fields are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineView {
    /// Product number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_number: Option<String>,
    /// Product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    /// Line amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
}

/// The plaintext of a part: the order's fields that the policy gives one party, and no more.
/// Serialized as a JSON object; absent fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosed {
    /// Cardholder's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardholder_name: Option<String>,
    /// Cardholder's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardholder_address: Option<String>,
    /// Telephone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
    /// FAX ("" when the cardholder has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fax: Option<String>,
    /// Card number and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Lines, with the line fields the policy discloses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineView>>,
    /// Total in minor units (with [`Field::Amount`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// Currency (with [`Field::Amount`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Payment method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    /// Delivery destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
}

const LINE_FIELDS: [Field; 4] = [
    Field::ProductName,
    Field::Quantity,
    Field::ProductNumber,
    Field::Amount,
];

impl Disclosed {
    /// The part of `order` that `policy` gives `role`.
    pub fn from_order(order: &Order, policy: &Policy, role: Role) -> Disclosed {
        let has = |f| policy.receives(role, f);
        let lines = LINE_FIELDS.iter().any(|f| has(*f)).then(|| {
            order
                .lines
                .iter()
                .map(|l| LineView {
                    product_number: has(Field::ProductNumber).then(|| l.product_number.clone()),
                    product_name: has(Field::ProductName).then(|| l.product_name.clone()),
                    quantity: has(Field::Quantity).then_some(l.quantity),
                    amount: has(Field::Amount).then_some(l.amount),
                })
                .collect()
        });
        Disclosed {
            cardholder_name: has(Field::CardholderName).then(|| order.cardholder_name.clone()),
            cardholder_address: has(Field::CardholderAddress)
                .then(|| order.cardholder_address.clone()),
            telephone: has(Field::Telephone).then(|| order.telephone.clone()),
            fax: has(Field::Fax).then(|| order.fax.clone().unwrap_or_default()),
            card: has(Field::Card).then(|| order.card.clone()),
            lines,
            amount: has(Field::Amount).then_some(order.amount),
            currency: has(Field::Amount).then(|| order.currency.clone()),
            payment_method: has(Field::PaymentMethod).then_some(order.payment_method),
            destination: if has(Field::DeliveryDestination) {
                order.destination.clone()
            } else {
                None
            },
        }
    }

    /// The fields present, in [`Field::ALL`] order, or `None` if a field is present only in
    /// part (some lines have it and others not, an amount without its currency, …).
    pub fn present(&self) -> Option<Vec<Field>> {
        let lines = self.lines.as_deref().unwrap_or_default();
        let all = |get: fn(&LineView) -> bool| !lines.is_empty() && lines.iter().all(get);
        let some = |get: fn(&LineView) -> bool| lines.iter().any(get);
        let line_fields: [fn(&LineView) -> bool; 4] = [
            |l| l.product_number.is_some(),
            |l| l.product_name.is_some(),
            |l| l.quantity.is_some(),
            |l| l.amount.is_some(),
        ];
        let consistent = line_fields.iter().all(|&get| all(get) == some(get))
            && self.amount.is_some() == self.currency.is_some()
            && self
                .lines
                .as_ref()
                .is_none_or(|l| !l.is_empty() && all(line_fields[3]) == self.amount.is_some());
        if !consistent {
            return None;
        }
        let in_lines = all;
        Some(
            Field::ALL
                .into_iter()
                .filter(|f| match f {
                    Field::CardholderName => self.cardholder_name.is_some(),
                    Field::CardholderAddress => self.cardholder_address.is_some(),
                    Field::Telephone => self.telephone.is_some(),
                    Field::Fax => self.fax.is_some(),
                    Field::Card => self.card.is_some(),
                    Field::ProductName => in_lines(|l| l.product_name.is_some()),
                    Field::Quantity => in_lines(|l| l.quantity.is_some()),
                    Field::ProductNumber => in_lines(|l| l.product_number.is_some()),
                    Field::Amount => self.amount.is_some(),
                    Field::PaymentMethod => self.payment_method.is_some(),
                    Field::DeliveryDestination => self.destination.is_some(),
                })
                .collect(),
        )
    }
}

/// An opened part: the header and exactly the fields the policy gives party `R`.
#[derive(Debug, Clone)]
pub struct View<R: Recipient> {
    /// The header of the order it came from.
    pub header: Header,
    /// The disclosed fields.
    pub fields: Disclosed,
    recipient: PhantomData<R>,
}

impl<R: Recipient> View<R> {
    /// The fields, for code that handles any party's view.
    pub fn disclosed(&self) -> &Disclosed {
        &self.fields
    }
}

pub(crate) mod b64_array {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let v = B64
            .decode(s)
            .map_err(|_| D::Error::custom("invalid base64url"))?;
        v.try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes")))
    }
}

pub(crate) mod b64_opt_array {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&B64.encode(v)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        let s = String::deserialize(d)?;
        let v = B64
            .decode(s)
            .map_err(|_| D::Error::custom("invalid base64url"))?;
        v.try_into()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected {N} bytes")))
    }
}

pub(crate) mod b64_vec {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s)
            .map_err(|_| D::Error::custom("invalid base64url"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blom::{Master, PersonalKey};
    use crate::kem::KemSecretKey;
    use crate::order::tests::{CARD, form, order};
    use crate::rand::SeededRandom;

    const NOW: u64 = 1_800_000_000;

    struct World {
        cardholder: PersonalKey,
        merchant: PersonalKey,
        issuer: PersonalKey,
        carrier: PersonalKey,
        other_merchant: PersonalKey,
    }

    fn world() -> World {
        let master = Master::generate(8, &mut SeededRandom::new(b"w")).expect("master");
        let key = |s: &str| master.personal_key(&PartyId::parse(s).expect("id"));
        World {
            cardholder: key("cardholder:hanako@mail.example"),
            merchant: key("merchant:shop.example"),
            issuer: key("issuer:bank.example"),
            carrier: key("carrier:post.example"),
            other_merchant: key("merchant:evil.example"),
        }
    }

    fn sealed(w: &World, carrier: bool, seed: &[u8]) -> (OrderForm, SealedOrder) {
        let f = form(carrier);
        let o = order(&f);
        let s = seal(
            &f,
            &o,
            &f.accepted_issuers[0],
            &w.cardholder,
            NOW,
            &mut SeededRandom::new(seed),
        )
        .expect("seal");
        (f, s)
    }

    #[test]
    fn each_party_opens_exactly_its_fields() {
        let w = world();
        let (f, s) = sealed(&w, true, b"s");
        let p = &f.policy;
        let m: View<ForMerchant> = s.open(p, &w.merchant).expect("merchant");
        let i: View<ForIssuer> = s.open(p, &w.issuer).expect("issuer");
        let c: View<ForCarrier> = s.open(p, &w.carrier).expect("carrier");
        assert!(m.fields.card.is_none() && m.fields.destination.is_none());
        assert_eq!(m.fields.amount, Some(3200));
        assert_eq!(
            i.fields.card.as_ref().map(|c| c.number.expose()),
            Some(CARD)
        );
        assert!(i.fields.destination.is_none());
        assert!(
            i.fields
                .lines
                .as_ref()
                .is_some_and(|l| l[0].product_name.is_none())
        );
        let d = c.fields.destination.as_ref().expect("destination");
        assert_eq!(d.address.expose(), "2-2 Umeda, Osaka");
        assert!(c.fields.card.is_none() && c.fields.lines.is_none() && c.fields.amount.is_none());
        // No plaintext of a secret appears anywhere in the wire forms.
        for wire in [
            String::from_utf8_lossy(&s.encode()).into_owned(),
            s.to_json(),
        ] {
            assert!(!wire.contains(CARD) && !wire.contains("Umeda"));
        }
    }

    #[test]
    fn works_without_a_carrier() {
        let w = world();
        let (f, s) = sealed(&w, false, b"s");
        assert_eq!(s.parts.len(), 2);
        assert!(s.open::<ForIssuer>(&f.policy, &w.issuer).is_ok());
        assert!(matches!(
            s.open::<ForCarrier>(&f.policy, &w.carrier),
            Err(Error::MissingPart(_))
        ));
    }

    #[test]
    fn wire_forms_round_trip() {
        let w = world();
        let (f, s) = sealed(&w, true, b"s");
        assert_eq!(SealedOrder::decode(&s.encode()).expect("binary"), s);
        assert_eq!(SealedOrder::from_json(&s.to_json()).expect("json"), s);
        let fwd = s.forward(Role::Issuer).expect("forward");
        let back = ForwardedPart::decode(&fwd.encode()).expect("forwarded binary");
        assert_eq!(back, fwd);
        let json = serde_json::to_string(&fwd).expect("json");
        let back: ForwardedPart = serde_json::from_str(&json).expect("forwarded json");
        assert!(back.open::<ForIssuer>(&f.policy, &w.issuer).is_ok());
    }

    #[test]
    fn every_byte_flip_and_truncation_is_rejected() {
        let w = world();
        let (f, s) = sealed(&w, true, b"s");
        let bytes = s.encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let opened = SealedOrder::decode(&bad).and_then(|d| {
                d.open::<ForMerchant>(&f.policy, &w.merchant)?;
                d.open::<ForIssuer>(&f.policy, &w.issuer)?;
                d.open::<ForCarrier>(&f.policy, &w.carrier)
            });
            assert!(opened.is_err(), "flip at byte {i} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(SealedOrder::decode(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            SealedOrder::decode(&long).err(),
            Some(Error::TrailingBytes("sealed order"))
        );
    }

    #[test]
    fn parts_cannot_be_swapped_between_orders_or_opened_by_others() {
        let w = world();
        let (f, a) = sealed(&w, true, b"a");
        let mut f2 = form(true);
        f2.order_id = "ord-2".into();
        let o2 = order(&f2);
        let b = seal(
            &f2,
            &o2,
            &f2.accepted_issuers[0],
            &w.cardholder,
            NOW,
            &mut SeededRandom::new(b"b"),
        )
        .expect("seal");
        // Two orders of the same cardholder: splice b's issuer part into a.
        let mut spliced = a.clone();
        spliced.parts[1] = b.parts[1].clone();
        assert_eq!(
            spliced.open::<ForIssuer>(&f.policy, &w.issuer).err(),
            Some(Error::Decrypt)
        );
        // A forwarded part with another order's commitment for the merchant.
        let mut fwd = a.forward(Role::Issuer).expect("forward");
        fwd.others[0].commitment = b.parts[0].commitment;
        assert_eq!(
            fwd.open::<ForIssuer>(&f.policy, &w.issuer).err(),
            Some(Error::Decrypt)
        );
        // A different header (altered amount is inside; alter the time instead).
        let mut moved = a.clone();
        moved.header.created_at += 1;
        assert_eq!(
            moved.open::<ForMerchant>(&f.policy, &w.merchant).err(),
            Some(Error::Decrypt)
        );
        // A fake merchant holding its own key but claiming the real merchant's part.
        assert!(a.open::<ForMerchant>(&f.policy, &w.other_merchant).is_err());
        // The carrier trying the issuer's part: wrong recipient.
        let fwd = a.forward(Role::Issuer).expect("forward");
        assert!(fwd.open::<ForCarrier>(&f.policy, &w.carrier).is_err());
        // Another policy than the one sealed under.
        let mut other = f.policy.to_toml();
        other = other.replace("fax = [\"merchant\", \"issuer\", \"carrier\"]", "fax = []");
        let p2 = Policy::from_toml(&other).expect("policy");
        assert!(matches!(
            a.open::<ForMerchant>(&p2, &w.merchant),
            Err(Error::HeaderMismatch(_))
        ));
    }

    #[test]
    fn parts_are_padded_so_card_and_address_lengths_do_not_show() {
        let w = world();
        let f = form(true);
        let issuer = &f.accepted_issuers[0];
        let sealed_with = |card: &str, address: &str| {
            let mut o = order(&f);
            o.card.number = card.into();
            if let Some(d) = o.destination.as_mut() {
                d.address = address.into();
            }
            seal(
                &f,
                &o,
                issuer,
                &w.cardholder,
                NOW,
                &mut SeededRandom::new(b"p"),
            )
            .expect("seal")
        };
        let amex = sealed_with("378282246310005", "1 A St");
        let long = sealed_with(
            "6011000000000000001",
            "Flat 12, 3-4-5 Nishi-Shinjuku, Shinjuku-ku, Tokyo 160-0023",
        );
        let lens = |s: &SealedOrder| {
            s.parts
                .iter()
                .map(|p| p.ciphertext.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(lens(&amex), lens(&long));
        assert_eq!(amex.encode().len(), long.encode().len());
        for len in lens(&amex) {
            assert_eq!(padded_len(len - 16), len - 16, "a bucket, plus the tag");
        }
        let i: View<ForIssuer> = long.open(&f.policy, &w.issuer).expect("issuer");
        assert_eq!(
            i.fields.card.as_ref().map(|c| c.number.expose()),
            Some("6011000000000000001")
        );
        assert_eq!(
            (
                padded_len(0),
                padded_len(257),
                padded_len(4096),
                padded_len(4097)
            ),
            (256, 512, 4096, 8192)
        );
    }

    #[test]
    fn version_1_still_opens_and_is_no_longer_written() {
        let w = world();
        let f = form(true);
        let o = order(&f);
        let issuer = &f.accepted_issuers[0];
        let ceiling = Policy::patent_default();
        let v1 = seal_version(
            FORMAT_V1,
            &f,
            &o,
            issuer,
            &ceiling,
            &w.cardholder,
            NOW,
            &mut SeededRandom::new(b"1"),
        )
        .expect("v1");
        let (_, v2) = sealed(&w, true, b"1");
        assert_eq!((v1.header.version, v2.header.version), (1, 2));
        // Version 1 is unpadded (its weakness: lengths show) and keyed without purpose keys.
        assert_ne!(v1.parts[1].ciphertext.len(), v2.parts[1].ciphertext.len());
        let back = SealedOrder::decode(&v1.encode()).expect("decode v1");
        let i: View<ForIssuer> = back.open(&f.policy, &w.issuer).expect("v1 opens");
        assert_eq!(
            i.fields.card.as_ref().map(|c| c.number.expose()),
            Some(CARD)
        );
        // A v1 part relabelled as v2 (or the reverse) does not open: the header digest and
        // the keys differ.
        let mut relabelled = v1.clone();
        relabelled.header.version = 2;
        assert_eq!(
            relabelled.open::<ForIssuer>(&f.policy, &w.issuer).err(),
            Some(Error::Decrypt)
        );
    }

    /// The three recipients' KEM rings (epoch 1) and their public keys.
    fn rings(w: &World, seed: &[u8]) -> ([KemRing; 3], RecipientKeys) {
        let mut rng = SeededRandom::new(seed);
        let mut recipients = RecipientKeys::new();
        let mut ring = |party: &PersonalKey| {
            let k = KemSecretKey::generate(1, &mut rng).expect("kem key");
            recipients.insert(party.owner().clone(), k.public().clone());
            KemRing::new(vec![k]).expect("ring")
        };
        let r = [ring(&w.merchant), ring(&w.issuer), ring(&w.carrier)];
        (r, recipients)
    }

    fn sealed_v3(w: &World, recipients: &RecipientKeys, seed: &[u8]) -> (OrderForm, SealedOrder) {
        let f = form(true);
        let o = order(&f);
        let s = seal_to(
            &f,
            &o,
            &f.accepted_issuers[0],
            &Policy::patent_default(),
            &w.cardholder,
            recipients,
            NOW,
            &mut SeededRandom::new(seed),
        )
        .expect("seal v3");
        (f, s)
    }

    #[test]
    fn version_3_opens_with_k_and_the_kem_key_and_with_neither_alone() {
        let w = world();
        let ([m, i, c], recipients) = rings(&w, b"kem");
        let (f, s) = sealed_v3(&w, &recipients, b"v3");
        assert_eq!(s.header.version, FORMAT_VERSION);
        let p = &f.policy;
        let view: View<ForIssuer> = s.open_with_ring(p, &w.issuer, &i).expect("issuer");
        assert_eq!(
            view.fields.card.as_ref().map(|c| c.number.expose()),
            Some(CARD)
        );
        assert!(s.open_with_ring::<ForMerchant>(p, &w.merchant, &m).is_ok());
        assert!(s.open_with_ring::<ForCarrier>(p, &w.carrier, &c).is_ok());
        // Wire forms round trip.
        assert_eq!(SealedOrder::decode(&s.encode()).expect("binary"), s);
        assert_eq!(SealedOrder::from_json(&s.to_json()).expect("json"), s);
        let fwd = s.forward(Role::Issuer).expect("forward");
        assert_eq!(ForwardedPart::decode(&fwd.encode()).expect("fwd"), fwd);
        assert_eq!(
            ForwardedPart::from_json(&fwd.to_json()).expect("fwd json"),
            fwd
        );
        // K alone (no ring, or K with another party's KEM key of the same epoch) opens nothing.
        assert_eq!(
            s.open::<ForIssuer>(p, &w.issuer).err(),
            Some(Error::KemKeyUnavailable { epoch: 1 })
        );
        assert_eq!(
            s.open_with_ring::<ForIssuer>(p, &w.issuer, &c).err(),
            Some(Error::Decrypt)
        );
        // The KEM key alone, with a wrong pairwise key: nothing.
        let wrong = pairwise_key(&w.other_merchant, &s.header.cardholder).expect("key");
        assert_eq!(
            fwd.open_with_keys::<ForIssuer>(p, &wrong, Some(&i)).err(),
            Some(Error::Decrypt)
        );
        // A KEM capsule naming another epoch: its key is not held, or (with a key under that
        // epoch) the PSK id and the KEM secret differ.
        let mut other_epoch = fwd.clone();
        if let Some(k) = other_epoch.part.kem.as_mut() {
            k.epoch = 2;
        }
        assert_eq!(
            other_epoch
                .open_with_ring::<ForIssuer>(p, &w.issuer, &i)
                .err(),
            Some(Error::KemKeyUnavailable { epoch: 2 })
        );
        let mut i2 = i.clone();
        i2.insert(KemSecretKey::generate(2, &mut SeededRandom::new(b"e2")).expect("e2"))
            .expect("insert");
        assert_eq!(
            other_epoch
                .open_with_ring::<ForIssuer>(p, &w.issuer, &i2)
                .err(),
            Some(Error::Decrypt)
        );
        // The commitment does not let a holder of K alone test guesses: it is keyed by the
        // HPKE context, so re-deriving a version-2 style commitment key from K gives another.
        let v2_keys = PartKeys::derive(
            &pairwise_key(&w.issuer, &s.header.cardholder).expect("k"),
            Role::Issuer,
            &s.header,
        )
        .expect("keys");
        let opened = view.fields.clone();
        let mut plain = serde_json::to_vec(&opened).expect("json");
        plain.resize(padded_len(plain.len()), b' ');
        assert_ne!(commit(&v2_keys.commit, &plain), s.parts[1].commitment);
    }

    #[test]
    fn a_version_3_part_is_lost_for_good_once_its_epoch_key_is_deleted() {
        let w = world();
        let ([_, mut i, _], recipients) = rings(&w, b"kem");
        let (f, s) = sealed_v3(&w, &recipients, b"v3");
        // Rotation: epoch 2 becomes current; epoch 1 still opens within the grace period.
        i.insert(KemSecretKey::generate(2, &mut SeededRandom::new(b"e2")).expect("e2"))
            .expect("insert");
        assert!(
            s.open_with_ring::<ForIssuer>(&f.policy, &w.issuer, &i)
                .is_ok()
        );
        // After the grace period epoch 1's private key is deleted: the captured part stays
        // shut although K (the issuer's personal key) is still at hand.
        assert!(i.remove(1));
        assert_eq!(
            s.open_with_ring::<ForIssuer>(&f.policy, &w.issuer, &i)
                .err(),
            Some(Error::KemKeyUnavailable { epoch: 1 })
        );
        // Even a key of the new epoch forced under the old number does not open it.
        let forced = KemSecretKey::from_bytes(
            KemId::X25519HkdfSha256,
            1,
            i.current().expect("current").expose_bytes(),
        )
        .expect("forced");
        let ring = KemRing::new(vec![forced]).expect("ring");
        assert_eq!(
            s.open_with_ring::<ForIssuer>(&f.policy, &w.issuer, &ring)
                .err(),
            Some(Error::Decrypt)
        );
    }

    #[test]
    fn every_byte_flip_and_truncation_of_version_3_is_rejected() {
        let w = world();
        let ([m, i, c], recipients) = rings(&w, b"kem");
        let (f, s) = sealed_v3(&w, &recipients, b"v3");
        let bytes = s.encode();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            let opened = SealedOrder::decode(&bad).and_then(|d| {
                d.open_with_ring::<ForMerchant>(&f.policy, &w.merchant, &m)?;
                d.open_with_ring::<ForIssuer>(&f.policy, &w.issuer, &i)?;
                d.open_with_ring::<ForCarrier>(&f.policy, &w.carrier, &c)
            });
            assert!(opened.is_err(), "flip at byte {at} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(SealedOrder::decode(&bytes[..cut]).is_err());
        }
        // A version-3 bundle relabelled as version 2 (or a v2 one as v3) does not decode.
        let mut relabelled = bytes.clone();
        relabelled[4] = FORMAT_V2;
        assert!(SealedOrder::decode(&relabelled).is_err());
        let (_, v2) = sealed(&w, true, b"s");
        let mut up = v2.encode();
        up[4] = FORMAT_VERSION;
        assert!(SealedOrder::decode(&up).is_err());
        // A JSON part with both a nonce and a KEM capsule is refused.
        let mut both = s.clone();
        both.parts[0].nonce = Some([0; 24]);
        assert!(SealedOrder::from_json(&both.to_json()).is_err());
    }

    #[test]
    fn version_3_parts_have_equal_lengths_for_15_and_19_digit_cards() {
        let w = world();
        let (_, recipients) = rings(&w, b"kem");
        let f = form(true);
        let with_card = |card: &str| {
            let mut o = order(&f);
            o.card.number = card.into();
            seal_to(
                &f,
                &o,
                &f.accepted_issuers[0],
                &Policy::patent_default(),
                &w.cardholder,
                &recipients,
                NOW,
                &mut SeededRandom::new(b"p"),
            )
            .expect("seal")
        };
        let (a, b) = (
            with_card("378282246310005"),
            with_card("6011000000000000001"),
        );
        assert_eq!(a.encode().len(), b.encode().len());
        assert_eq!(a.parts[1].ciphertext.len(), 512 + 16);
    }

    #[test]
    fn sealing_version_3_needs_every_recipients_kem_key() {
        let w = world();
        let (_, full) = rings(&w, b"kem");
        let mut partial = RecipientKeys::new();
        for id in ["merchant:shop.example", "issuer:bank.example"] {
            let id = PartyId::parse(id).expect("id");
            partial.insert(id.clone(), full.get(&id).expect("key").clone());
        }
        let f = form(true);
        let o = order(&f);
        let err = seal_to(
            &f,
            &o,
            &f.accepted_issuers[0],
            &Policy::patent_default(),
            &w.cardholder,
            &partial,
            NOW,
            &mut SeededRandom::new(b"x"),
        )
        .err();
        assert!(matches!(err, Some(Error::InvalidOrder(m)) if m.contains("carrier:post.example")));
    }

    #[test]
    fn unknown_version_is_refused() {
        let w = world();
        let (_, s) = sealed(&w, true, b"s");
        let mut bytes = s.encode();
        bytes[4] = 9;
        assert!(matches!(
            SealedOrder::decode(&bytes),
            Err(Error::UnsupportedVersion { found: 9, .. })
        ));
    }

    #[test]
    fn a_custom_policy_changes_the_views() {
        let w = world();
        let mut f = form(true);
        let toml = f.policy.to_toml().replace(
            "delivery_destination = [\"carrier\"]",
            "delivery_destination = [\"merchant\", \"carrier\"]",
        );
        f.policy = Policy::from_toml(&toml).expect("policy");
        let o = order(&f);
        let issuer = &f.accepted_issuers[0];
        let mut rng = SeededRandom::new(b"c");
        // The merchant asked for the destination: refused under the cardholder's default
        // ceiling (claim 2), nothing sealed ...
        assert_eq!(
            seal(&f, &o, issuer, &w.cardholder, NOW, &mut rng).err(),
            Some(Error::DisclosureRefused {
                field: "delivery_destination",
                party: Role::Merchant
            })
        );
        // ... and sealed once the cardholder widens its ceiling knowingly.
        let ceiling = Policy::patent_default()
            .widened(Field::DeliveryDestination, Role::Merchant)
            .expect("wider");
        let s = seal_within(&f, &o, issuer, &ceiling, &w.cardholder, NOW, &mut rng).expect("seal");
        let m: View<ForMerchant> = s.open(&f.policy, &w.merchant).expect("merchant");
        assert!(m.fields.destination.is_some());
    }

    #[cfg(feature = "baseline")]
    #[test]
    fn the_plaintext_baseline_carries_plaintext_and_never_mixes_with_real_keys() {
        let w = world();
        let f = form(true);
        let o = order(&f);
        let base =
            |s: &str| crate::baseline::PlaintextBaseline::new(PartyId::parse(s).expect("id"));
        let s = seal(
            &f,
            &o,
            &f.accepted_issuers[0],
            &base("cardholder:hanako@mail.example"),
            NOW,
            &mut SeededRandom::new(b"b"),
        )
        .expect("seal");
        assert_eq!(s.header.scheme, Scheme::PlaintextBaseline);
        assert!(
            s.to_json().contains("Umeda") || String::from_utf8_lossy(&s.encode()).contains("Umeda")
        );
        assert_eq!(SealedOrder::decode(&s.encode()).expect("binary"), s);
        let i: View<ForIssuer> = s
            .open(&f.policy, &base("issuer:bank.example"))
            .expect("issuer");
        assert_eq!(
            i.fields.card.as_ref().map(|c| c.number.expose()),
            Some(CARD)
        );
        let c: View<ForCarrier> = s
            .open(&f.policy, &base("carrier:post.example"))
            .expect("carrier");
        assert!(c.fields.destination.is_some() && c.fields.card.is_none());
        // Real keys refuse a baseline order, also through the cached-key path.
        assert!(matches!(
            s.open::<ForMerchant>(&f.policy, &w.merchant),
            Err(Error::HeaderMismatch(_))
        ));
        let real = pairwise_key(&w.merchant, &s.header.cardholder).expect("key");
        assert!(matches!(
            s.forward(Role::Merchant)
                .expect("forward")
                .open_with_key::<ForMerchant>(&f.policy, &real),
            Err(Error::HeaderMismatch(_))
        ));
        // A baseline key refuses a sealed order.
        let (_, sealed) = sealed(&w, true, b"s");
        assert!(
            sealed
                .open::<ForMerchant>(&f.policy, &base("merchant:shop.example"))
                .is_err()
        );
        // The unkeyed commitment still binds the part to its header.
        let mut moved = s.clone();
        moved.header.created_at += 1;
        assert_eq!(
            moved
                .open::<ForMerchant>(&f.policy, &base("merchant:shop.example"))
                .err(),
            Some(Error::Decrypt)
        );
    }
}
