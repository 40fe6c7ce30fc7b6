//! `warifu bench --target`: the cardholders of a deployment already running elsewhere —
//! its directory, the bench cardholders' key files, and their cards, enrolled through the
//! issuer's operator route the first time.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use warifu_core::{PartyId, Role};
use warifu_services::cardholder::Cardholder;
use warifu_services::dev::fixture::{self, card_number};
use warifu_services::directory::SharedDirectory;
use warifu_services::protocol::operator::{AdminCardList, EnrollCard, PATH_ADMIN_CARDS};

use super::{BENCH_HOLDER, BenchArgs, CARD_LIMIT};
use crate::support::flags::KeyUseArgs;
use crate::support::keystore::{file_name_for, party_key_source};
use crate::support::passphrase::PassphraseArgs;
use crate::support::service::{OperatorArgs, op_call};

/// The bench's `i`-th cardholder (the same identifiers in a local and a target deployment).
pub(super) fn cardholder_id(i: usize) -> Result<PartyId> {
    Ok(PartyId::parse(&format!(
        "cardholder:bench-{i}@bench.example"
    ))?)
}

/// A running deployment, as its directory names it.
pub(super) struct Target {
    directory: Arc<SharedDirectory>,
    pub(super) merchant: PartyId,
    pub(super) issuer: PartyId,
    keys: PathBuf,
    key_use: KeyUseArgs,
    operator: OperatorArgs,
}

impl Target {
    /// The deployment of `--target` (its directory file), checked: the merchant and the
    /// issuer are listed in their roles.
    pub(super) fn open(args: &BenchArgs, file: &std::path::Path) -> Result<Target> {
        let need = |v: &Option<String>, flag: &str| {
            v.clone()
                .with_context(|| format!("--target needs {flag} (the party's identifier)"))
        };
        let merchant = PartyId::parse(&need(&args.merchant, "--merchant")?)?;
        let issuer = PartyId::parse(&need(&args.issuer, "--issuer")?)?;
        let keys = args
            .keys
            .clone()
            .context("--target needs --keys (the bench cardholders' key files)")?;
        let directory = SharedDirectory::from_file(file)
            .with_context(|| format!("cannot read the directory {}", file.display()))?;
        let listed = directory.get();
        listed.lookup(&merchant, Role::Merchant)?;
        let endpoint = listed.lookup(&issuer, Role::Issuer)?.endpoint.clone();
        Ok(Target {
            directory: Arc::new(directory),
            merchant,
            issuer,
            keys,
            key_use: KeyUseArgs {
                scheme: Some(args.scheme),
                key_cache: args.key_cache,
            },
            operator: OperatorArgs {
                url: endpoint,
                token_file: args.operator_token_file.clone(),
                json: false,
            },
        })
    }

    /// The first `n` bench cardholders' clients with their card numbers; each card the
    /// issuer does not know yet is enrolled first.
    pub(super) async fn cardholders(&self, n: usize) -> Result<Vec<(Arc<Cardholder>, String)>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let id = cardholder_id(i)?;
            let path = self.keys.join(file_name_for(&id));
            if !path.exists() {
                bail!(
                    "no key file {} for {id}: issue the bench cardholders' keys first \
                     (`warifu keycenter issue --out {} cardholder:bench-0@bench.example …`, \
                     see README, Load benchmark)",
                    path.display(),
                    self.keys.display()
                );
            }
            let no_passphrase = PassphraseArgs {
                passphrase_file: None,
            };
            let keys = party_key_source(std::slice::from_ref(&path), &self.key_use, &no_passphrase)
                .with_context(|| format!("loading {}", path.display()))?;
            let number = card_number(i);
            self.enroll(i, &id, &number).await?;
            out.push((
                Arc::new(Cardholder::new(keys, self.directory.clone())),
                number,
            ));
        }
        Ok(out)
    }

    /// Enrolls the card of bench cardholder `i` unless the issuer already lists one for it.
    async fn enroll(&self, i: usize, id: &PartyId, number: &str) -> Result<()> {
        let listed = format!("{PATH_ADMIN_CARDS}?cardholder={id}");
        let (cards, _) = op_call::<AdminCardList>(&self.operator, false, &listed, None)
            .await
            .with_context(|| {
                // An issuer served with an operator token answers `operator_required`.
                let hint = match self.operator.token_file {
                    None => " without --operator-token-file",
                    Some(_) => "",
                };
                format!("asking the issuer for the cards of {id}{hint}")
            })?;
        if !cards.cards.is_empty() {
            return Ok(());
        }
        let req = EnrollCard {
            card_id: format!("bench-card-{i}"),
            cardholder: id.to_string(),
            name: BENCH_HOLDER.to_owned(),
            number: number.to_owned(),
            expiry: format!("{:04}-{:02}", fixture::EXPIRY.year, fixture::EXPIRY.month),
            credit_limit: CARD_LIMIT,
            currency: "JPY".to_owned(),
        };
        op_call::<serde_json::Value>(
            &self.operator,
            true,
            PATH_ADMIN_CARDS,
            Some(serde_json::to_value(&req)?),
        )
        .await
        .with_context(|| format!("enrolling the card of {id} at the issuer"))?;
        Ok(())
    }
}
