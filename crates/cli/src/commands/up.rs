//! `warifu up`: the merchant, the issuer, the carrier and the demo cardholder's wallet page on
//! localhost until Ctrl-C, on a persistent data directory.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use warifu_core::PartyId;
use warifu_core::order::Destination;
use warifu_services::dev::local::{Local, LocalOptions};
use warifu_services::merchant::links::{self, LinkItem};

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
    /// The merchant's port; the issuer, the carrier and the wallet page take the next three.
    /// Default: the ports of the last run on this data directory (kept in DIR/ports.json, so
    /// an open wallet tab survives a restart), else free ones.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Keep the databases in PostgreSQL at this URL (one schema per party) (`--postgres` is the same).
    #[arg(long = "db", alias = "postgres", value_name = "URL", value_parser = crate::support::flags::postgres_url)]
    pub postgres: Option<String>,
    /// Log filter for standard error.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log: String,
    /// Log format on standard error: `text` or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The key center's signed revocation list every party reads, re-read when it changes
    /// (default: DATA/keycenter/revocations.json, where `warifu keycenter revoke --dir
    /// DATA/keycenter ID` writes it).
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
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
    opts.revocations = args.revocations.clone();
    let ports = match args.port {
        Some(p) => {
            let next = |i: u16| p.checked_add(i).context("--port too high");
            [p, next(1)?, next(2)?, next(3)?]
        }
        None => remembered_ports(&args.data),
    };
    opts.ports = [ports[0], ports[1], ports[2]];
    let local = Local::start(opts)
        .await
        .context("cannot start the parties")?;
    let alice_id = PartyId::parse(CARDHOLDER)?;
    enroll_demo_card(&local, &alice_id).await?;
    let wallet_dir = args.data.join("wallet");
    crate::support::files::ensure_private_dir(&wallet_dir)?;
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
                card: None,
                issuer: local.issuer.id().clone(),
                destination: Some(Destination {
                    addressee: ADDRESSEE.into(),
                    address: ADDRESS.into(),
                }),
            },
        )?;
    }
    let wallet = up_wallet_config(&local, &key_path, &wallet_dir);
    seed_wallet(&wallet)?;
    let (web_listener, web_url) = crate::wallet_web::bind(ports[3]).await?;
    let bound = [local.merchant.id(), local.issuer.id(), local.carrier.id()]
        .map(|id| port_of(&local.endpoint(id).unwrap_or_default()));
    let web_port = web_listener.local_addr().map(|a| a.port()).unwrap_or(0);
    remember_ports(&args.data, [bound[0], bound[1], bound[2], web_port]);
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let web_task = tokio::spawn(crate::wallet_web::serve(web_listener, wallet, async move {
        let _ = web_stopped.await;
    }));
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
    for (name, center) in [
        ("Blom", &local.figures.blom_center),
        ("SOK", &local.figures.sok_center),
    ] {
        if let Some(dir) = center {
            text.push_str(&format!(
                "  {name} key center{:<13} {}\n",
                "",
                dir.display()
            ));
        }
    }
    text.push_str(&format!(
        "  revocation list          {} (warifu keycenter revoke --dir {} ID)\n",
        local.revocations_path.display(),
        args.data.join("keycenter").display()
    ));
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
    let items = vec![LinkItem {
        product_number: "TEA-001".into(),
        quantity: 2,
    }];
    if let Ok(l) = links::link(&local.merchant, items) {
        text.push_str(&format!(
            "A payment link of the merchant (paste it on the wallet's \"Pay a link\" page; QR code: {}):\n  {}\n",
            l.qr_svg_url, l.url
        ));
    }
    text.push_str(&format!(
        "Directory: {}\nBuy as {CARDHOLDER} from another terminal (the card is taken from the \
         wallet file: create it on the wallet page first):\n  \
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

/// With WARIFU_WALLET_PASSPHRASE set, creates the demo wallet file (the demo card and
/// addresses) if missing, so `wallet buy` works before the wallet page is first opened; else
/// the page creates it. The card number is kept only there.
fn seed_wallet(cfg: &crate::wallet_web::WebConfig) -> Result<()> {
    use crate::wallet_web::vault::Vault;
    let pass = std::env::var(crate::support::passphrase::WALLET_PASSPHRASE_ENV).unwrap_or_default();
    if pass.is_empty() || Vault::exists(&cfg.vault) {
        return Ok(());
    }
    let seed = cfg.seed.clone().unwrap_or_default();
    Vault::create(&cfg.vault, &warifu_core::secret::Secret::new(pass), seed)?;
    Ok(())
}

/// Where `up` keeps the ports of its last run in the data directory.
const PORTS_FILE: &str = "ports.json";

/// The ports of the last run on `data` (merchant, issuer, carrier, wallet page), each one
/// still free; 0 (any free port) for a port taken meanwhile or when none were kept.
fn remembered_ports(data: &Path) -> [u16; 4] {
    let kept: Option<[u16; 4]> = std::fs::read(data.join(PORTS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(kept) = kept else {
        return [0; 4];
    };
    kept.map(|p| {
        let free = p != 0 && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if !free && p != 0 {
            eprintln!("port {p} of the last run is taken now: using a free port instead");
        }
        if free { p } else { 0 }
    })
}

/// Keeps the ports of this run for the next one on `data` (best effort).
fn remember_ports(data: &Path, ports: [u16; 4]) {
    let text = serde_json::to_vec(&ports).unwrap_or_default();
    if let Err(e) = std::fs::write(data.join(PORTS_FILE), text) {
        tracing::warn!(error = %e, "cannot keep the ports for the next run");
    }
}

/// The port of an `http://host:port` endpoint (0 if it has none).
fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(0)
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
        revocations: Some(local.revocations_path.clone()),
        merchant: local.merchant.id().clone(),
        link: None,
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
