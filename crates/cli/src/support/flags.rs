//! Flags several commands share: the key scheme and key cache, the wire form of a sealed order,
//! and the cardholder's disclosure ceiling.

use clap::{Args, ValueEnum};

/// A key scheme on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Blom alone: fast, but any k+1 colluding key holders recover the master.
    Blom,
    /// Sakai–Ohgishi–Kasahara on BLS12-381 alone: no collusion bound, a pairing per new peer.
    Sok,
    /// Blom and SOK from two separate masters: breaking a key needs breaking both.
    Hybrid,
}

impl From<SchemeArg> for warifu_core::sok::KeyScheme {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Blom => warifu_core::sok::KeyScheme::Blom,
            SchemeArg::Sok => warifu_core::sok::KeyScheme::Sok,
            SchemeArg::Hybrid => warifu_core::sok::KeyScheme::Hybrid,
        }
    }
}

/// How a party uses its key files: the scheme and the pairwise-key cache.
#[derive(Debug, Clone, Args)]
pub struct KeyUseArgs {
    /// The key scheme. Default: the hybrid when the key files hold both halves (a hybrid
    /// bundle, or a Blom and a SOK key), else the one scheme they serve.
    #[arg(long, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// How many counterparties' pairwise keys to keep in memory (0: none).
    #[arg(long, value_name = "N", default_value_t = warifu_services::keys::DEFAULT_KEY_CACHE)]
    pub key_cache: usize,
}
/// The most the cardholder discloses: the patent's table (the card only to the issuer, the
/// destination only to the carrier) unless widened here, knowingly.
#[derive(Debug, Clone, Default, Args)]
pub struct DisclosureArgs {
    /// Also allow the form to give FIELD to PARTY (e.g. `delivery_destination=merchant`, the
    /// 【0033】 variant); repeatable. Without it a form asking for more than the patent's
    /// table is refused and nothing is sealed.
    #[arg(long = "allow", value_name = "FIELD=PARTY")]
    pub allow: Vec<String>,
}

impl DisclosureArgs {
    /// The cardholder's disclosure ceiling: the patent's table widened by each `--allow`.
    pub fn ceiling(&self) -> anyhow::Result<warifu_core::policy::Policy> {
        use anyhow::Context as _;
        let mut ceiling = warifu_core::policy::Policy::patent_default();
        for grant in &self.allow {
            let (field, party) = warifu_core::policy::Policy::parse_grant(grant)
                .with_context(|| format!("--allow {grant}"))?;
            ceiling = ceiling
                .widened(field, party)
                .with_context(|| format!("--allow {grant}"))?;
        }
        Ok(ceiling)
    }
}
/// Wire form of a sealed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON, binary fields in unpadded base64url.
    Json,
    /// The binary encoding of docs/PROTOCOL.md.
    Binary,
}
