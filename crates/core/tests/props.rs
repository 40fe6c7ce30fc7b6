//! Property tests of the key scheme and the sealed-order format: pairwise symmetry, seal/open
//! round trips for random orders and policies, rejection of every single-byte change, no
//! opening of parts swapped between orders, and views holding exactly the policy's fields.
//! Also the regression tests of bugs found by fuzzing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use warifu_core::blom::{Master, PersonalKey};
use warifu_core::kem::{KemRing, KemSecretKey};
use warifu_core::keyfile::KeyFile;
use warifu_core::keysource::{KeySource, pairwise_key, predistribute};
use warifu_core::order::{
    Card, CatalogItem, Destination, Expiry, Order, OrderForm, PaymentMethod, luhn,
};
use warifu_core::policy::{Field, Policy, RECIPIENTS};
use warifu_core::rand::SeededRandom;
use warifu_core::sealed::{
    Disclosed, ForCarrier, ForIssuer, ForMerchant, ForwardedPart, Header, RecipientKeys,
    SealedOrder, seal_to, seal_within,
};
use warifu_core::{PartyId, Role};

const NOW: u64 = 1_800_000_000; // 2027-01

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// A valid identifier name: no whitespace or control characters, some non-ASCII.
fn name() -> impl Strategy<Value = String> {
    "[a-z0-9.@_\\-é漢]{1,24}"
}

fn id_of(role: Role) -> impl Strategy<Value = PartyId> {
    name().prop_map(move |n| PartyId::parse(&format!("{role}:{n}")).expect("valid identifier"))
}

fn any_id() -> impl Strategy<Value = PartyId> {
    prop::sample::select(Role::ALL.to_vec()).prop_flat_map(id_of)
}

/// Non-blank free text without control characters.
fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9é漢][A-Za-z0-9 ,.'é漢\\-]{0,30}"
}

/// A random valid policy: random recipients for every field, then the rules every policy
/// keeps (card to the issuer alone; amount to merchant and issuer; payment method to the
/// issuer; destination to the carrier).
fn policy() -> impl Strategy<Value = Policy> {
    prop::collection::vec(0u8..8, 11).prop_map(|masks| {
        let mut map = BTreeMap::new();
        for (f, mask) in Field::ALL.into_iter().zip(masks) {
            let mut roles: Vec<Role> = RECIPIENTS
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, r)| r)
                .collect();
            let mut need = |r: Role| {
                if !roles.contains(&r) {
                    roles.push(r);
                }
            };
            match f {
                Field::Amount => {
                    need(Role::Merchant);
                    need(Role::Issuer);
                }
                Field::PaymentMethod => need(Role::Issuer),
                Field::DeliveryDestination => need(Role::Carrier),
                _ => {}
            }
            if f == Field::Card {
                roles = vec![Role::Issuer];
            }
            map.insert(f, roles);
        }
        Policy::from_map(&map).expect("the generated policy keeps every rule")
    })
}

/// A card number of 12–19 digits with a valid Luhn check digit.
fn card_number() -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..10, 11..19).prop_map(|digits| {
        let body: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        (0..10)
            .map(|c| format!("{body}{c}"))
            .find(|n| luhn(n))
            .expect("one check digit fits")
    })
}

fn payment() -> impl Strategy<Value = PaymentMethod> {
    prop_oneof![
        Just(PaymentMethod::LumpSum),
        (2u8..=60).prop_map(|count| PaymentMethod::Installments { count }),
        Just(PaymentMethod::Revolving),
        Just(PaymentMethod::Bonus),
    ]
}

/// Everything random about one purchase.
#[derive(Debug, Clone)]
struct Purchase {
    k: u32,
    seed: u64,
    cardholder: PartyId,
    form: OrderForm,
    order: Order,
}

fn purchase() -> impl Strategy<Value = Purchase> {
    let parties = (
        id_of(Role::Cardholder),
        id_of(Role::Merchant),
        id_of(Role::Issuer),
        prop::option::of(id_of(Role::Carrier)),
    );
    let catalog = prop::collection::vec((text(), 1u64..1_000_000), 1..5);
    let person = (text(), text(), text(), prop::option::of(text()));
    let card = (card_number(), 2027u16..2040, 1u8..=12);
    let picks = prop::collection::vec((any::<Index>(), 1u32..20), 1..5);
    (
        (1u32..=6, any::<u64>(), "[A-Za-z0-9_\\-]{1,64}"),
        parties,
        catalog,
        policy(),
        person,
        card,
        (picks, payment(), (text(), text())),
    )
        .prop_map(
            |(
                (k, seed, order_id),
                (cardholder, merchant, issuer, carrier),
                catalog,
                policy,
                (cardholder_name, cardholder_address, telephone, fax),
                (number, year, month),
                (picks, payment_method, (addressee, address)),
            )| {
                let form = OrderForm {
                    order_id: order_id.into(),
                    merchant,
                    carrier: carrier.clone(),
                    accepted_issuers: vec![issuer],
                    currency: "JPY".into(),
                    catalog: catalog
                        .iter()
                        .enumerate()
                        .map(|(i, (name, unit_price))| CatalogItem {
                            product_number: format!("P-{i}"),
                            name: name.clone(),
                            unit_price: *unit_price,
                            ships: carrier.is_some(),
                        })
                        .collect(),
                    expires_at: NOW + 3600,
                    policy,
                };
                let chosen: Vec<(String, u32)> = picks
                    .iter()
                    .map(|(i, q)| {
                        (
                            form.catalog[i.index(form.catalog.len())]
                                .product_number
                                .clone(),
                            *q,
                        )
                    })
                    .collect();
                let refs: Vec<(&str, u32)> = chosen.iter().map(|(n, q)| (n.as_str(), *q)).collect();
                let (lines, amount) = Order::lines_from(&form, &refs).expect("catalog lines");
                let order = Order {
                    cardholder_name,
                    cardholder_address,
                    telephone,
                    fax,
                    card: Card {
                        number: number.as_str().into(),
                        expiry: Expiry { year, month },
                    },
                    lines,
                    amount,
                    currency: "JPY".into(),
                    payment_method,
                    destination: carrier.map(|_| Destination {
                        addressee: addressee.as_str().into(),
                        address: address.as_str().into(),
                    }),
                };
                Purchase {
                    k,
                    seed,
                    cardholder,
                    form,
                    order,
                }
            },
        )
}

/// A sealed purchase with the personal keys of everyone involved.
struct Sealed {
    keys: BTreeMap<Role, PersonalKey>,
    sealed: SealedOrder,
}

impl Purchase {
    fn seal(&self) -> Sealed {
        let master = Master::generate(self.k, &mut SeededRandom::new(&self.seed.to_be_bytes()))
            .expect("master");
        let f = &self.form;
        let mut keys = BTreeMap::new();
        keys.insert(Role::Cardholder, master.personal_key(&self.cardholder));
        keys.insert(Role::Merchant, master.personal_key(&f.merchant));
        keys.insert(Role::Issuer, master.personal_key(&f.accepted_issuers[0]));
        if let Some(c) = &f.carrier {
            keys.insert(Role::Carrier, master.personal_key(c));
        }
        // The property explores every valid policy: the cardholder allows this form's.
        let sealed = seal_within(
            f,
            &self.order,
            &f.accepted_issuers[0],
            &f.policy,
            &keys[&Role::Cardholder],
            NOW,
            &mut SeededRandom::new(&self.seed.to_le_bytes()),
        )
        .expect("a valid order seals");
        Sealed { keys, sealed }
    }
}

impl Purchase {
    /// Seals in version 3, each recipient holding a KEM key of a random epoch (its ring).
    fn seal_v3(&self, epoch: u32) -> (Sealed, BTreeMap<Role, KemRing>) {
        let Sealed { keys, .. } = self.seal();
        let mut rng = SeededRandom::new(&self.seed.to_be_bytes());
        let mut recipients = RecipientKeys::new();
        let mut rings = BTreeMap::new();
        for role in [Role::Merchant, Role::Issuer, Role::Carrier] {
            if let Some(k) = keys.get(&role) {
                let kem = KemSecretKey::generate(epoch, &mut rng).expect("kem key");
                recipients.insert(k.owner().clone(), kem.public().clone());
                rings.insert(role, KemRing::new(vec![kem]).expect("ring"));
            }
        }
        let f = &self.form;
        let sealed = seal_to(
            f,
            &self.order,
            &f.accepted_issuers[0],
            &f.policy,
            &keys[&Role::Cardholder],
            &recipients,
            NOW,
            &mut SeededRandom::new(&self.seed.to_le_bytes()),
        )
        .expect("a valid order seals");
        (Sealed { keys, sealed }, rings)
    }
}

/// Opens `role`'s part of a version-3 bundle with its key and `ring`.
fn open_v3(
    s: &Sealed,
    bundle: &SealedOrder,
    role: Role,
    policy: &Policy,
    ring: &KemRing,
) -> warifu_core::Result<Disclosed> {
    let key = &s.keys[&role];
    match role {
        Role::Merchant => bundle
            .open_with_ring::<ForMerchant>(policy, key, ring)
            .map(|v| v.fields),
        Role::Issuer => bundle
            .open_with_ring::<ForIssuer>(policy, key, ring)
            .map(|v| v.fields),
        Role::Carrier => bundle
            .open_with_ring::<ForCarrier>(policy, key, ring)
            .map(|v| v.fields),
        Role::Cardholder => Err(warifu_core::Error::MissingPart("cardholder")),
    }
}

/// Opens `role`'s part of a forwarded part with `key`, erasing the view's marker type.
fn open_fwd(
    f: &ForwardedPart,
    role: Role,
    policy: &Policy,
    key: &dyn KeySource,
) -> warifu_core::Result<(Header, Disclosed)> {
    match role {
        Role::Merchant => f
            .open::<ForMerchant>(policy, key)
            .map(|v| (v.header, v.fields)),
        Role::Issuer => f
            .open::<ForIssuer>(policy, key)
            .map(|v| (v.header, v.fields)),
        Role::Carrier => f
            .open::<ForCarrier>(policy, key)
            .map(|v| (v.header, v.fields)),
        Role::Cardholder => Err(warifu_core::Error::MissingPart("cardholder")),
    }
}

impl Sealed {
    /// Opens `role`'s part of `s` with the right key.
    fn open(&self, s: &SealedOrder, role: Role, policy: &Policy) -> warifu_core::Result<Disclosed> {
        let f = s.forward(role)?;
        open_fwd(&f, role, policy, &self.keys[&role]).map(|(_, d)| d)
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(64))]

    /// Version 3: random orders under random policies open for each recipient with its key
    /// and its KEM ring, survive both wire forms, and do not open without the epoch's key,
    /// with another recipient's ring, or after any single-byte change.
    #[test]
    fn version_3_round_trips_and_needs_k_and_the_epoch_key(
        p in purchase(),
        epoch in 1u32..1000,
        at in any::<Index>(),
        xor in 1u8..=255,
    ) {
        let (s, rings) = p.seal_v3(epoch);
        let policy = &p.form.policy;
        prop_assert_eq!(s.sealed.header.version, 3);
        prop_assert_eq!(SealedOrder::decode(&s.sealed.encode()).expect("binary"), s.sealed.clone());
        prop_assert_eq!(SealedOrder::from_json(&s.sealed.to_json()).expect("json"), s.sealed.clone());
        for role in s.sealed.header.recipients() {
            let fields = open_v3(&s, &s.sealed, role, policy, &rings[&role]).expect("opens");
            prop_assert_eq!(&fields, &Disclosed::from_order(&p.order, policy, role));
            prop_assert_eq!(
                open_v3(&s, &s.sealed, role, policy, &KemRing::default()).err(),
                Some(warifu_core::Error::KemKeyUnavailable { epoch })
            );
            for other in s.sealed.header.recipients().into_iter().filter(|r| *r != role) {
                prop_assert!(open_v3(&s, &s.sealed, role, policy, &rings[&other]).is_err());
            }
        }
        let bytes = s.sealed.encode();
        let mut bad = bytes.clone();
        bad[at.index(bytes.len())] ^= xor;
        if let Ok(decoded) = SealedOrder::decode(&bad) {
            let all_open = s.sealed.header.recipients().into_iter().all(|role| {
                open_v3(&s, &decoded, role, policy, &rings[&role]).is_ok()
            });
            prop_assert!(!all_open, "a changed byte went unnoticed");
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Both ends of every pair derive the same key, for random identifiers and small k; a
    /// third party's key differs; the same holds for predistributed tables.
    #[test]
    fn pairwise_keys_are_symmetric(
        k in 1u32..=8,
        seed in any::<u64>(),
        a in any_id(),
        b in any_id(),
        c in any_id(),
    ) {
        prop_assume!(a != b && b != c && a != c);
        let master = Master::generate(k, &mut SeededRandom::new(&seed.to_be_bytes())).expect("master");
        let (ka, kb, kc) = (master.personal_key(&a), master.personal_key(&b), master.personal_key(&c));
        let ab = pairwise_key(&ka, &b).expect("a→b");
        prop_assert_eq!(&ab, &pairwise_key(&kb, &a).expect("b→a"));
        prop_assert_eq!(pairwise_key(&ka, &c).expect("a→c"), pairwise_key(&kc, &a).expect("c→a"));
        prop_assert_ne!(&ab, &pairwise_key(&ka, &c).expect("a→c"));
        prop_assert_ne!(&ab, &pairwise_key(&kc, &b).expect("c→b"));
        prop_assert!(pairwise_key(&ka, &a).is_err(), "no key with oneself");
        // The raw Blom elements are symmetric too (before HKDF).
        prop_assert_eq!(ka.raw_shared_bytes(&b), kb.raw_shared_bytes(&a));
        let ids = [a.clone(), b.clone(), c.clone()];
        let tables = predistribute(&ids, &mut SeededRandom::new(&seed.to_le_bytes())).expect("tables");
        prop_assert_eq!(
            pairwise_key(&tables[0], &b).expect("a→b"),
            pairwise_key(&tables[1], &a).expect("b→a")
        );
        prop_assert_ne!(pairwise_key(&tables[0], &b).expect("a→b"), ab);
    }

    /// A policy is accepted exactly when it keeps the rules every policy keeps.
    #[test]
    fn policies_are_accepted_exactly_when_they_keep_the_rules(masks in prop::collection::vec(0u8..8, 11)) {
        let mut map = BTreeMap::new();
        for (f, mask) in Field::ALL.into_iter().zip(&masks) {
            let roles: Vec<Role> = RECIPIENTS
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, r)| r)
                .collect();
            map.insert(f, roles);
        }
        let has = |f: Field, r: Role| map[&f].contains(&r);
        let ok = map[&Field::Card] == [Role::Issuer]
            && has(Field::Amount, Role::Merchant)
            && has(Field::Amount, Role::Issuer)
            && has(Field::PaymentMethod, Role::Issuer)
            && has(Field::DeliveryDestination, Role::Carrier);
        let p = Policy::from_map(&map);
        prop_assert_eq!(p.is_ok(), ok, "{:?}", map);
        if let Ok(p) = p {
            prop_assert_eq!(Policy::from_toml(&p.to_toml()).expect("round trip"), p.clone());
            for (f, roles) in &map {
                for r in RECIPIENTS {
                    prop_assert_eq!(p.receives(r, *f), roles.contains(&r));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Random orders under random valid policies seal, survive both wire forms, and each
    /// recipient's view holds exactly the fields its policy gives it, with the order's values.
    #[test]
    fn seal_open_round_trip_and_views_hold_exactly_the_policy(p in purchase()) {
        let s = p.seal();
        let policy = &p.form.policy;
        prop_assert_eq!(SealedOrder::decode(&s.sealed.encode()).expect("binary"), s.sealed.clone());
        prop_assert_eq!(SealedOrder::from_json(&s.sealed.to_json()).expect("json"), s.sealed.clone());
        let recipients = s.sealed.header.recipients();
        prop_assert_eq!(recipients.contains(&Role::Carrier), p.form.carrier.is_some());
        for role in recipients {
            let fields = s.open(&s.sealed, role, policy).expect("the right key opens");
            prop_assert_eq!(&fields, &Disclosed::from_order(&p.order, policy, role));
            // Exactly the policy's fields, except a destination when nothing is delivered.
            let want: Vec<Field> = policy
                .fields_for(role)
                .filter(|f| *f != Field::DeliveryDestination || p.form.carrier.is_some())
                .collect();
            prop_assert_eq!(fields.present(), Some(want));
            prop_assert_eq!(fields.card.is_some(), role == Role::Issuer, "claim 3");
            if let Some(c) = &fields.card {
                prop_assert_eq!(c.number.expose(), p.order.card.number.expose());
            }
        }
        // No wire form carries the card number in clear.
        let number = p.order.card.number.expose();
        prop_assert!(!s.sealed.to_json().contains(number));
        prop_assert!(!String::from_utf8_lossy(&s.sealed.encode()).contains(number));
        // A party opening with someone else's key (another recipient's) fails.
        for role in s.sealed.header.recipients() {
            let f = s.sealed.forward(role).expect("forward");
            for other in s.sealed.header.recipients().into_iter().filter(|r| *r != role) {
                prop_assert!(open_fwd(&f, role, policy, &s.keys[&other]).is_err());
            }
        }
    }

    /// Every single-byte change (sampled position, random non-zero xor) of the sealed order's
    /// binary form is rejected: a change in the header or in any commitment stops every part
    /// from opening; a change elsewhere in a part stops that part from opening.
    #[test]
    fn every_single_byte_change_is_rejected(p in purchase(), at in any::<Index>(), xor in 1u8..=255) {
        let s = p.seal();
        let policy = &p.form.policy;
        let bytes = s.sealed.encode();
        let pos = at.index(bytes.len());
        let mut bad = bytes.clone();
        bad[pos] ^= xor;
        let Ok(decoded) = SealedOrder::decode(&bad) else {
            return Ok(());
        };
        prop_assert_ne!(&decoded, &s.sealed);
        // Locate the byte: header, part count, then per part role ‖ nonce ‖ commitment ‖
        // u32 length ‖ ciphertext.
        let header_len = s.sealed.header.encode().len();
        let mut start = header_len + 1;
        let mut hit: Option<(Role, bool)> = None; // (part, in its commitment)
        for part in &s.sealed.parts {
            let len = 1 + 24 + 32 + 4 + part.ciphertext.len();
            if (start..start + len).contains(&pos) {
                let in_commitment = (start + 25..start + 57).contains(&pos);
                hit = Some((part.recipient, in_commitment));
            }
            start += len;
        }
        let everyone = match hit {
            None => true,
            Some((_, in_commitment)) => in_commitment,
        };
        for role in s.sealed.header.recipients() {
            let opened = s.open(&decoded, role, policy);
            if everyone || hit.map(|(r, _)| r) == Some(role) {
                prop_assert!(opened.is_err(), "byte {} changed, yet the {} opened", pos, role);
            } else {
                // A part whose bytes are untouched still opens, with the original view.
                prop_assert_eq!(opened.ok(), Some(Disclosed::from_order(&p.order, policy, role)));
            }
        }
    }

    /// A forwarded part with one byte of another part's commitment changed, or one byte of its
    /// own binary form changed, does not open.
    #[test]
    fn forwarded_parts_reject_changed_commitments_and_bytes(
        p in purchase(),
        which in any::<Index>(),
        at in any::<Index>(),
        xor in 1u8..=255,
    ) {
        let s = p.seal();
        let policy = &p.form.policy;
        let recipients = s.sealed.header.recipients();
        let role = recipients[which.index(recipients.len())];
        let key = &s.keys[&role];
        let fwd = s.sealed.forward(role).expect("forward");
        prop_assert!(open_fwd(&fwd, role, policy, key).is_ok());
        let mut other = fwd.clone();
        let c = at.index(other.others.len());
        other.others[c].commitment[at.index(32)] ^= xor;
        prop_assert_eq!(open_fwd(&other, role, policy, key).err(), Some(warifu_core::Error::Decrypt));
        let bytes = fwd.encode();
        let mut bad = bytes.clone();
        let pos = at.index(bytes.len());
        bad[pos] ^= xor;
        if let Ok(decoded) = ForwardedPart::decode(&bad) {
            prop_assert!(open_fwd(&decoded, role, policy, key).is_err(), "byte {} changed", pos);
        }
    }

    /// Parts of two different random orders never open when swapped: neither spliced into the
    /// other's bundle, nor forwarded under the other's header.
    #[test]
    fn parts_swapped_between_orders_never_open(a in purchase(), b in purchase(), which in any::<Index>()) {
        // The same parties and master for both, so that only the binding stops a swap.
        let mut b = b;
        b.k = a.k;
        b.seed = a.seed;
        b.cardholder = a.cardholder.clone();
        b.form.merchant = a.form.merchant.clone();
        b.form.accepted_issuers = a.form.accepted_issuers.clone();
        b.form.carrier = a.form.carrier.clone();
        for item in &mut b.form.catalog {
            item.ships = b.form.carrier.is_some();
        }
        b.form.policy = a.form.policy.clone();
        b.order.destination = a.order.destination.clone();
        let id = &a.form.order_id;
        let last = if id.ends_with('x') { 'y' } else { 'x' };
        b.form.order_id = format!("{}{last}", &id[..id.len().min(63)]).into();
        let (sa, sb) = (a.seal(), b.seal());
        let policy = &a.form.policy;
        let recipients = sa.sealed.header.recipients();
        let role = recipients[which.index(recipients.len())];
        let i = recipients.iter().position(|r| *r == role).expect("role");
        let mut spliced = sa.sealed.clone();
        spliced.parts[i] = sb.sealed.parts[i].clone();
        prop_assert_eq!(sa.open(&spliced, role, policy).err(), Some(warifu_core::Error::Decrypt));
        // The other parts of the spliced bundle no longer open either: b's commitment is bound.
        for other in recipients.iter().filter(|r| **r != role) {
            prop_assert!(sa.open(&spliced, *other, policy).is_err());
        }
        let mut fwd = sb.sealed.forward(role).expect("forward");
        fwd.header = sa.sealed.header.clone();
        prop_assert!(open_fwd(&fwd, role, policy, &sa.keys[&role]).is_err());
        let mut fwd = sa.sealed.forward(role).expect("forward");
        fwd.others = sb.sealed.forward(role).expect("forward").others;
        prop_assert!(open_fwd(&fwd, role, policy, &sa.keys[&role]).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions found by fuzzing and property testing (see fuzz/), fixed in the core; each
// names the place and the failing input.

/// A plain master key file whose k is close to u32::MAX: `keyfile.rs` computes
/// `LANES * n * (n + 1) / 2` with `n = k + 1` before `fes` checks `k <= MAX_K`, so the
/// multiplication overflows (a panic in debug and test builds, found by `keyfile_plain`).
#[test]
fn regression_master_key_file_with_huge_k() {
    let mut file = b"WRFK".to_vec();
    file.extend_from_slice(&[1, 1, 0]); // version 1, kind master, plain
    file.extend_from_slice(&6u32.to_be_bytes()); // body length
    file.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 2]); // scheme Blom, k = u32::MAX, 2 lanes
    let decoded = std::panic::catch_unwind(|| KeyFile::decode(&file, None).map(|f| f.kind_name()));
    assert!(
        matches!(decoded, Ok(Err(_))),
        "a huge k must be a typed error, not a panic"
    );
}

/// A predistributed key file that lists the same peer twice is accepted, the later key
/// silently replacing the earlier: an ambiguous file should be refused (the decoder is
/// otherwise canonical).
#[test]
fn regression_predistributed_file_with_a_duplicate_peer() {
    let owner = "cardholder:a";
    let peer = "merchant:m";
    let mut body = Vec::new();
    body.extend_from_slice(&(owner.len() as u16).to_be_bytes());
    body.extend_from_slice(owner.as_bytes());
    body.extend_from_slice(&2u16.to_be_bytes());
    for key in [[1u8; 32], [2u8; 32]] {
        body.extend_from_slice(&(peer.len() as u16).to_be_bytes());
        body.extend_from_slice(peer.as_bytes());
        body.extend_from_slice(&key);
    }
    let mut file = b"WRFK".to_vec();
    file.extend_from_slice(&[1, 3, 0]); // version 1, kind predistributed, plain
    file.extend_from_slice(&(body.len() as u32).to_be_bytes());
    file.extend_from_slice(&body);
    assert!(
        KeyFile::decode(&file, None).is_err(),
        "a duplicate peer must be refused"
    );
}

/// An order without a carrier (digital goods, 【0052】) under a policy that also gives the
/// delivery destination to the merchant (【0033】): the merchant's part holds no destination
/// (the order has none), but `ForwardedPart::open_with_key` (sealed.rs, the
/// `fields.present() != Some(policy.fields_for(R::ROLE)…)` check) expects every field of the
/// policy, so the merchant can never open its part. Found by the property tests.
#[test]
fn regression_no_carrier_with_destination_for_the_merchant() {
    let merchant = PartyId::parse("merchant:shop.example").expect("id");
    let issuer = PartyId::parse("issuer:bank.example").expect("id");
    let cardholder = PartyId::parse("cardholder:hanako@mail.example").expect("id");
    let mut map: BTreeMap<Field, Vec<Role>> = Field::ALL
        .into_iter()
        .map(|f| (f, Policy::patent_default().recipients(f).collect()))
        .collect();
    map.insert(
        Field::DeliveryDestination,
        vec![Role::Merchant, Role::Carrier],
    );
    let policy = Policy::from_map(&map).expect("policy");
    let form = OrderForm {
        order_id: "ord-1".into(),
        merchant: merchant.clone(),
        carrier: None,
        accepted_issuers: vec![issuer.clone()],
        currency: "JPY".into(),
        catalog: vec![CatalogItem {
            product_number: "P-1".into(),
            name: "E-book".into(),
            unit_price: 1200,
            ships: false,
        }],
        expires_at: NOW + 3600,
        policy: policy.clone(),
    };
    let (lines, amount) = Order::lines_from(&form, &[("P-1", 1)]).expect("lines");
    let order = Order {
        cardholder_name: "Hanako Yamada".into(),
        cardholder_address: "1-1 Chiyoda, Tokyo".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: None,
        card: Card {
            number: "4111111111111111".into(),
            expiry: Expiry {
                year: 2030,
                month: 12,
            },
        },
        lines,
        amount,
        currency: "JPY".into(),
        payment_method: PaymentMethod::LumpSum,
        destination: None,
    };
    let master = Master::generate(2, &mut SeededRandom::new(b"r")).expect("master");
    let sealed = seal_within(
        &form,
        &order,
        &issuer,
        &form.policy,
        &master.personal_key(&cardholder),
        NOW,
        &mut SeededRandom::new(b"s"),
    )
    .expect("seal");
    let opened = sealed.open::<ForMerchant>(&policy, &master.personal_key(&merchant));
    assert!(
        opened.is_ok(),
        "the merchant cannot open its part: {:?}",
        opened.err()
    );
    assert!(
        sealed
            .open::<ForIssuer>(&policy, &master.personal_key(&issuer))
            .is_ok()
    );
}

/// A request whose path (or method) is longer than 65535 bytes: `Session::verify_request`
/// (session.rs, `request_mac`) writes it with `Writer::bytes16`, which panics on such a length,
/// before the MAC is checked, so an unauthenticated sender reaches it. It should be a typed
/// error (and `sign_request` the same). Found by reading the code for the session fuzz target.
#[test]
fn regression_request_with_a_huge_path() {
    use warifu_core::session::{Initiator, PendingHandshake};
    let master = Master::generate(2, &mut SeededRandom::new(b"h")).expect("master");
    let merchant = master.personal_key(&PartyId::parse("merchant:shop.example").expect("id"));
    let issuer = master.personal_key(&PartyId::parse("issuer:bank.example").expect("id"));
    let mut rng = SeededRandom::new(b"r");
    let (init, hello) = Initiator::start(&merchant, issuer.id(), NOW, &mut rng).expect("hello");
    let (pending, challenge) =
        PendingHandshake::respond(&issuer, &hello, NOW, &mut rng).expect("challenge");
    let (mut client, confirm) = init.finish(&challenge).expect("confirm");
    let mut server = pending.confirm(&confirm, NOW).expect("session");
    let request = client
        .sign_request("POST", "/v1/authorizations", b"{}", NOW)
        .expect("sign");
    let long = format!("/{}", "a".repeat(70_000));
    let verified = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        server.verify_request(&request, "POST", &long, b"{}", NOW)
    }));
    assert!(
        matches!(verified, Ok(Err(_))),
        "must be a typed error, not a panic"
    );
}
