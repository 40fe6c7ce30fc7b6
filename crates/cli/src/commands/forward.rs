//! `warifu forward`: what the merchant forwards to the issuer or the carrier (one part plus
//! the other parts' commitments).

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use warifu_core::Role;

use crate::support::files::{Parcel, pretty, write_output};
use crate::support::flags::Format;

/// A party that receives a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipientRole {
    /// The card issuer (card manager).
    Issuer,
    /// The carrier (distributor).
    Carrier,
}

/// `warifu forward`
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The whole sealed order, JSON or binary (`-` for standard input).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Whose part to extract.
    #[arg(long, value_enum, value_name = "PARTY")]
    pub to: RecipientRole,
    /// Output wire form.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Where to write it (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
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
