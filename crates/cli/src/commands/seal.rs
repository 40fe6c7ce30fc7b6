//! `warifu seal`: the cardholder seals an order from files, within the disclosure ceiling.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use warifu_core::PartyId;
use warifu_core::keysource::KeySource;
use warifu_core::order::{Order, OrderForm};
use warifu_core::rand::OsRandom;
use warifu_core::sealed::{self};

use crate::support::files::{now, read_json, write_output};
use crate::support::flags::DisclosureArgs;
use crate::support::flags::Format;
use crate::support::keystore;
use crate::support::passphrase::PassphraseArgs;

/// `warifu seal`
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The cardholder's key file.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The merchant's order form (JSON).
    #[arg(long, value_name = "FORM.json")]
    pub form: PathBuf,
    /// The cardholder's order (JSON).
    #[arg(long, value_name = "ORDER.json")]
    pub order: PathBuf,
    /// The card's issuer; defaults to the form's only accepted issuer.
    #[arg(long, value_name = "ID")]
    pub issuer: Option<String>,
    /// Output wire form.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Where to write the sealed order (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The passphrase of the key file, if it is sealed.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// What the cardholder allows the form to disclose.
    #[command(flatten)]
    pub disclosure: DisclosureArgs,
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
