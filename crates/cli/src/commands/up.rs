//! `warifu up`: the merchant, the issuer, the carrier and the demo cardholder's wallet page on
//! localhost until Ctrl-C, on a persistent data directory.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use warifu_core::PartyId;
use warifu_core::order::{Card, Destination};
use warifu_services::dev::local::{Local, LocalOptions};

use crate::support::demo_cardholder::{
    ADDRESS, ADDRESSEE, CARD_EXPIRY, CARD_NAME, CARD_NUMBER, CARDHOLDER, enroll_demo_card, runtime,
    storage,
};
use crate::support::flags::SchemeArg;
use crate::support::format::print;
use crate::support::logging::{LogFormat, init_logs_as};
use crate::support::profile::{Profile, write_profile};

/// `warifu up`
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The data directory: key center, directory, databases, the demo wallet (created if
    /// missing, reused if present).
    #[arg(long, value_name = "DIR", default_value = "warifu-data")]
    pub data: PathBuf,
    /// The collusion bound, when the key center is created.
    #[arg(long, default_value_t = warifu_core::blom::DEFAULT_K)]
    pub k: u32,
    /// The key scheme: `hybrid` (Blom and SOK from two masters, the default), `blom` or `sok`.
    #[arg(long, value_enum, default_value_t = SchemeArg::Hybrid)]
    pub scheme: SchemeArg,
    /// How many counterparties' pairwise keys each party keeps in memory (0: none).
    #[arg(long, value_name = "N", default_value_t = warifu_services::keys::DEFAULT_KEY_CACHE)]
    pub key_cache: usize,
    /// The merchant's port; the issuer and the carrier take the next two (0: any free ports).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Keep the databases in PostgreSQL at this URL (one schema per party).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Log filter for standard error.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log: String,
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
/// Runs `warifu up`.
pub fn up(args: &UpArgs) -> Result<()> {
    init_logs_as(&args.log, args.log_format);
    runtime()?.block_on(run_up(args))
}

async fn run_up(args: &UpArgs) -> Result<()> {
    let mut opts = LocalOptions::new(&args.data, args.k);
    opts.storage = storage(args.postgres.as_deref(), "warifu_up");
    opts.scheme = args.scheme.into();
    opts.key_cache = args.key_cache;
    if args.port != 0 {
        let p = args.port;
        opts.ports = [
            p,
            p.checked_add(1).context("--port too high")?,
            p.checked_add(2).context("--port too high")?,
        ];
    }
    let local = Local::start(opts)
        .await
        .context("cannot start the parties")?;
    let alice_id = PartyId::parse(CARDHOLDER)?;
    enroll_demo_card(&local, &alice_id).await?;
    let wallet_dir = args.data.join("wallet");
    std::fs::create_dir_all(&wallet_dir)
        .with_context(|| format!("cannot create {}", wallet_dir.display()))?;
    let key_path = wallet_dir.join("hanako.key");
    if !key_path.exists() {
        local.write_key(&alice_id, &key_path)?;
    }
    let profile_path = wallet_dir.join("hanako.json");
    if !profile_path.exists() {
        write_profile(
            &profile_path,
            &Profile {
                name: CARD_NAME.into(),
                address: "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001".into(),
                telephone: "+81-3-1234-5678".into(),
                fax: None,
                card: Card {
                    number: CARD_NUMBER.into(),
                    expiry: CARD_EXPIRY,
                },
                issuer: local.issuer.id().clone(),
                destination: Some(Destination {
                    addressee: ADDRESSEE.into(),
                    address: ADDRESS.into(),
                }),
            },
        )?;
    }
    let web_port = match args.port {
        0 => 0,
        p => p.checked_add(3).context("--port too high")?,
    };
    let (web_listener, web_url) = crate::wallet_web::bind(web_port).await?;
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let web_task = tokio::spawn(crate::wallet_web::serve(
        web_listener,
        up_wallet_config(&local, &key_path, &wallet_dir),
        async move {
            let _ = web_stopped.await;
        },
    ));
    let mut text = format!(
        "Warifu is up (scheme {}{}, data in {}).\n",
        local.figures.scheme,
        local
            .figures
            .k
            .map(|k| format!(", k = {k}"))
            .unwrap_or_default(),
        args.data.display()
    );
    for id in [local.merchant.id(), local.issuer.id(), local.carrier.id()] {
        text.push_str(&format!(
            "  {:<24} {}\n",
            id.as_str(),
            local.endpoint(id).unwrap_or_default()
        ));
    }
    text.push_str(&format!(
        "Dashboards (read-only): {}\nWallet of {CARDHOLDER} in your browser: {web_url}\n",
        [local.merchant.id(), local.issuer.id(), local.carrier.id()]
            .iter()
            .map(|id| format!("{}/dashboard", local.endpoint(id).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("  ")
    ));
    text.push_str(&format!(
        "Directory: {}\nBuy as {CARDHOLDER} from another terminal:\n  \
         warifu wallet buy --key {} --profile {} --directory {} --merchant {} --item TEA-001:2\n\
         Press Ctrl-C to stop.\n",
        local.directory_path.display(),
        key_path.display(),
        profile_path.display(),
        local.directory_path.display(),
        local.merchant.id(),
    ));
    print(&text)?;
    warifu_services::http::service::shutdown_signal().await;
    print("Stopping…\n")?;
    let _ = web_stop.send(());
    if let Ok(Err(e)) = web_task.await {
        tracing::warn!(error = %e, "the wallet page stopped with an error");
    }
    local.stop().await;
    Ok(())
}

/// The wallet page of `warifu up`: the demo cardholder's key, its wallet file next to it, the
/// deployment's stores for the order-across-parties view, and the demo card and addresses
/// offered when the wallet is created.
fn up_wallet_config(
    local: &Local,
    key_path: &Path,
    wallet_dir: &Path,
) -> crate::wallet_web::WebConfig {
    use crate::wallet_web::vault::{Address, Contact, StoredCard, VaultData};
    crate::wallet_web::WebConfig {
        key_paths: vec![key_path.to_owned()],
        scheme: None,
        key_cache: warifu_services::keys::DEFAULT_KEY_CACHE,
        directory: local.directory_path.clone(),
        merchant: local.merchant.id().clone(),
        vault: wallet_dir.join("wallet.vault"),
        deployment: Some(crate::wallet_web::Deployment {
            merchant: local.merchant.clone(),
            issuer: local.issuer.clone(),
            carrier: local.carrier.clone(),
        }),
        seed: Some(VaultData {
            me: Contact {
                name: CARD_NAME.into(),
                address: "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001".into(),
                telephone: "+81-3-1234-5678".into(),
                fax: None,
            },
            cards: vec![StoredCard {
                id: "demo".into(),
                holder_name: CARD_NAME.into(),
                number: CARD_NUMBER.into(),
                expiry: CARD_EXPIRY,
                issuer: local.issuer.id().clone(),
            }],
            addresses: vec![
                Address {
                    id: "home".into(),
                    label: "home".into(),
                    addressee: CARD_NAME.into(),
                    address: "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001".into(),
                },
                Address {
                    id: "taro".into(),
                    label: "Taro (gift)".into(),
                    addressee: ADDRESSEE.into(),
                    address: ADDRESS.into(),
                },
            ],
            orders: Vec::new(),
        }),
    }
}
