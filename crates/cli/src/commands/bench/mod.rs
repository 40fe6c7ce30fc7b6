//! `warifu bench`: concurrent cardholders buy end to end on a sealed deployment and on the
//! plaintext baseline in the same run; throughput, latency, errors and the privacy overhead.
//!
//! - this module: the arguments, the rounds, the figures and the report;
//! - `target`: the cardholders of an already-running deployment (`--target`).

mod target;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::flags::SchemeArg;
use crate::support::format::print;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use warifu_core::PartyId;
use warifu_core::meter;
use warifu_core::sok::KeyScheme;
use warifu_services::cardholder::Cardholder;
use warifu_services::dev::fixture::{self, card_number, error_code, order_for};
use warifu_services::dev::local::{Local, LocalOptions, Storage};
use warifu_store::Synchronous;

/// `warifu bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Concurrent cardholders, each with its own key and enrolled card.
    #[arg(long, default_value_t = 16)]
    pub cardholders: usize,
    /// Orders per round (each deployment runs `--rounds` rounds).
    #[arg(long, default_value_t = 1000)]
    pub orders: u64,
    /// Run each round for this many seconds instead of a number of orders.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Rounds per deployment, interleaved (sealed, baseline, sealed, baseline, …) so that
    /// machine noise falls on both alike.
    #[arg(long, default_value_t = 2)]
    pub rounds: u32,
    /// The key scheme of the sealed deployment.
    #[arg(long, value_enum, default_value_t = SchemeArg::Hybrid)]
    pub scheme: SchemeArg,
    /// How many counterparties' pairwise keys each party (and cardholder) caches.
    #[arg(long, value_name = "N", default_value_t = warifu_services::keys::DEFAULT_KEY_CACHE)]
    pub key_cache: usize,
    /// Keep the databases in PostgreSQL at this URL (one schema per party and deployment)
    /// instead of SQLite files.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// SQLite durability: `full` (fsync on every commit, the default) or `normal` (a commit
    /// survives a crash of the process but not a power loss).
    #[arg(long, value_enum, default_value_t = SyncArg::Full)]
    pub sync: SyncArg,
    /// Skip the plaintext baseline (no overhead ratio).
    #[arg(long)]
    pub no_baseline: bool,
    /// Where to write `bench.json` and `bench.html`.
    #[arg(long, value_name = "DIR", default_value = "target/warifu-bench")]
    pub out: PathBuf,
    /// Show the services' logs on standard error (a filter such as `warn`).
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Drive an already-running deployment (replicas behind a balancer, PostgreSQL) through
    /// its key center's directory instead of starting one in this process. Needs
    /// --merchant, --issuer and --keys; the plaintext baseline still runs here, in-process.
    #[arg(long, value_name = "DIRECTORY", conflicts_with_all = ["postgres", "sync"])]
    pub target: Option<PathBuf>,
    /// With --target: the merchant to buy from.
    #[arg(long, value_name = "ID", requires = "target")]
    pub merchant: Option<String>,
    /// With --target: the issuer of the bench cards.
    #[arg(long, value_name = "ID", requires = "target")]
    pub issuer: Option<String>,
    /// With --target: the folder of the cardholders' key files, as `warifu keycenter issue
    /// --out DIR cardholder:bench-0@bench.example …` writes them (unsealed).
    #[arg(long, value_name = "DIR", requires = "target")]
    pub keys: Option<PathBuf>,
    /// With --target: the issuer's operator token (first line), to enroll the bench cards it
    /// does not know yet; default WARIFU_OPERATOR_TOKEN.
    #[arg(long, value_name = "FILE", requires = "target")]
    pub operator_token_file: Option<PathBuf>,
}

/// SQLite durability on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    /// `synchronous=FULL`.
    Full,
    /// `synchronous=NORMAL`.
    Normal,
}

const PICKS: &[(&str, u32)] = &[("TEA-001", 1), ("CUP-002", 1)];
const BENCH_HOLDER: &str = "Bench Holder";
const CARD_LIMIT: u64 = 1_000_000_000_000;

/// Which deployment the request log is attributing requests to (0: none).
static MEASURING: AtomicUsize = AtomicUsize::new(0);
/// Per deployment (1: sealed, 2: baseline), per route: (requests, total µs).
type RouteTimes = BTreeMap<String, (u64, u64)>;
static ROUTES: OnceLock<Mutex<[RouteTimes; 3]>> = OnceLock::new();

fn routes() -> &'static Mutex<[RouteTimes; 3]> {
    ROUTES.get_or_init(|| Mutex::new(Default::default()))
}

/// A tracing layer that sums the services' own request log (`service::finish`) per route.
struct RequestLog;

#[derive(Default)]
struct RequestFields {
    path: Option<String>,
    method: Option<String>,
    micros: Option<u64>,
}

impl tracing::field::Visit for RequestFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "path" => self.path = Some(format!("{value:?}")),
            "method" => self.method = Some(format!("{value:?}")),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "path" {
            self.path = Some(value.to_owned());
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "micros" {
            self.micros = Some(value);
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RequestLog {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let which = MEASURING.load(Ordering::Relaxed);
        if which == 0 || !event.metadata().target().starts_with("warifu_services") {
            return;
        }
        let mut f = RequestFields::default();
        event.record(&mut f);
        let (Some(path), Some(micros)) = (f.path, f.micros) else {
            return;
        };
        let route = format!(
            "{} {}",
            f.method.unwrap_or_default(),
            normalize_route(&path)
        );
        let mut all = routes().lock().unwrap_or_else(|p| p.into_inner());
        let e = all[which.min(2)].entry(route).or_default();
        e.0 += 1;
        e.1 += micros;
    }
}

/// A route with its identifiers replaced by `{id}`.
fn normalize_route(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.len() > 12 && s.chars().any(|c| c.is_ascii_digit()) || s.contains(':') {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One order as the cardholder saw it.
struct Sample {
    total_us: u64,
    form_us: u64,
    seal_us: u64,
    submit_us: u64,
    /// The merchant's resting state when approved, or the error code.
    outcome: Result<String, String>,
}

/// A deployment with its cardholders; a local one runs only during its own rounds (stopped
/// and restarted on the same data between them), so the two deployments never share the
/// machine and neither one's background work is charged to the other.
struct Deployment {
    name: &'static str,
    services: Services,
    enrolled: bool,
    cardholders: Vec<(Arc<Cardholder>, String)>,
    rounds: Vec<RoundResult>,
    cpu_secs: f64,
    /// CPU seconds by thread group and mode over the measured rounds (see [`thread_cpu`]).
    cpu_split: BTreeMap<String, f64>,
    /// Seconds in each metered section over the measured rounds ([`meter`]).
    sections: [f64; 4],
}

/// Where a deployment's services run.
enum Services {
    /// In this process, started for each round.
    Local {
        opts: Box<LocalOptions>,
        running: Option<Box<Local>>,
    },
    /// Elsewhere, already running (`--target`).
    Target(target::Target),
}

struct RoundResult {
    wall: Duration,
    tally: Tally,
}

/// What a round's orders add up to: latencies in an HDR histogram (µs, 3 significant
/// digits) instead of every sample, step sums, resting states and error codes.
struct Tally {
    latency_us: Histogram<u64>,
    orders: u64,
    ok: u64,
    form_us: u64,
    seal_us: u64,
    submit_us: u64,
    states: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 µs to 10 min (a longer order is clamped), 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid histogram bounds")),
            orders: 0,
            ok: 0,
            form_us: 0,
            seal_us: 0,
            submit_us: 0,
            states: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    fn add(&mut self, s: Sample) {
        self.orders += 1;
        match s.outcome {
            Ok(state) => {
                self.ok += 1;
                self.latency_us.saturating_record(s.total_us.max(1));
                self.form_us += s.form_us;
                self.seal_us += s.seal_us;
                self.submit_us += s.submit_us;
                *self.states.entry(state).or_insert(0) += 1;
            }
            Err(code) => *self.errors.entry(code).or_insert(0) += 1,
        }
    }

    fn merge(&mut self, o: &Tally) {
        let _ = self.latency_us.add(&o.latency_us);
        self.orders += o.orders;
        self.ok += o.ok;
        self.form_us += o.form_us;
        self.seal_us += o.seal_us;
        self.submit_us += o.submit_us;
        for (k, v) in &o.states {
            *self.states.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
    }
}

/// One purchase, timed per step.
async fn one_order(ch: &Cardholder, number: &str, merchant: &PartyId, issuer: &PartyId) -> Sample {
    let t0 = Instant::now();
    let us = |d: Duration| d.as_micros() as u64;
    let mut s = Sample {
        total_us: 0,
        form_us: 0,
        seal_us: 0,
        submit_us: 0,
        outcome: Err(String::new()),
    };
    let result: Result<String, String> = async {
        let form = ch
            .order_form(merchant, false)
            .await
            .map_err(|e| error_code(&e))?;
        s.form_us = us(t0.elapsed());
        let t1 = Instant::now();
        let order = order_for(&form, PICKS, BENCH_HOLDER, number)
            .map_err(|_| "invalid_order".to_owned())?;
        let sealed = ch
            .seal(&form, &order, issuer)
            .await
            .map_err(|e| error_code(&e))?;
        s.seal_us = us(t1.elapsed());
        let t2 = Instant::now();
        let outcome = ch.submit(&sealed).await.map_err(|e| error_code(&e))?;
        s.submit_us = us(t2.elapsed());
        match &outcome.decision {
            Some(d) if d.approved() => Ok(outcome.state),
            Some(d) => Err(format!(
                "declined:{}",
                d.reason.map(|r| r.as_str()).unwrap_or("-")
            )),
            None => Err(format!("no_decision:{}", outcome.state)),
        }
    }
    .await;
    s.total_us = us(t0.elapsed());
    s.outcome = result;
    s
}

impl Deployment {
    async fn start(
        name: &'static str,
        dir: &Path,
        args: &BenchArgs,
        baseline: bool,
        run_tag: &str,
    ) -> Result<Deployment> {
        let mut opts = LocalOptions::new(&dir.join(name), warifu_core::blom::DEFAULT_K);
        opts.storage = match &args.postgres {
            Some(url) => Storage::Postgres {
                url: url.clone(),
                schema_prefix: format!("warifu_bench_{run_tag}_{name}"),
            },
            None => Storage::Sqlite,
        };
        opts.synchronous = match args.sync {
            SyncArg::Full => Synchronous::Full,
            SyncArg::Normal => Synchronous::Normal,
        };
        opts.scheme = KeyScheme::from(args.scheme);
        opts.key_cache = args.key_cache;
        opts.plaintext_baseline = baseline;
        let services = match &args.target {
            Some(file) if !baseline => Services::Target(target::Target::open(args, file)?),
            _ => Services::Local {
                opts: Box::new(opts),
                running: None,
            },
        };
        let mut d = Deployment {
            name,
            services,
            enrolled: false,
            cardholders: Vec::new(),
            rounds: Vec::new(),
            cpu_secs: 0.0,
            cpu_split: BTreeMap::new(),
            sections: [0.0; 4],
        };
        d.up(args.cardholders).await?;
        d.down().await;
        Ok(d)
    }

    /// Starts the services (enrolling the cards the first time) and the cardholders' clients.
    async fn up(&mut self, cardholders: usize) -> Result<()> {
        let (opts, running) = match &mut self.services {
            Services::Local { opts, running } => (opts, running),
            // The target runs on: its cardholders are loaded (and enrolled) once.
            Services::Target(t) => {
                if !self.enrolled {
                    self.cardholders = t.cardholders(cardholders).await?;
                    self.enrolled = true;
                }
                return Ok(());
            }
        };
        let local = Local::start((**opts).clone())
            .await
            .with_context(|| format!("cannot start the {} deployment", self.name))?;
        self.cardholders.clear();
        for i in 0..cardholders {
            let id = target::cardholder_id(i)?;
            let number = card_number(i);
            if !self.enrolled {
                local
                    .enroll(
                        &format!("card-{i}"),
                        &id,
                        BENCH_HOLDER,
                        &number,
                        fixture::EXPIRY,
                        CARD_LIMIT,
                        "JPY",
                    )
                    .await
                    .with_context(|| format!("enrolling the card of {id}"))?;
            }
            self.cardholders
                .push((Arc::new(local.cardholder(&id)?), number));
        }
        self.enrolled = true;
        *running = Some(Box::new(local));
        Ok(())
    }

    /// Stops the local services (finishing in-flight requests) and drops their cardholders.
    async fn down(&mut self) {
        if let Services::Local { running, .. } = &mut self.services {
            self.cardholders.clear();
            if let Some(l) = running.take() {
                l.stop().await;
            }
        }
    }

    /// The merchant and the issuer the cardholders buy from and pay through.
    fn parties(&self) -> Result<(PartyId, PartyId)> {
        match &self.services {
            Services::Target(t) => Ok((t.merchant.clone(), t.issuer.clone())),
            Services::Local {
                running: Some(l), ..
            } => Ok((l.merchant.id().clone(), l.issuer.id().clone())),
            Services::Local { running: None, .. } => {
                bail!("the {} deployment is not running", self.name)
            }
        }
    }

    /// Whether the services run in this process (their CPU and request log are measured).
    fn in_process(&self) -> bool {
        matches!(self.services, Services::Local { .. })
    }

    /// Each cardholder buys once (handshakes, key caches, connections), unmeasured.
    async fn warm_up(&self) -> Result<()> {
        let (merchant, issuer) = self.parties()?;
        let mut tasks = Vec::new();
        for (ch, number) in &self.cardholders {
            let (ch, number, m, i) = (ch.clone(), number.clone(), merchant.clone(), issuer.clone());
            tasks.push(tokio::spawn(async move {
                one_order(&ch, &number, &m, &i).await.outcome
            }));
        }
        for t in tasks {
            if let Err(code) = t.await.context("a warm-up task failed")? {
                bail!(
                    "the {} deployment refused a warm-up order: {code}",
                    self.name
                );
            }
        }
        Ok(())
    }

    async fn round(&mut self, args: &BenchArgs, index: usize, label: &str) -> Result<()> {
        self.up(args.cardholders).await?;
        let result = self.measure(args, index, label).await;
        self.down().await;
        result
    }

    async fn measure(&mut self, args: &BenchArgs, index: usize, label: &str) -> Result<()> {
        self.warm_up().await?;
        let (merchant, issuer) = self.parties()?;
        let next = Arc::new(AtomicU64::new(0));
        let pb = match args.duration {
            Some(secs) => ProgressBar::new((secs * 1000.0) as u64)
                .with_style(style("{prefix:>22} [{bar:30}] {elapsed:>4} {msg}")),
            None => ProgressBar::new(args.orders).with_style(style(
                "{prefix:>22} [{bar:30}] {pos}/{len} orders {per_sec:>12} eta {eta}",
            )),
        };
        pb.set_prefix(label.to_owned());
        let started = Instant::now();
        let deadline = args.duration.map(|s| started + Duration::from_secs_f64(s));
        let cpu0 = process_cpu_secs();
        let split0 = thread_cpu();
        let sections0 = meter::totals();
        meter::set_enabled(true);
        MEASURING.store(index, Ordering::Relaxed);
        let mut tasks = Vec::new();
        for (ch, number) in &self.cardholders {
            let (ch, number, m, i) = (ch.clone(), number.clone(), merchant.clone(), issuer.clone());
            let (next, pb, orders) = (next.clone(), pb.clone(), args.orders);
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    match deadline {
                        Some(d) if Instant::now() >= d => break,
                        Some(d) => {
                            let done = d.saturating_duration_since(Instant::now());
                            let total = pb.length().unwrap_or(0);
                            pb.set_position(total.saturating_sub(done.as_millis() as u64));
                        }
                        None if next.fetch_add(1, Ordering::Relaxed) >= orders => break,
                        None => {}
                    }
                    let s = one_order(&ch, &number, &m, &i).await;
                    if deadline.is_none() {
                        pb.inc(1);
                    } else {
                        let n = next.fetch_add(1, Ordering::Relaxed) + 1;
                        let secs = started.elapsed().as_secs_f64().max(1e-3);
                        pb.set_message(format!("{n} orders, {:.0} orders/s", n as f64 / secs));
                    }
                    tally.add(s);
                }
                tally
            }));
        }
        let mut tally = Tally::new();
        for t in tasks {
            tally.merge(&t.await.context("a cardholder task failed")?);
        }
        let wall = started.elapsed();
        MEASURING.store(0, Ordering::Relaxed);
        meter::set_enabled(false);
        for (sum, ((_, now), (_, before))) in self
            .sections
            .iter_mut()
            .zip(meter::totals().iter().zip(&sections0))
        {
            *sum += now.saturating_sub(*before).as_secs_f64();
        }
        self.cpu_secs += process_cpu_secs() - cpu0;
        for (k, v) in thread_cpu() {
            let before = split0.get(&k).copied().unwrap_or(0.0);
            *self.cpu_split.entry(k).or_insert(0.0) += (v - before).max(0.0);
        }
        pb.finish_and_clear();
        let ok = tally.ok;
        print(&format!(
            "{label:>22}: {ok} orders in {:.2} s = {:.0} orders/s, p99 {:.1} ms\n",
            wall.as_secs_f64(),
            ok as f64 / wall.as_secs_f64(),
            tally.latency_us.value_at_quantile(0.99) as f64 / 1000.0
        ))?;
        self.rounds.push(RoundResult { wall, tally });
        Ok(())
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The process's user + system CPU time from `/proc/self/stat` (Linux; 0 elsewhere).
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here; USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of this process's live threads by group and mode, from `/proc/self/task`
/// (Linux; empty elsewhere). The attribution is by thread, so approximate: each SQLite
/// database's writer thread runs the write transactions' SQL in user mode and the fsyncs and
/// file writes in kernel mode; the async workers do HTTP, sessions and their MACs, sealing
/// and opening, JSON, the services' logic and the SQLite reads (user), and sockets and
/// wake-ups (kernel). The cardholders' sealing is measured apart (the seal step's mean).
fn thread_cpu() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        // Linux keeps 15 bytes of a thread's name: "sqlite-writer-m" is the merchant's.
        let group = if name.starts_with("sqlite-writer") {
            "SQLite writer threads"
        } else if name.starts_with("tokio") {
            "async workers"
        } else {
            "other threads"
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 here; USER_HZ is 100.
        *out.entry(format!("{group}, user")).or_insert(0.0) += ticks(11) / 100.0;
        *out.entry(format!("{group}, kernel")).or_insert(0.0) += ticks(12) / 100.0;
    }
    out
}

/// The figures of one deployment over all its rounds.
#[derive(Debug, Serialize)]
struct Figures {
    name: String,
    scheme: String,
    /// Whether the services ran in this process: if not (`--target`), the CPU figures are
    /// the cardholders' alone and there is no request log.
    in_process: bool,
    orders_ok: usize,
    orders_failed: usize,
    wall_secs: f64,
    orders_per_sec: f64,
    rounds_orders_per_sec: Vec<f64>,
    latency_ms: BTreeMap<String, f64>,
    steps_mean_ms: BTreeMap<String, f64>,
    cpu_ms_per_order: f64,
    /// CPU ms per order by thread group and mode (see [`thread_cpu`]).
    cpu_split_ms_per_order: BTreeMap<String, f64>,
    /// Ms per order in each metered section ([`meter::Section::label`]), and the rest of the
    /// async workers' CPU (HTTP, JSON, the services' logic, wake-ups).
    cpu_sections_ms_per_order: Vec<(String, f64)>,
    states: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    server_routes_mean_ms: BTreeMap<String, (u64, f64)>,
    #[serde(skip)]
    latency_us: Histogram<u64>,
}

fn figures(d: &Deployment, scheme: &str, routes: &RouteTimes) -> Figures {
    let mut all = Tally::new();
    for r in &d.rounds {
        all.merge(&r.tally);
    }
    let wall: f64 = d.rounds.iter().map(|r| r.wall.as_secs_f64()).sum();
    let h = &all.latency_us;
    let at = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1000.0
        }
    };
    let mean = |sum: u64| {
        if all.ok == 0 {
            0.0
        } else {
            sum as f64 / all.ok as f64 / 1000.0
        }
    };
    let latency_ms = BTreeMap::from([
        ("p50".to_owned(), at(0.50)),
        ("p95".to_owned(), at(0.95)),
        ("p99".to_owned(), at(0.99)),
        ("max".to_owned(), h.max() as f64 / 1000.0),
        ("mean".to_owned(), h.mean() / 1000.0),
    ]);
    let steps_mean_ms = BTreeMap::from([
        ("1 order form (merchant)".to_owned(), mean(all.form_us)),
        ("2 seal (cardholder)".to_owned(), mean(all.seal_us)),
        (
            "3 submit (merchant → issuer → carrier)".to_owned(),
            mean(all.submit_us),
        ),
    ]);
    Figures {
        name: d.name.to_owned(),
        scheme: scheme.to_owned(),
        in_process: d.in_process(),
        orders_ok: all.ok as usize,
        orders_failed: (all.orders - all.ok) as usize,
        wall_secs: wall,
        orders_per_sec: if wall > 0.0 {
            all.ok as f64 / wall
        } else {
            0.0
        },
        rounds_orders_per_sec: d
            .rounds
            .iter()
            .map(|r| r.tally.ok as f64 / r.wall.as_secs_f64().max(1e-9))
            .collect(),
        latency_ms,
        steps_mean_ms,
        cpu_ms_per_order: if all.orders == 0 {
            0.0
        } else {
            d.cpu_secs * 1000.0 / all.orders as f64
        },
        cpu_split_ms_per_order: d
            .cpu_split
            .iter()
            .map(|(k, v)| (k.clone(), v * 1000.0 / all.orders.max(1) as f64))
            .collect(),
        cpu_sections_ms_per_order: sections_per_order(d, all.orders),
        states: all.states,
        errors: all.errors,
        server_routes_mean_ms: routes
            .iter()
            .map(|(k, (n, us))| (k.clone(), (*n, *us as f64 / (*n).max(1) as f64 / 1000.0)))
            .collect(),
        latency_us: all.latency_us,
    }
}

/// Ms per order in each metered section, then the async workers' CPU left outside the
/// sections run on them (sealing, sessions, SQLite reads): HTTP client and server, JSON, the
/// services' logic, the kernel's socket work and wake-ups.
fn sections_per_order(d: &Deployment, orders: u64) -> Vec<(String, f64)> {
    let per_order = |secs: f64| secs * 1000.0 / orders.max(1) as f64;
    let mut out: Vec<(String, f64)> = meter::Section::ALL
        .iter()
        .zip(d.sections)
        .map(|(s, secs)| (s.label().to_owned(), per_order(secs)))
        .collect();
    let workers: f64 = d
        .cpu_split
        .iter()
        .filter(|(k, _)| k.starts_with("async workers"))
        .map(|(_, v)| v)
        .sum();
    // Every section but the writer threads' statements runs on the async workers.
    let on_workers: f64 = meter::Section::ALL
        .iter()
        .zip(d.sections)
        .filter(|(s, _)| **s != meter::Section::SqlWrite)
        .map(|(_, secs)| secs)
        .sum();
    out.push((
        "HTTP, JSON, logic (rest)".to_owned(),
        per_order((workers - on_workers).max(0.0)),
    ));
    out
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    command: String,
    machine: String,
    cardholders: usize,
    rounds: u32,
    orders_per_round: Option<u64>,
    seconds_per_round: Option<f64>,
    storage: String,
    sqlite_synchronous: String,
    sealed: Figures,
    baseline: Option<Figures>,
    /// sealed time per order ÷ baseline time per order − 1 (throughput overhead).
    overhead_throughput: Option<f64>,
    /// sealed p50 ÷ baseline p50 − 1.
    overhead_p50: Option<f64>,
    /// The main limit on throughput, in words.
    limits: Vec<String>,
}

/// Runs `warifu bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.cardholders == 0 || args.rounds == 0 || (args.duration.is_none() && args.orders == 0) {
        bail!("--cardholders, --rounds and --orders must be at least 1");
    }
    if args.duration.is_some_and(|d| !(d > 0.0 && d < 86_400.0)) {
        bail!("--duration must be a positive number of seconds");
    }
    let fmt = args.log.as_ref().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::new(f))
    });
    let collect = RequestLog.with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("warifu_services", tracing::Level::DEBUG),
    );
    let _ = tracing_subscriber::registry()
        .with(collect)
        .with(fmt)
        .try_init();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = rt.block_on(bench(args, threads))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let json = serde_json::to_string_pretty(&report)?;
    let jpath = args.out.join("bench.json");
    std::fs::write(&jpath, json).with_context(|| format!("cannot write {}", jpath.display()))?;
    let hpath = args.out.join("bench.html");
    std::fs::write(&hpath, html(&report))
        .with_context(|| format!("cannot write {}", hpath.display()))?;
    print(&text(&report))?;
    print(&format!(
        "\nreport: {} and {}\n",
        hpath.display(),
        jpath.display()
    ))?;
    Ok(())
}

async fn bench(args: &BenchArgs, threads: usize) -> Result<Report> {
    let tmp = tempfile::Builder::new()
        .prefix("warifu-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let tag = std::process::id().to_string();
    let scheme = KeyScheme::from(args.scheme);
    print(&format!(
        "warifu bench: {} cardholders, {} round(s) per deployment of {}, {} storage{}\n",
        args.cardholders,
        args.rounds,
        match args.duration {
            Some(s) => format!("{s} s"),
            None => format!("{} orders", args.orders),
        },
        match (&args.target, &args.postgres) {
            (Some(t), _) => format!("the target of {}; the baseline's SQLite", t.display()),
            (None, Some(_)) => "PostgreSQL".to_owned(),
            (None, None) => "SQLite".to_owned(),
        },
        if args.postgres.is_none() {
            format!(" (synchronous={:?})", args.sync).to_lowercase()
        } else {
            String::new()
        },
    ))?;
    let name = if args.target.is_some() {
        "target"
    } else {
        "sealed"
    };
    let mut sealed = Deployment::start(name, tmp.path(), args, false, &tag).await?;
    let mut baseline = if args.no_baseline {
        None
    } else {
        Some(Deployment::start("baseline", tmp.path(), args, true, &tag).await?)
    };
    let result = async {
        for r in 0..args.rounds {
            sealed
                .round(args, 1, &format!("{name} ({scheme}) #{}", r + 1))
                .await?;
            if let Some(b) = &mut baseline {
                b.round(args, 2, &format!("plaintext baseline #{}", r + 1))
                    .await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    let routes = routes().lock().unwrap_or_else(|p| p.into_inner()).clone();
    let sealed_fig = figures(&sealed, scheme.as_str(), &routes[1]);
    let base_fig = baseline
        .as_ref()
        .map(|b| figures(b, "plaintext_baseline", &routes[2]));
    sealed.down().await;
    if let Some(b) = &mut baseline {
        b.down().await;
    }
    result?;
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b - 1.0);
    let overhead_throughput = base_fig
        .as_ref()
        .and_then(|b| ratio(b.orders_per_sec, sealed_fig.orders_per_sec));
    let overhead_p50 = base_fig
        .as_ref()
        .and_then(|b| ratio(sealed_fig.latency_ms["p50"], b.latency_ms["p50"]));
    let limits = limits(&sealed_fig, threads);
    Ok(Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: format!("{threads} CPU threads, {}", std::env::consts::ARCH),
        cardholders: args.cardholders,
        rounds: args.rounds,
        orders_per_round: args.duration.is_none().then_some(args.orders),
        seconds_per_round: args.duration,
        storage: if let Some(t) = &args.target {
            format!("the target's own (directory {})", t.display())
        } else if args.postgres.is_some() {
            "postgresql".into()
        } else {
            "sqlite".into()
        },
        sqlite_synchronous: format!("{:?}", args.sync).to_lowercase(),
        sealed: sealed_fig,
        baseline: base_fig,
        overhead_throughput,
        overhead_p50,
        limits,
    })
}

/// What limits throughput, read off the figures.
fn limits(f: &Figures, threads: usize) -> Vec<String> {
    let mut out = Vec::new();
    if !f.in_process {
        out.push(format!(
            "CPU: {:.2} ms per order in this process, the cardholders' alone; the services' CPU \
             is measured on their hosts (e.g. `pidstat -u 1`)",
            f.cpu_ms_per_order
        ));
        out.extend(load_average());
        return out;
    }
    let cpu_bound = f.orders_per_sec * f.cpu_ms_per_order / 1000.0;
    out.push(format!(
        "CPU: {:.2} ms of CPU per order (client, services and storage in this one process) × {:.0} orders/s = {:.2} of {threads} cores busy{}",
        f.cpu_ms_per_order,
        f.orders_per_sec,
        cpu_bound,
        if cpu_bound > 0.8 * threads as f64 {
            ": CPU-bound"
        } else {
            ": not CPU-bound (waiting on storage commits or the network)"
        }
    ));
    if f.cpu_ms_per_order > 0.0 {
        out.push(format!(
            "ceiling: with all {threads} cores to itself this process could do at most {:.0} orders/s at that CPU cost",
            threads as f64 * 1000.0 / f.cpu_ms_per_order
        ));
    }
    out.extend(load_average());
    let mut routes: Vec<_> = f.server_routes_mean_ms.iter().collect();
    routes.sort_by(|a, b| (b.1.1 * b.1.0 as f64).total_cmp(&(a.1.1 * a.1.0 as f64)));
    for (route, (n, ms)) in routes.into_iter().take(4) {
        out.push(format!(
            "server time {route}: {n} requests, mean {ms:.2} ms"
        ));
    }
    out
}

/// The machine's load average, in words (Linux).
fn load_average() -> Option<String> {
    let load = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(format!(
        "machine load average at the end (1/5/15 min): {} — other processes share the cores",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:+.1} %", v * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn text(r: &Report) -> String {
    let mut s = String::from("\n");
    let cols: Vec<&Figures> = std::iter::once(&r.sealed)
        .chain(r.baseline.as_ref())
        .collect();
    let _ = writeln!(
        s,
        "{:<40}{}",
        "",
        cols.iter()
            .map(|f| format!("{:>32}", format!("{} ({})", f.name, f.scheme)))
            .collect::<String>()
    );
    let row = |s: &mut String, name: &str, v: &dyn Fn(&Figures) -> String| {
        let _ = writeln!(
            s,
            "{name:<40}{}",
            cols.iter()
                .map(|f| format!("{:>32}", v(f)))
                .collect::<String>()
        );
    };
    row(&mut s, "orders completed", &|f| f.orders_ok.to_string());
    row(&mut s, "orders/s", &|f| format!("{:.0}", f.orders_per_sec));
    row(&mut s, "orders/s per round", &|f| {
        f.rounds_orders_per_sec
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    for p in ["p50", "p95", "p99", "max"] {
        row(&mut s, &format!("latency {p} (ms)"), &|f| {
            format!("{:.2}", f.latency_ms[p])
        });
    }
    let cpu = if r.sealed.in_process {
        "CPU per order (ms)"
    } else {
        "CPU per order in this process (ms)"
    };
    row(&mut s, cpu, &|f| format!("{:.2}", f.cpu_ms_per_order));
    for group in r.sealed.cpu_split_ms_per_order.keys() {
        row(&mut s, &format!("  CPU {group} (ms)"), &|f| {
            format!(
                "{:.2}",
                f.cpu_split_ms_per_order.get(group).copied().unwrap_or(0.0)
            )
        });
    }
    for (i, (label, _)) in r.sealed.cpu_sections_ms_per_order.iter().enumerate() {
        row(&mut s, &format!("  in {label} (ms)"), &|f| {
            let v = f.cpu_sections_ms_per_order.get(i).map_or(0.0, |(_, v)| *v);
            format!("{v:.2}")
        });
    }
    for step in r.sealed.steps_mean_ms.keys() {
        row(&mut s, &format!("mean {step} (ms)"), &|f| {
            format!("{:.2}", f.steps_mean_ms.get(step).copied().unwrap_or(0.0))
        });
    }
    row(&mut s, "resting states", &|f| {
        f.states
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    row(&mut s, "errors by code", &|f| {
        if f.errors.is_empty() {
            "none".into()
        } else {
            f.errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    });
    let _ = writeln!(
        s,
        "\nserver time per route (the services' request log, mean ms):"
    );
    let mut keys: Vec<&String> = r.sealed.server_routes_mean_ms.keys().collect();
    if let Some(b) = &r.baseline {
        keys.extend(b.server_routes_mean_ms.keys());
    }
    keys.sort();
    keys.dedup();
    for k in keys {
        row(&mut s, &format!("  {k}"), &|f| {
            f.server_routes_mean_ms
                .get(k)
                .map(|(n, ms)| format!("{ms:.2} ×{n}"))
                .unwrap_or_else(|| "-".into())
        });
    }
    if r.baseline.is_some() && r.sealed.in_process {
        let _ = writeln!(
            s,
            "\nprivacy overhead: throughput {} (baseline orders/s ÷ sealed − 1), p50 latency {}",
            pct(r.overhead_throughput),
            pct(r.overhead_p50)
        );
    } else if r.baseline.is_some() {
        let _ = writeln!(
            s,
            "\ntarget against the in-process plaintext baseline of this run: throughput {}, p50 \
             latency {} (not the privacy overhead alone: the target's processes, storage and \
             network differ)",
            pct(r.overhead_throughput),
            pct(r.overhead_p50)
        );
    }
    let _ = writeln!(s, "\nwhat limits throughput:");
    for l in &r.limits {
        let _ = writeln!(s, "  - {l}");
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The latency histogram of both runs overlaid, log-spaced bins, as inline SVG.
fn svg(r: &Report) -> String {
    let runs: Vec<(&Figures, &str)> = std::iter::once((&r.sealed, "#c0392b"))
        .chain(r.baseline.as_ref().map(|b| (b, "#2471a3")))
        .collect();
    let lo = runs
        .iter()
        .filter(|(f, _)| !f.latency_us.is_empty())
        .map(|(f, _)| f.latency_us.min())
        .min()
        .unwrap_or(1)
        .max(1) as f64;
    let hi = runs
        .iter()
        .map(|(f, _)| f.latency_us.max())
        .max()
        .unwrap_or(2)
        .max(2) as f64;
    let hi = hi.max(lo * 1.01);
    const BINS: usize = 48;
    let (w, h, left, bottom) = (760.0, 300.0, 50.0, 40.0);
    let (pw, ph) = (w - left - 10.0, h - bottom - 20.0);
    let bin = |v: u64| {
        let x = ((v.max(1) as f64).ln() - lo.ln()) / (hi.ln() - lo.ln());
        ((x * BINS as f64) as usize).min(BINS - 1)
    };
    let hists: Vec<Vec<f64>> = runs
        .iter()
        .map(|(f, _)| {
            let mut counts = vec![0.0; BINS];
            for v in f.latency_us.iter_recorded() {
                counts[bin(v.value_iterated_to())] += v.count_at_value() as f64;
            }
            let n = f.latency_us.len().max(1) as f64;
            counts.iter().map(|c| c / n).collect()
        })
        .collect();
    let top = hists
        .iter()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{left}" y="20" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    let bw = pw / BINS as f64;
    for ((_, color), hist) in runs.iter().zip(&hists) {
        for (i, v) in hist.iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            let bh = v / top * ph;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.45"/>"#,
                left + i as f64 * bw,
                20.0 + ph - bh,
                bw,
                bh
            );
        }
    }
    for i in 0..=6 {
        let frac = i as f64 / 6.0;
        let v = (lo.ln() + frac * (hi.ln() - lo.ln())).exp() / 1000.0;
        let x = left + frac * pw;
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{v:.2}</text>"##,
            20.0 + ph,
            24.0 + ph,
            36.0 + ph
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency per order, ms (log scale)</text>"#,
        left + pw / 2.0,
        h - 2.0
    );
    let _ = write!(
        s,
        r#"<text x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">share of orders</text>"#,
        20.0 + ph / 2.0,
        20.0 + ph / 2.0
    );
    for (i, (f, color)) in runs.iter().enumerate() {
        let y = 32.0 + 16.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="10" fill="{color}" fill-opacity="0.6"/><text x="{:.1}" y="{:.1}">{} ({}): p50 {:.2} ms, p99 {:.2} ms</text>"#,
            left + pw - 330.0,
            y - 9.0,
            left + pw - 314.0,
            y,
            esc(&f.name),
            esc(&f.scheme),
            f.latency_ms["p50"],
            f.latency_ms["p99"]
        );
    }
    s.push_str("</svg>");
    s
}

fn html(r: &Report) -> String {
    let body = esc(&text(r));
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>warifu bench</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:62em}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style>\
         </head><body><h1>warifu bench</h1><p><code>{}</code><br>{} cardholders, {}, {} ({})</p>\
         <h2>Latency histogram</h2>{}<h2>Figures</h2><pre>{}</pre></body></html>\n",
        esc(&r.command),
        r.cardholders,
        esc(&r.machine),
        esc(&r.storage),
        esc(&r.sqlite_synchronous),
        svg(r),
        body
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_lose_their_identifiers() {
        assert_eq!(
            normalize_route("/v1/authorizations/ord-0123456789abcdef/capture"),
            "/v1/authorizations/{id}/capture"
        );
        assert_eq!(normalize_route("/v1/orders"), "/v1/orders");
    }

    #[test]
    fn a_tally_keeps_percentiles_without_the_samples() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        for i in 1..=100u64 {
            let t = if i % 2 == 0 { &mut a } else { &mut b };
            t.add(Sample {
                total_us: i * 1000,
                form_us: 1,
                seal_us: 2,
                submit_us: 3,
                outcome: Ok("captured".into()),
            });
        }
        b.add(Sample {
            total_us: 5,
            form_us: 0,
            seal_us: 0,
            submit_us: 0,
            outcome: Err("busy".into()),
        });
        a.merge(&b);
        assert_eq!((a.orders, a.ok), (101, 100));
        let p50 = a.latency_us.value_at_quantile(0.5) as f64;
        let p99 = a.latency_us.value_at_quantile(0.99) as f64;
        assert!((p50 - 50_000.0).abs() <= 50.0, "{p50}");
        assert!((p99 - 99_000.0).abs() <= 99.0, "{p99}");
        assert_eq!(a.states["captured"], 100);
        assert_eq!(a.errors["busy"], 1);
        assert_eq!(a.seal_us, 200);
    }
}
