//! `warifu seal`, `open`, `forward`, `policy` and `example`: the sealed order format from the
//! shell, on files.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warifu_core::keysource::KeySource;
use warifu_core::order::{
    Card, CatalogItem, Destination, Expiry, Order, OrderForm, PaymentMethod, year_month,
};
use warifu_core::policy::{Field, Policy};
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::sealed::{
    self, Disclosed, ForCarrier, ForIssuer, ForMerchant, ForwardedPart, Header, Recipient,
    SealedOrder,
};
use warifu_core::{PartyId, Role};

use crate::cli::{
    ExampleCommand, ExampleFormArgs, ExampleOrderArgs, Format, ForwardArgs, OpenArgs,
    PolicyCommand, RecipientRole, SealArgs,
};
use crate::keystore::{self, read_file, read_input, write_output};
use crate::print;

/// The Unix time now.
fn now() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

/// Redacts the values serde_json quotes in an error message (it echoes wrong values, which in
/// an order may be a card number), keeping the schema's expectation and the position.
fn redact_serde(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let (head, tail) = match msg.find(", expected") {
        Some(i) => msg.split_at(i),
        None => (msg.as_str(), ""),
    };
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in head.chars() {
        match quote {
            Some(q) if c == q => {
                out.push_str("<redacted>");
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push_str("<redacted>");
    }
    out.push_str(tail);
    out
}

/// Reads a JSON file into `T`, with an error naming the file and what it should be.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = read_input(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{}: not a valid {what}: {}",
            path.display(),
            redact_serde(&e)
        )
    })
}

fn read_policy(path: &Path) -> Result<Policy> {
    let text = String::from_utf8(read_file(path)?)
        .map_err(|_| anyhow!("{}: not UTF-8", path.display()))?;
    Policy::from_toml(&text).with_context(|| format!("{}: not a valid policy", path.display()))
}

fn pretty<T: Serialize>(value: &T) -> Result<String> {
    let mut s = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    s.push('\n');
    Ok(s)
}

/// `warifu seal`
pub fn seal(args: &SealArgs) -> Result<()> {
    let form: OrderForm = read_json(&args.form, "order form")?;
    let order: Order = read_json(&args.order, "order")?;
    let keys = keystore::load_party_key(&args.key, &args.passphrase)?;
    let issuer = match &args.issuer {
        Some(s) => PartyId::parse(s).context("--issuer")?,
        None => match form.accepted_issuers.as_slice() {
            [only] => only.clone(),
            [] => bail!("the order form accepts no issuer"),
            many => bail!(
                "the form accepts {} issuers ({}); choose one with --issuer",
                many.len(),
                many.iter()
                    .map(PartyId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let ceiling = args.disclosure.ceiling()?;
    let sealed = sealed::seal_within(
        &form,
        &order,
        &issuer,
        &ceiling,
        keys.as_ref(),
        now()?,
        &mut OsRandom,
    )
    .context("cannot seal the order")?;
    let bytes = match args.format {
        Format::Json => format!("{}\n", sealed.to_json()).into_bytes(),
        Format::Binary => sealed.encode(),
    };
    write_output(&args.out, &bytes)?;
    let parties: Vec<String> = sealed
        .header
        .recipients()
        .into_iter()
        .filter_map(|r| sealed.header.party(r).map(|p| p.to_string()))
        .collect();
    eprintln!(
        "sealed order {} from {} for {} ({} bytes)",
        sealed.header.order_id,
        keys.owner(),
        parties.join(", "),
        bytes.len()
    );
    Ok(())
}

/// A whole sealed order or one forwarded part.
enum Parcel {
    Whole(SealedOrder),
    Forwarded(ForwardedPart),
}

impl Parcel {
    /// Reads JSON (`{…}`) or binary, whole order or forwarded part.
    fn read(path: &Path) -> Result<Parcel> {
        let bytes = read_input(path)?;
        let name = path.display();
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("{name}: not valid JSON: {}", redact_serde(&e)))?;
            return if value.get("parts").is_some() {
                serde_json::from_value(value)
                    .map(Parcel::Whole)
                    .map_err(|e| anyhow!("{name}: not a valid sealed order: {}", redact_serde(&e)))
            } else {
                serde_json::from_value(value)
                    .map(Parcel::Forwarded)
                    .map_err(|e| {
                        anyhow!("{name}: not a valid forwarded part: {}", redact_serde(&e))
                    })
            };
        }
        let whole = match SealedOrder::decode(&bytes) {
            Ok(s) => return Ok(Parcel::Whole(s)),
            Err(e) => e,
        };
        match ForwardedPart::decode(&bytes) {
            Ok(f) => Ok(Parcel::Forwarded(f)),
            Err(part) if part == whole => {
                Err(anyhow!(whole)).with_context(|| format!("{name}: not a valid sealed order"))
            }
            Err(part) => {
                bail!("{name}: neither a sealed order ({whole}) nor a forwarded part ({part})")
            }
        }
    }

    fn open<R: Recipient>(
        &self,
        policy: &Policy,
        keys: &dyn KeySource,
    ) -> Result<(Header, Disclosed)> {
        let view = match self {
            Parcel::Whole(s) => s.open::<R>(policy, keys)?,
            Parcel::Forwarded(f) => f.open::<R>(policy, keys)?,
        };
        Ok((view.header.clone(), view.fields.clone()))
    }
}

/// What `warifu open` prints.
#[derive(Serialize)]
struct Opened<'a> {
    opened_by: &'a PartyId,
    role: Role,
    header: Header,
    /// Exactly the policy's fields for this party.
    fields: Disclosed,
    /// The names of those fields.
    disclosed: Vec<&'static str>,
}

/// `warifu open`
pub fn open(args: &OpenArgs) -> Result<()> {
    let policy = match (&args.policy, &args.form) {
        (Some(p), _) => read_policy(p)?,
        (None, Some(f)) => read_json::<OrderForm>(f, "order form")?.policy,
        (None, None) => Policy::patent_default(),
    };
    let parcel = Parcel::read(&args.input)?;
    let keys = keystore::load_party_key(&args.key, &args.passphrase)?;
    let me = keys.owner().clone();
    let role = me.role();
    let opened = match role {
        Role::Merchant => parcel.open::<ForMerchant>(&policy, keys.as_ref()),
        Role::Issuer => parcel.open::<ForIssuer>(&policy, keys.as_ref()),
        Role::Carrier => parcel.open::<ForCarrier>(&policy, keys.as_ref()),
        Role::Cardholder => bail!(
            "{me} is a cardholder: the cardholder seals orders; the merchant, the issuer and the carrier open them"
        ),
    };
    let (header, fields) =
        opened.with_context(|| format!("cannot open the {role}'s part as {me}"))?;
    let out = Opened {
        opened_by: &me,
        role,
        header,
        fields,
        disclosed: policy.fields_for(role).map(Field::name).collect(),
    };
    print(&pretty(&out)?)
}

/// `warifu forward`
pub fn forward(args: &ForwardArgs) -> Result<()> {
    let sealed = match Parcel::read(&args.input)? {
        Parcel::Whole(s) => s,
        Parcel::Forwarded(_) => bail!(
            "{} is already a forwarded part; forward the whole sealed order",
            args.input.display()
        ),
    };
    let role = match args.to {
        RecipientRole::Issuer => Role::Issuer,
        RecipientRole::Carrier => Role::Carrier,
    };
    let part = sealed.forward(role)?;
    let bytes = match args.format {
        Format::Json => pretty(&part)?.into_bytes(),
        Format::Binary => part.encode(),
    };
    write_output(&args.out, &bytes)?;
    eprintln!(
        "forwarded the {role}'s part of order {} ({} bytes)",
        part.header.order_id,
        bytes.len()
    );
    Ok(())
}

/// `warifu policy …`
pub fn policy(cmd: &PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Default => print(&Policy::patent_default().to_toml()),
        PolicyCommand::Check { file } => {
            let p = read_policy(file)?;
            let mut out = String::new();
            for f in Field::ALL {
                let to: Vec<&str> = p.recipients(f).map(Role::as_str).collect();
                out.push_str(&format!("{:<22} {}\n", f.name(), to.join(", ")));
            }
            let digest: String = p.digest().iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!("digest {digest}\n"));
            print(&out)
        }
    }
}

/// `warifu example …`
pub fn example(cmd: &ExampleCommand) -> Result<()> {
    match cmd {
        ExampleCommand::Form(a) => print(&pretty(&example_form(a)?)?),
        ExampleCommand::Order(a) => print(&pretty(&example_order(a)?)?),
    }
}

fn example_catalog() -> Vec<CatalogItem> {
    vec![
        CatalogItem {
            product_number: "TEA-001".into(),
            name: "Sencha, 100 g".into(),
            unit_price: 1200,
        },
        CatalogItem {
            product_number: "CUP-002".into(),
            name: "Yunomi tea cup".into(),
            unit_price: 800,
        },
    ]
}

fn example_form(a: &ExampleFormArgs) -> Result<OrderForm> {
    let mut nonce = [0u8; 6];
    OsRandom.fill(&mut nonce)?;
    let order_id = format!(
        "ord-{}",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let policy = match &a.policy {
        Some(p) => read_policy(p)?,
        None => Policy::patent_default(),
    };
    let form = OrderForm {
        order_id,
        merchant: PartyId::parse(&a.merchant).context("--merchant")?,
        carrier: if a.no_carrier {
            None
        } else {
            Some(PartyId::parse(&a.carrier).context("--carrier")?)
        },
        accepted_issuers: vec![PartyId::parse(&a.issuer).context("--issuer")?],
        currency: "JPY".into(),
        catalog: example_catalog(),
        expires_at: now()? + 7 * 24 * 3600,
        policy,
    };
    form.validate().context("the example form is invalid")?;
    Ok(form)
}

/// A test card number (passes Luhn; issued to no one).
const TEST_CARD: &str = "4111111111111111";

fn example_order(a: &ExampleOrderArgs) -> Result<Order> {
    let form = match &a.form {
        Some(path) => read_json::<OrderForm>(path, "order form")?,
        None => example_form(&ExampleFormArgs {
            merchant: "merchant:shop.example".into(),
            issuer: "issuer:bank.example".into(),
            carrier: "carrier:post.example".into(),
            no_carrier: false,
            policy: None,
        })?,
    };
    let picks: Vec<(&str, u32)> = form
        .catalog
        .iter()
        .take(2)
        .zip([2, 1])
        .map(|(item, q)| (item.product_number.as_str(), q))
        .collect();
    let (lines, amount) = Order::lines_from(&form, &picks)?;
    let (year, _) = year_month(now()?);
    Ok(Order {
        cardholder_name: "Hanako Yamada".into(),
        cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo".into(),
        telephone: "+81-3-0000-0000".into(),
        fax: Some("+81-3-0000-0001".into()),
        card: Card {
            number: TEST_CARD.into(),
            expiry: Expiry {
                year: year.saturating_add(3),
                month: 12,
            },
        },
        lines,
        amount,
        currency: form.currency.clone(),
        payment_method: PaymentMethod::Installments { count: 3 },
        destination: form.carrier.as_ref().map(|_| Destination {
            addressee: "Taro Suzuki".into(),
            address: "2-2 Umeda, Kita-ku, Osaka".into(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_do_not_echo_values() {
        let card = "4111111111111111";
        let bad = format!(r#"{{"number": {card}, "expiry": {{"year": 2030, "month": 1}}}}"#);
        let e = serde_json::from_str::<Card>(&bad).expect_err("wrong type");
        assert!(e.to_string().contains(card), "serde echoes it: {e}");
        let red = redact_serde(&e);
        assert!(!red.contains(card), "{red}");
        assert!(red.contains("expected"), "{red}");
        let bad = format!(r#"{{"number": "x", "expiry": "{card}"}}"#);
        let e = serde_json::from_str::<Card>(&bad).expect_err("wrong type");
        assert!(!redact_serde(&e).contains(card));
    }

    #[test]
    fn examples_seal_under_the_default_policy() {
        let form = example_form(&ExampleFormArgs {
            merchant: "merchant:m.example".into(),
            issuer: "issuer:i.example".into(),
            carrier: "carrier:c.example".into(),
            no_carrier: true,
            policy: None,
        })
        .expect("form");
        assert!(form.carrier.is_none());
        let path = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(path.path(), pretty(&form).expect("json")).expect("write");
        let order = example_order(&ExampleOrderArgs {
            form: Some(path.path().to_owned()),
        })
        .expect("order");
        order.validate(&form, now().expect("now")).expect("valid");
        assert!(order.destination.is_none());
    }
}
