//! Secret hygiene: every type holding a secret prints a redaction, never the secret, and wipes
//! itself on drop.

use warifu_core::PartyId;
use warifu_core::blom::Master;
use warifu_core::field::Fe;
use warifu_core::keysource::{Hybrid, KeySource, pairwise_key, predistribute};
use warifu_core::order::{Card, Destination, Expiry};
use warifu_core::rand::SeededRandom;
use warifu_core::secret::{Key32, Secret};
use warifu_core::session::{Initiator, PendingHandshake};
use warifu_core::sok::SokMaster;
use zeroize::ZeroizeOnDrop;

const CARD: &str = "4111111111111111";
const ADDRESS: &str = "2-2 Umeda, Kita-ku, Osaka";

fn id(s: &str) -> PartyId {
    PartyId::parse(s).expect("id")
}

/// Asserts that neither `{:?}` nor (when given) `{}` of a value shows any of `needles`.
fn assert_hidden(what: &str, debug: String, display: Option<String>, needles: &[String]) {
    for text in std::iter::once(debug).chain(display) {
        for needle in needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} leaks {needle:?} in {text:?}"
            );
        }
    }
}

/// The ways a byte string could show up in a formatted value.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let list = format!("{bytes:?}");
    vec![hex[..16].to_owned(), list[..list.len().min(24)].to_owned()]
}

#[test]
fn secret_strings_card_and_destination_are_redacted() {
    let card = Card {
        number: Secret::new(CARD),
        expiry: Expiry {
            year: 2030,
            month: 12,
        },
    };
    let dest = Destination {
        addressee: Secret::new("Taro Suzuki"),
        address: Secret::new(ADDRESS),
    };
    let needles = [
        CARD.to_owned(),
        ADDRESS.to_owned(),
        "Taro Suzuki".to_owned(),
    ];
    let s = Secret::new(CARD);
    assert_hidden("Secret", format!("{s:?}"), Some(format!("{s}")), &needles);
    assert_hidden("Card", format!("{card:?} {card:#?}"), None, &needles);
    assert_hidden("Destination", format!("{dest:?}"), None, &needles);
}

#[test]
fn keys_masters_and_sessions_are_redacted() {
    let mut rng = SeededRandom::new(b"secrets");
    let master = Master::generate(4, &mut rng).expect("master");
    let (a, b) = (id("merchant:shop"), id("issuer:bank"));
    let key_a = master.personal_key(&a);
    let key_b = master.personal_key(&b);

    let entry = master.entry(0, 1, 2).value().to_string();
    assert_hidden("Master", format!("{master:?}"), None, &[entry]);
    let element = key_a.lane(0)[1].value().to_string();
    assert_hidden(
        "PersonalKey",
        format!("{key_a:?}"),
        None,
        std::slice::from_ref(&element),
    );
    assert_hidden("Fe", format!("{:?}", key_a.lane(0)[1]), None, &[element]);
    assert!(format!("{:?}", Fe::new(12345)).contains("redacted"));

    let pairwise = pairwise_key(&key_a, &b).expect("key");
    let needles = renderings(pairwise.expose());
    assert_hidden("Key32", format!("{pairwise:?}"), None, &needles);

    let tables = predistribute(&[a.clone(), b.clone()], &mut rng).expect("tables");
    let table_key = tables[0].shared_secret(&b).expect("key");
    assert_hidden(
        "Predistributed",
        format!("{:?}", tables[0]),
        None,
        &renderings(&table_key),
    );

    let sok = SokMaster::generate(&mut rng).expect("sok master");
    let sok_key = sok.personal_key(&a);
    let sok_secret = sok_key.shared_secret(&b).expect("sok secret");
    assert_hidden("SokMaster", format!("{sok:?}"), None, &[]);
    assert_hidden(
        "SokKey",
        format!("{sok_key:?}"),
        None,
        &renderings(&sok_secret),
    );
    let hybrid =
        Hybrid::new(vec![Box::new(master.personal_key(&a)), Box::new(sok_key)]).expect("hybrid");
    let hybrid_key = pairwise_key(&hybrid, &b).expect("hybrid key");
    assert_hidden(
        "Key32 (hybrid)",
        format!("{hybrid_key:?}"),
        None,
        &renderings(hybrid_key.expose()),
    );

    let (init, hello) = Initiator::start(&key_a, &b, 1_800_000_000, &mut rng).expect("hello");
    let (pending, challenge) =
        PendingHandshake::respond(&key_b, &hello, 1_800_000_000, &mut rng).expect("challenge");
    let (session, _) = init.finish(&challenge).expect("session");
    let text = format!("{session:?}");
    assert!(text.contains("redacted"), "{text}");
    assert_hidden("Session", text, None, &renderings(pairwise.expose()));
    drop(pending);
}

#[test]
fn secret_holders_wipe_themselves_on_drop() {
    fn zeroize_on_drop<T: ZeroizeOnDrop>() {}
    zeroize_on_drop::<Secret>();
    zeroize_on_drop::<Key32>();
    // These own vectors of field elements and wipe them in their Drop implementations.
    assert!(std::mem::needs_drop::<Master>());
    assert!(std::mem::needs_drop::<warifu_core::blom::PersonalKey>());
    assert!(std::mem::needs_drop::<SokMaster>());
}
