//! `warifu open`: one party opens its part of a sealed order and prints its view as JSON.

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use warifu_core::keysource::KeySource;
use warifu_core::order::OrderForm;
use warifu_core::policy::{Field, Policy};
use warifu_core::sealed::{Disclosed, ForCarrier, ForIssuer, ForMerchant, Header};
use warifu_core::{PartyId, Role};

use crate::support::files::{Parcel, pretty, read_json, read_policy};
use crate::support::format::print;
use crate::support::keystore;
use crate::support::passphrase::PassphraseArgs;

/// `warifu open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The opening party's key file; its identifier's role picks the part.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The disclosure policy (TOML) the order was sealed under.
    #[arg(long, value_name = "POLICY.toml", conflicts_with = "form")]
    pub policy: Option<PathBuf>,
    /// Take the policy from this order form instead. With neither, the patent's default.
    #[arg(long, value_name = "FORM.json")]
    pub form: Option<PathBuf>,
    /// The sealed order or forwarded part, JSON or binary (`-` for standard input).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// The passphrase of the key file, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
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
