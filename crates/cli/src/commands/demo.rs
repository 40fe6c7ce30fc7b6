//! `warifu demo`, the main job: a whole purchase on embedded defaults (key center, the three
//! services on loopback, approved and declined orders), printing what each party holds.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use warifu_core::order::{Card, Destination, Order, OrderForm, PaymentMethod};
use warifu_core::sok::KeyScheme;
use warifu_core::{PartyId, Role};
use warifu_services::dev::holdings::{self, Holdings};
use warifu_services::dev::local::{KeyCenterFigures, Local, LocalOptions, Storage};
use warifu_store::Party;

use crate::support::demo_cardholder::{
    ADDRESS, ADDRESSEE, CARD_EXPIRY, CARD_LIMIT, CARD_NAME, CARD_NUMBER, CARDHOLDER,
    enroll_demo_card, runtime, storage,
};
use crate::support::flags::SchemeArg;
use crate::support::format::{bound_words, print};
use crate::support::logging::init_logs;

/// `warifu demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The collusion bound of the demo's key center (any k+1 key holders together could
    /// recover its master).
    #[arg(long, default_value_t = warifu_core::blom::DEFAULT_K)]
    pub k: u32,
    /// The key scheme: `hybrid` (Blom and SOK from two masters, the default), `blom` or `sok`.
    #[arg(long, value_enum, default_value_t = SchemeArg::Hybrid)]
    pub scheme: SchemeArg,
    /// How many counterparties' pairwise keys each party keeps in memory (0: none).
    #[arg(long, value_name = "N", default_value_t = warifu_services::keys::DEFAULT_KEY_CACHE)]
    pub key_cache: usize,
    /// Keep the data directory here (it must not exist yet) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Keep the parties' databases in PostgreSQL at this URL (one schema per party) instead
    /// of SQLite files (`--postgres` is the same).
    #[arg(long = "db", alias = "postgres", value_name = "URL", value_parser = crate::support::flags::postgres_url)]
    pub postgres: Option<String>,
    /// Show the services' logs on standard error (a filter such as `info` or
    /// `warifu_services=debug`).
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// The key center's signed revocation list every party reads, re-read when it changes
    /// (default: DATA/keycenter/revocations.json, where `warifu keycenter revoke --dir
    /// DATA/keycenter ID` writes it).
    #[arg(long, value_name = "FILE")]
    pub revocations: Option<PathBuf>,
}
/// The demo order of the cardholder on `form`.
fn demo_order(form: &OrderForm, picks: &[(&str, u32)]) -> warifu_core::Result<Order> {
    let (lines, amount) = Order::lines_from(form, picks)?;
    Ok(Order {
        cardholder_name: CARD_NAME.into(),
        cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001".into(),
        telephone: "+81-3-1234-5678".into(),
        fax: None,
        card: Card {
            number: CARD_NUMBER.into(),
            expiry: CARD_EXPIRY,
        },
        lines,
        amount,
        currency: form.currency.clone(),
        payment_method: PaymentMethod::Installments { count: 3 },
        destination: form.carrier.as_ref().map(|_| Destination {
            addressee: ADDRESSEE.into(),
            address: ADDRESS.into(),
        }),
    })
}

fn yen(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("¥{out}")
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `warifu demo`.
pub fn demo(args: &DemoArgs) -> Result<()> {
    if let Some(filter) = &args.log {
        init_logs(filter);
    }
    let (dir, _tmp) = match &args.keep {
        Some(d) if d.exists() => bail!("{} already exists; give a new directory", d.display()),
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("warifu-demo-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            (t.path().to_owned(), Some(t))
        }
    };
    runtime()?.block_on(run_demo(args, &dir))
}

async fn run_demo(args: &DemoArgs, dir: &Path) -> Result<()> {
    let started = Instant::now();
    let prefix = format!("warifu_demo_{}", std::process::id());
    let mut opts = LocalOptions::new(dir, args.k);
    opts.storage = storage(args.postgres.as_deref(), &prefix);
    opts.scheme = args.scheme.into();
    opts.key_cache = args.key_cache;
    opts.revocations = args.revocations.clone();
    let backend = match &opts.storage {
        Storage::Sqlite => format!("SQLite files in {}", dir.display()),
        Storage::Postgres { .. } => format!("PostgreSQL schemas {prefix}_*"),
    };
    let kept = if args.keep.is_some() {
        "kept after the run"
    } else {
        "deleted after the run; --keep DIR keeps it"
    };
    print(&format!(
        "Warifu demo: JP H10-78988 on loopback; data in {} ({kept})\n\n",
        dir.display()
    ))?;
    let local = Local::start(opts)
        .await
        .context("cannot start the parties")?;
    let result = demo_steps(&local, &backend, started).await;
    local.stop().await;
    result
}

async fn demo_steps(local: &Local, backend: &str, started: Instant) -> Result<()> {
    let f = &local.figures;
    let merchant = local.merchant.id().clone();
    let issuer = local.issuer.id().clone();
    let carrier = local.carrier.id().clone();
    let alice_id = PartyId::parse(CARDHOLDER)?;
    let t = Instant::now();
    let alice = local.cardholder(&alice_id)?;
    let alice_key_time = t.elapsed();
    print(&format!(
        "1. Key centers: scheme {} ({})\n   \
         {}\n   masters {} in {}\n   \
         issued: {merchant}, {issuer}, {carrier} in {}; {alice_id} in {}\n   \
         directory: {} (identifier → role → endpoint)\n\n",
        f.scheme,
        scheme_words(f.scheme),
        masters_words(f),
        if f.created { "generated" } else { "loaded" },
        ms(f.master_time),
        ms(f.issue_time),
        ms(alice_key_time),
        local.directory_path.display(),
    ))?;
    enroll_demo_card(local, &alice_id).await?;
    print(&format!(
        "2. The issuer enrolls the cardholder's card\n   \
         card-1 of {alice_id}: {CARD_NAME}, •••• {}, expires {}-{:02}, limit {}\n\n",
        &CARD_NUMBER[CARD_NUMBER.len() - 4..],
        CARD_EXPIRY.year,
        CARD_EXPIRY.month,
        yen(CARD_LIMIT)
    ))?;
    let mut services = String::from("3. The services, each with its own database (");
    services.push_str(backend);
    services.push_str(")\n");
    for id in [&merchant, &issuer, &carrier] {
        services.push_str(&format!(
            "   {:<24} {}\n",
            id.as_str(),
            local.endpoint(id).unwrap_or_default()
        ));
    }
    print(&(services + "\n"))?;

    print(
        "4. Purchases: mutual confirmation with the merchant, order form, seal in the wallet, one submission\n",
    )?;
    let t = Instant::now();
    let a = alice
        .purchase(&merchant, &issuer, false, |form| {
            demo_order(form, &[("TEA-001", 2), ("CUP-002", 1)])
        })
        .await
        .context("purchase A")?;
    let a_time = t.elapsed();
    let a_decision = a.outcome.decision.clone();
    print(&format!(
        "   A  {:<9} {}  2 × tea + 1 cup = {} in 3 instalments, gift to another address → {}, tracking {} ({})\n",
        outcome_word(&a.outcome),
        a.form.order_id,
        yen(a_decision.as_ref().map(|d| d.amount).unwrap_or(0)),
        a.outcome.state,
        a.outcome.tracking_number.as_deref().unwrap_or("-"),
        ms(a_time),
    ))?;
    let t = Instant::now();
    let b = alice
        .purchase(&merchant, &issuer, false, |form| {
            demo_order(form, &[("CUP-002", 29)])
        })
        .await
        .context("purchase B")?;
    let b_reason = b
        .outcome
        .decision
        .as_ref()
        .and_then(|d| d.reason)
        .map(|r| r.as_str())
        .unwrap_or("-");
    print(&format!(
        "   B  {:<9} {}  29 cups = {} over the available credit → {} ({b_reason}); the carrier received nothing ({})\n",
        outcome_word(&b.outcome),
        b.form.order_id,
        yen(29 * 3500),
        b.outcome.state,
        ms(t.elapsed()),
    ))?;
    let t = Instant::now();
    let c = alice
        .purchase(&merchant, &issuer, true, |form| {
            demo_order(form, &[("EBOOK-003", 1)])
        })
        .await
        .context("purchase C")?;
    print(&format!(
        "   C  {:<9} {}  an e-book, no carrier at all (【0052】) → {} ({})\n",
        outcome_word(&c.outcome),
        c.form.order_id,
        c.outcome.state,
        ms(t.elapsed()),
    ))?;
    let tracking = alice
        .tracking(&carrier, &merchant, &a.form.order_id)
        .await
        .context("tracking A at the carrier")?;
    print(&format!(
        "   The cardholder asks the carrier about A with its own key: {} {}, to the destination it sealed ({})\n\n",
        tracking.tracking_number,
        tracking.status,
        if tracking
            .destination
            .as_ref()
            .is_some_and(|d| d.address.expose() == ADDRESS)
        {
            "matches"
        } else {
            "MISMATCH"
        },
    ))?;

    // What each party holds about A, read back from its own database.
    let m_id = merchant.as_str();
    let held_m = holdings::merchant(local.merchant.store().as_ref(), &a.form.order_id).await?;
    let held_i = holdings::issuer(local.issuer.store().as_ref(), m_id, &a.form.order_id).await?;
    let held_c = holdings::carrier(local.carrier.store().as_ref(), m_id, &a.form.order_id).await?;
    let columns: [(Role, &Holdings); 3] = [
        (Role::Merchant, &held_m),
        (Role::Issuer, &held_i),
        (Role::Carrier, &held_c),
    ];
    let matrix = holdings::render(&a.form.policy, &columns);
    print(&format!(
        "5. What each party holds about order A, read back from its own database\n\n{}\n   \
         ✔ holds   ○ received under the disclosure policy, not kept   — never received\n",
        indent(&matrix, "   ")
    ))?;
    let leaks = matrix.contains("LEAK");
    print(&format!("   {}\n", leak_scan(local)))?;
    print(&format!(
        "\nDone in {:.2} s: A {}, B {}, C {}.\n",
        started.elapsed().as_secs_f64(),
        a.outcome.state,
        b.outcome.state,
        c.outcome.state
    ))?;
    let expected = a.outcome.state == "captured"
        && b.outcome.state == "declined"
        && c.outcome.state == "captured";
    if leaks || !expected {
        bail!("the demo did not end as expected (see above)");
    }
    Ok(())
}

/// What the scheme is, in words.
fn scheme_words(scheme: KeyScheme) -> &'static str {
    match scheme {
        KeyScheme::Blom => "Blom's scheme alone, claim 4",
        KeyScheme::Sok => "Sakai–Ohgishi–Kasahara on BLS12-381 alone",
        KeyScheme::Hybrid => {
            "Blom ⊕ Sakai–Ohgishi–Kasahara: breaking a key needs breaking both, each master held by its own center"
        }
    }
}

/// The centers and masters in use and Blom's collusion bound, in words.
fn masters_words(f: &KeyCenterFigures) -> String {
    let at = |d: &Option<std::path::PathBuf>| {
        d.as_ref()
            .map(|d| format!(" in {}", d.display()))
            .unwrap_or_default()
    };
    let blom = f.k.map(|k| {
        format!(
            "Blom center{}: master k = {k} (alone: {})",
            at(&f.blom_center),
            bound_words(k)
        )
    });
    let sok = format!(
        "SOK center{}: master s (no collusion bound)",
        at(&f.sok_center)
    );
    match (blom, f.scheme) {
        (Some(b), KeyScheme::Hybrid) => format!("{b}\n   {sok}"),
        (Some(b), _) => b,
        (None, _) => sok,
    }
}

fn outcome_word(o: &warifu_services::protocol::cardholder_merchant::OrderOutcome) -> &'static str {
    match &o.decision {
        Some(d) if d.approved() => "approved",
        Some(_) => "declined",
        None => "undecided",
    }
}

fn indent(text: &str, pad: &str) -> String {
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

/// Searches each party's SQLite files (with their WAL) for the card number and the address.
fn leak_scan(local: &Local) -> String {
    let mut card = Vec::new();
    let mut dest = Vec::new();
    let mut scanned = false;
    for party in [Party::Merchant, Party::Issuer, Party::Carrier] {
        let mut bytes = Vec::new();
        for f in local.sqlite_files(party) {
            if let Ok(b) = std::fs::read(&f) {
                bytes.extend(b);
                scanned = true;
            }
        }
        let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        if has(CARD_NUMBER) {
            card.push(party.as_str());
        }
        if has(ADDRESS) {
            dest.push(party.as_str());
        }
    }
    if !scanned {
        return "leak scan: (byte scan of database files applies to SQLite only)".into();
    }
    let list = |v: &[&str]| {
        if v.is_empty() {
            "nowhere".to_owned()
        } else {
            v.join(", ")
        }
    };
    format!(
        "leak scan of every database byte (incl. WAL): card number found at: {}; destination found at: {}",
        list(&card),
        list(&dest)
    )
}
