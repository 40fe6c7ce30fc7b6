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

/// A PostgreSQL URL for `--db` on `demo` and `up` (their SQLite files live in the data
/// directory, so only PostgreSQL is named by URL).
pub fn postgres_url(s: &str) -> Result<String, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_owned())
    } else {
        Err(
            "expected a PostgreSQL URL (postgres://user@host:port/db); without --db the \
             databases are SQLite files in the data directory"
                .into(),
        )
    }
}

/// A service's base URL for `--url`: `http://host:port` or `https://…`; a bare `host:port`
/// (as `up` and `serve` print ports) gets `http://`. Anything else is refused with an example.
pub fn base_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    // Trailing slashes go after the scheme is known: "http://" is no URL, not "http://http:".
    let with_scheme = with_scheme.trim_end_matches('/').to_owned();
    let ok = (with_scheme.starts_with("http://") || with_scheme.starts_with("https://"))
        && with_scheme
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.contains(char::is_whitespace));
    if ok {
        Ok(with_scheme)
    } else {
        Err(format!(
            "{s:?} is not a service URL: expected http://HOST:PORT (e.g. http://127.0.0.1:8081)"
        ))
    }
}

/// Which party answers at `url`, from its `/healthz` (`merchant:shop.example (merchant)`), to
/// say so when a command reached the wrong service.
pub async fn who_answers(url: &str) -> Option<String> {
    let v: serde_json::Value = warifu_services::session::client::http_client()
        .get(format!("{}/healthz", url.trim_end_matches('/')))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let party = v.get("party")?.as_str()?;
    Some(match v.get("service").and_then(|s| s.as_str()) {
        Some(service) => format!("{party} (the {service} service)"),
        None => party.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_scheme_gets_http_and_nonsense_is_refused() {
        assert_eq!(
            base_url("127.0.0.1:44223").as_deref(),
            Ok("http://127.0.0.1:44223")
        );
        assert_eq!(
            base_url("http://127.0.0.1:1/").as_deref(),
            Ok("http://127.0.0.1:1")
        );
        assert_eq!(
            base_url("https://shop.example").as_deref(),
            Ok("https://shop.example")
        );
        for bad in ["ftp://x", "", "http://", "a b"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        assert!(postgres_url("postgres://postgres@127.0.0.1/x").is_ok());
        assert!(postgres_url("sqlite://x.db").is_err());
    }
}
