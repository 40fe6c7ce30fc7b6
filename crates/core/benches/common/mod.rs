//! Fixtures shared by the benchmarks: a Blom deployment at a given k, an order to seal, and
//! the baselines users pick today (HPKE base mode, RSA-OAEP-2048) on the same payload size.
// Each bench binary uses a part of this module.
#![allow(dead_code)]

pub mod timing;

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Kem as _, OpModeR, OpModeS};
use rsa::sha2::Sha256;
use warifu_core::blom::{Master, PersonalKey};
use warifu_core::field::Fe;
use warifu_core::kem::{KemRing, KemSecretKey};
use warifu_core::keycache::CachedKeys;
use warifu_core::keysource::{PairwiseKey, pairwise_key};
use warifu_core::order::{Card, Destination};
use warifu_core::order::{CatalogItem, Expiry, Order, OrderForm, PaymentMethod};
use warifu_core::policy::Policy;
use warifu_core::rand::OsRandom;
use warifu_core::sealed::{
    ForCarrier, ForIssuer, ForMerchant, ForwardedPart, RecipientKeys, SealedOrder, View, seal,
    seal_to,
};
use warifu_core::{PartyId, Role};

/// The collusion bounds benchmarked: 64, 256 and 1024 (the default), without duplicates.
pub fn ks() -> Vec<u32> {
    let mut ks = vec![64, 256, 1024, warifu_core::blom::DEFAULT_K];
    ks.sort_unstable();
    ks.dedup();
    ks
}

fn id(s: &str) -> PartyId {
    PartyId::parse(s).expect("a valid identifier")
}

/// A deployment at one k: the key center's master, the cardholder's and the issuer's
/// personal keys, and one sealed order whose issuer part is forwarded.
pub struct Fixture {
    /// The collusion bound.
    pub k: u32,
    master: Master,
    cardholder: PersonalKey,
    /// The same key behind a pairwise-key cache that has met the three recipients already.
    cardholder_cached: CachedKeys<PersonalKey>,
    issuer: PersonalKey,
    merchant_id: PartyId,
    issuer_id: PartyId,
    newcomer: PartyId,
    form: OrderForm,
    order: Order,
    now: u64,
    forwarded: ForwardedPart,
    issuer_key: PairwiseKey,
}

impl Fixture {
    /// Generates a master for `k` (with the OS CSPRNG), issues the keys and seals one order.
    pub fn new(k: u32) -> Fixture {
        let master = Master::generate(k, &mut OsRandom).expect("master");
        let cardholder_id = id("cardholder:hanako@mail.example");
        let cardholder = master.personal_key(&cardholder_id);
        let cardholder_cached = CachedKeys::new(master.personal_key(&cardholder_id), 16);
        let merchant_id = id("merchant:shop.example");
        let issuer_id = id("issuer:bank.example");
        let issuer = master.personal_key(&issuer_id);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let form = OrderForm {
            order_id: "ord-bench-1".into(),
            merchant: merchant_id.clone(),
            carrier: Some(id("carrier:post.example")),
            accepted_issuers: vec![issuer_id.clone()],
            currency: "JPY".into(),
            catalog: vec![
                CatalogItem {
                    product_number: "P-1".into(),
                    name: "Sencha, 100 g".into(),
                    unit_price: 1200,
                    ships: true,
                },
                CatalogItem {
                    product_number: "P-2".into(),
                    name: "Tea cup".into(),
                    unit_price: 800,
                    ships: true,
                },
            ],
            expires_at: now + 86_400,
            policy: Policy::patent_default(),
        };
        let (lines, amount) =
            Order::lines_from(&form, &[("P-1", 2), ("P-2", 1)]).expect("order lines");
        let order = Order {
            cardholder_name: "Hanako Yamada".into(),
            cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001".into(),
            telephone: "+81-3-0000-0000".into(),
            fax: Some("+81-3-0000-0001".into()),
            card: Card {
                number: "4111111111111111".into(),
                expiry: Expiry {
                    year: 2099,
                    month: 12,
                },
            },
            lines,
            amount,
            currency: "JPY".into(),
            payment_method: PaymentMethod::Installments { count: 3 },
            destination: Some(Destination {
                addressee: "Taro Suzuki".into(),
                address: "2-2 Umeda, Kita-ku, Osaka 530-0001".into(),
            }),
        };
        let forwarded = seal_order(&form, &order, &issuer_id, &cardholder, now)
            .forward(Role::Issuer)
            .expect("the issuer's part");
        let issuer_key = pairwise_key(&issuer, &forwarded.header.cardholder).expect("key");
        let fixture = Fixture {
            k,
            master,
            cardholder,
            cardholder_cached,
            issuer,
            merchant_id,
            issuer_id,
            newcomer: id("merchant:newcomer.example"),
            form,
            order,
            now,
            forwarded,
            issuer_key,
        };
        // Warm the cache: every recipient met once.
        fixture.seal_cached();
        let view = fixture.open();
        assert!(view.disclosed().card.is_some(), "the issuer sees the card");
        fixture
    }

    /// The key center's master.
    pub fn master(&self) -> &Master {
        &self.master
    }

    /// The issuer's personal key and the cardholder it opens orders from.
    pub fn issuer_and_peer(&self) -> (&PersonalKey, &PartyId) {
        (&self.issuer, &self.forwarded.header.cardholder)
    }

    /// The order form, the order and the sealing time.
    pub fn parts(&self) -> (&OrderForm, &Order, u64) {
        (&self.form, &self.order, self.now)
    }

    /// The cardholder derives its pairwise key with the merchant.
    pub fn derive(&self) -> PairwiseKey {
        pairwise_key(black_box(&self.cardholder), black_box(&self.merchant_id)).expect("key")
    }

    /// The cardholder seals a 3-part order (merchant, issuer, carrier) with the OS CSPRNG.
    pub fn seal(&self) -> SealedOrder {
        seal_order(
            black_box(&self.form),
            black_box(&self.order),
            &self.issuer_id,
            &self.cardholder,
            self.now,
        )
    }

    /// The same seal with the three pairwise keys' Blom secrets in a warm
    /// [`CachedKeys`] (a cardholder ordering again from a merchant it knows).
    pub fn seal_cached(&self) -> SealedOrder {
        seal(
            black_box(&self.form),
            black_box(&self.order),
            &self.issuer_id,
            &self.cardholder_cached,
            self.now,
            &mut OsRandom,
        )
        .expect("seal")
    }

    /// The issuer opens its forwarded part, deriving the pairwise key first.
    pub fn open(&self) -> View<ForIssuer> {
        black_box(&self.forwarded)
            .open::<ForIssuer>(&self.form.policy, &self.issuer)
            .expect("open")
    }

    /// The issuer opens its forwarded part with a pairwise key it has cached.
    pub fn open_cached(&self) -> View<ForIssuer> {
        black_box(&self.forwarded)
            .open_with_key::<ForIssuer>(&self.form.policy, &self.issuer_key)
            .expect("open")
    }

    /// The key center issues one personal key.
    pub fn issue(&self) -> PersonalKey {
        self.master.personal_key(black_box(&self.newcomer))
    }

    /// Bytes of the issuer part's plaintext (ciphertext minus the 16-byte tag).
    pub fn payload_len(&self) -> usize {
        self.forwarded.part.ciphertext.len() - 16
    }

    /// The issuer part's associated data is about this long; used as the baselines' AAD.
    pub fn header_bytes(&self) -> Vec<u8> {
        self.forwarded.header.encode()
    }
}

/// One whole order at the default deployment, sealed and opened by all three recipients, in
/// format version 2 (keys from K) and version 3 (HPKE to each recipient's KEM key, §19), with
/// every pairwise key cached on both sides (a cardholder ordering again from parties it knows).
pub struct PerOrder<'a> {
    f: &'a Fixture,
    /// The recipients' cached pairwise keys with the cardholder: merchant, issuer, carrier.
    keys: [PairwiseKey; 3],
    rings: [KemRing; 3],
    recipients: RecipientKeys,
}

impl<'a> PerOrder<'a> {
    /// The recipients' keys and KEM rings (one epoch each).
    pub fn new(f: &'a Fixture) -> PerOrder<'a> {
        let carrier = id("carrier:post.example");
        let ids = [f.merchant_id.clone(), f.issuer_id.clone(), carrier];
        let cardholder = &f.forwarded.header.cardholder;
        let mut recipients = RecipientKeys::new();
        let keys = ids
            .clone()
            .map(|p| pairwise_key(&f.master.personal_key(&p), cardholder).expect("key"));
        let rings = ids.map(|p| {
            let k = KemSecretKey::generate(1, &mut OsRandom).expect("kem key");
            recipients.insert(p, k.public().clone());
            KemRing::new(vec![k]).expect("ring")
        });
        let o = PerOrder {
            f,
            keys,
            rings,
            recipients,
        };
        o.v2();
        o.v3();
        o
    }

    /// Version 3: the cardholder seals with its pairwise keys cached.
    pub fn seal_v3(&self) -> SealedOrder {
        let f = self.f;
        seal_to(
            black_box(&f.form),
            black_box(&f.order),
            &f.issuer_id,
            &Policy::patent_default(),
            &f.cardholder_cached,
            &self.recipients,
            f.now,
            &mut OsRandom,
        )
        .expect("seal v3")
    }

    /// The issuer's part of a fresh version-3 order, forwarded.
    pub fn issuer_part_v3(&self) -> ForwardedPart {
        self.seal_v3()
            .forward(Role::Issuer)
            .expect("the issuer's part")
    }

    /// The issuer opens a forwarded version-3 part with its cached pairwise key and KEM ring.
    pub fn open_issuer_v3(&self, part: &ForwardedPart) -> View<ForIssuer> {
        black_box(part)
            .open_with_keys::<ForIssuer>(&self.f.form.policy, &self.keys[1], Some(&self.rings[1]))
            .expect("open v3")
    }

    /// Seal, then each recipient opens its part (forwarded) with its cached pairwise key and,
    /// for version 3, its KEM ring.
    fn open_all(&self, s: &SealedOrder, v3: bool) {
        let policy = &self.f.form.policy;
        let ring = |i: usize| v3.then_some(&self.rings[i]);
        let fwd = |r| s.forward(r).expect("forward");
        black_box(
            fwd(Role::Merchant)
                .open_with_keys::<ForMerchant>(policy, &self.keys[0], ring(0))
                .expect("merchant"),
        );
        black_box(
            fwd(Role::Issuer)
                .open_with_keys::<ForIssuer>(policy, &self.keys[1], ring(1))
                .expect("issuer"),
        );
        black_box(
            fwd(Role::Carrier)
                .open_with_keys::<ForCarrier>(policy, &self.keys[2], ring(2))
                .expect("carrier"),
        );
    }

    /// A whole version-2 order: seal (cached keys) and the three opens.
    pub fn v2(&self) {
        self.open_all(&self.f.seal_cached(), false);
    }

    /// A whole version-3 order: seal (cached keys) and the three opens.
    pub fn v3(&self) {
        self.open_all(&self.seal_v3(), true);
    }
}

fn seal_order(
    form: &OrderForm,
    order: &Order,
    issuer: &PartyId,
    cardholder: &PersonalKey,
    now: u64,
) -> SealedOrder {
    seal(form, order, issuer, cardholder, now, &mut OsRandom).expect("seal")
}

/// One GF(2^127 − 1) multiplication of two opaque operands.
#[inline]
pub fn field_mul(a: Fe, b: Fe) -> Fe {
    black_box(a) * black_box(b)
}

/// `n` independent multiplications of opaque operands (the field benchmark, repeated as many
/// times as an operation needs, so that both run for comparable wall time).
pub fn field_muls(a: Fe, b: Fe, n: u64) {
    for _ in 0..n {
        black_box(field_mul(a, b));
    }
}

/// Two fixed, full-size field elements.
pub fn field_operands() -> (Fe, Fe) {
    (
        Fe::new(0x5a5a_1234_5678_9abc_def0_1357_9bdf_2468),
        Fe::new(0x3c3c_fedc_ba98_7654_3210_2468_ace0_1357),
    )
}

/// `n` dependent multiplications (each waits for the previous one, as in Horner's rule).
pub fn field_chain(a: Fe, b: Fe, n: usize) -> Fe {
    let mut x = black_box(a);
    let y = black_box(b);
    for _ in 0..n {
        x = x * y;
    }
    black_box(x)
}

type HpkeKem = X25519HkdfSha256;

/// The baselines: an HPKE base-mode ciphertext (X25519-HKDF-SHA256, HKDF-SHA256,
/// ChaCha20-Poly1305) of a payload as long as one sealed part's plaintext, and an
/// RSA-OAEP-2048 (SHA-256) ciphertext of a 32-byte content key, as a hybrid RSA scheme sends.
pub struct Baselines {
    /// The payload length in bytes.
    pub payload_len: usize,
    hpke_sk: <HpkeKem as hpke::Kem>::PrivateKey,
    hpke_enc: <HpkeKem as hpke::Kem>::EncappedKey,
    hpke_ct: Vec<u8>,
    aad: Vec<u8>,
    rsa_sk: rsa::PrivateKey,
    rsa_ct: Vec<u8>,
}

/// The HPKE `info` string of the baseline.
const HPKE_INFO: &[u8] = b"warifu/bench/hpke-baseline";

impl Baselines {
    /// Makes the keys and ciphertexts (an RSA-2048 key generation takes a moment).
    pub fn new(payload_len: usize, aad: Vec<u8>) -> Baselines {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7 + 3) as u8).collect();
        let (hpke_sk, hpke_pk) = HpkeKem::gen_keypair();
        let (hpke_enc, hpke_ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(
            &OpModeS::Base,
            &hpke_pk,
            HPKE_INFO,
            &payload,
            &aad,
        )
        .expect("hpke seal");
        let rsa_sk = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("rsa key");
        let rsa_ct = rsa_sk
            .to_public_key()
            .oaep_encrypt::<Sha256>(&[0x42; 32])
            .expect("rsa encrypt");
        let b = Baselines {
            payload_len,
            hpke_sk,
            hpke_enc,
            hpke_ct,
            aad,
            rsa_sk,
            rsa_ct,
        };
        assert_eq!(b.hpke_open(), payload, "HPKE baseline round-trips");
        assert_eq!(b.rsa_decrypt(), [0x42; 32], "RSA baseline round-trips");
        b
    }

    /// HPKE base-mode open: decapsulate (one X25519), key schedule, AEAD open.
    pub fn hpke_open(&self) -> Vec<u8> {
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, HpkeKem>(
            &OpModeR::Base,
            &self.hpke_sk,
            black_box(&self.hpke_enc),
            HPKE_INFO,
            black_box(&self.hpke_ct),
            &self.aad,
        )
        .expect("hpke open")
    }

    /// RSA-OAEP-2048 (SHA-256) decryption of the 32-byte content key (blinded, as by default).
    pub fn rsa_decrypt(&self) -> Vec<u8> {
        self.rsa_sk
            .oaep_decrypt::<Sha256>(black_box(&self.rsa_ct))
            .expect("rsa decrypt")
    }
}
