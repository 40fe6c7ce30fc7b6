//! The cardholder's profile file (0600): who pays, with which card (or none: the card is then
//! taken from the encrypted wallet file), where goods go by default.
use std::path::Path;

use crate::support::files;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use warifu_core::PartyId;
use warifu_core::order::{Card, Destination};

/// The cardholder's own details, kept in a local file (0600): who pays, with which card, where
/// the goods go by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name as on the card.
    pub name: String,
    /// The cardholder's address.
    pub address: String,
    /// Telephone.
    pub telephone: String,
    /// FAX, if any.
    #[serde(default)]
    pub fax: Option<String>,
    /// The card; without it `wallet buy` takes the issuer's card from the wallet file (the
    /// profile `warifu up` writes keeps no card number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// The card's issuer.
    pub issuer: PartyId,
    /// Where goods go unless `--deliver-to` says otherwise.
    #[serde(default)]
    pub destination: Option<Destination>,
}

/// Writes a profile file (0600).
pub fn write_profile(path: &Path, profile: &Profile) -> Result<()> {
    let text = serde_json::to_string_pretty(profile).context("cannot encode the profile")?;
    files::write_secret(path, text.as_bytes(), files::Overwrite::Refuse)
}

pub(crate) fn read_profile(path: &Path) -> Result<Profile> {
    let bytes = zeroize::Zeroizing::new(files::read_file(path)?);
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a wallet profile: {}",
            path.display(),
            warifu_services::error::redact_quoted(&e.to_string())
        )
    })
}
