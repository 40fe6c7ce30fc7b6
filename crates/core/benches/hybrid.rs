//! Criterion benchmarks of the SOK and hybrid key schemes against Blom alone (k = the
//! default), per pairwise key and per order, with HPKE X25519 open as the baseline; then the
//! ratios issue 6 asks for, measured in interleaved rounds so they share the machine's noise.
//!
//! `cargo bench -p warifu-core --bench hybrid` (`WARIFU_BENCH_ROUNDS` sets the ratio rounds).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cpu_time::ThreadTime;
use criterion::Criterion;

use common::Baselines;
use common::timing::{median, quantile, time};
use warifu_core::blom::{DEFAULT_K, Master};
use warifu_core::keycache::CachedKeys;
use warifu_core::keysource::{KeySource, PairwiseKey, pairwise_key};
use warifu_core::order::{Card, CatalogItem, Destination, Expiry, Order, OrderForm, PaymentMethod};
use warifu_core::policy::Policy;
use warifu_core::rand::OsRandom;
use warifu_core::sealed::{ForIssuer, ForwardedPart, SealedOrder, seal};
use warifu_core::sok::{KeyScheme, SokMaster, hybrid};
use warifu_core::{PartyId, Role};

const DEFAULT_ROUNDS: usize = 31;

fn id(s: &str) -> PartyId {
    PartyId::parse(s).expect("a valid identifier")
}

/// One scheme's deployment: the cardholder's and the issuer's key sources (plain and behind
/// a warm cache) and one forwarded issuer part sealed in that scheme.
struct Mode {
    scheme: KeyScheme,
    cardholder: Box<dyn KeySource>,
    cardholder_cached: CachedKeys<Box<dyn KeySource>>,
    issuer: Box<dyn KeySource>,
    issuer_cached: CachedKeys<Box<dyn KeySource>>,
    forwarded: ForwardedPart,
}

struct Setup {
    modes: Vec<Mode>,
    merchant: PartyId,
    cardholder: PartyId,
    issuer_id: PartyId,
    form: OrderForm,
    order: Order,
    now: u64,
    /// The merchant's key sources (the hi side of the cardholder–merchant pair).
    merchant_keys: Vec<Box<dyn KeySource>>,
}

impl Setup {
    fn new() -> Setup {
        let blom = Master::generate(DEFAULT_K, &mut OsRandom).expect("Blom master");
        let sok = SokMaster::generate(&mut OsRandom).expect("SOK master");
        let cardholder = id("cardholder:hanako@mail.example");
        let merchant = id("merchant:shop.example");
        let issuer_id = id("issuer:bank.example");
        let source = |who: &PartyId, scheme: KeyScheme| -> Box<dyn KeySource> {
            match scheme {
                KeyScheme::Blom => Box::new(blom.personal_key(who)),
                KeyScheme::Sok => Box::new(sok.personal_key(who)),
                KeyScheme::Hybrid => {
                    Box::new(hybrid(blom.personal_key(who), sok.personal_key(who)).expect("hybrid"))
                }
            }
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let form = OrderForm {
            order_id: "ord-bench-hybrid".into(),
            merchant: merchant.clone(),
            carrier: Some(id("carrier:post.example")),
            accepted_issuers: vec![issuer_id.clone()],
            currency: "JPY".into(),
            catalog: vec![
                CatalogItem {
                    product_number: "P-1".into(),
                    name: "Sencha, 100 g".into(),
                    unit_price: 1200,
                    ships: true,
                },
                CatalogItem {
                    product_number: "P-2".into(),
                    name: "Tea cup".into(),
                    unit_price: 800,
                    ships: true,
                },
            ],
            expires_at: now + 86_400,
            policy: Policy::patent_default(),
        };
        let (lines, amount) = Order::lines_from(&form, &[("P-1", 2), ("P-2", 1)]).expect("lines");
        let order = Order {
            cardholder_name: "Hanako Yamada".into(),
            cardholder_address: "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001".into(),
            telephone: "+81-3-0000-0000".into(),
            fax: Some("+81-3-0000-0001".into()),
            card: Card {
                number: "4111111111111111".into(),
                expiry: Expiry {
                    year: 2099,
                    month: 12,
                },
            },
            lines,
            amount,
            currency: "JPY".into(),
            payment_method: PaymentMethod::Installments { count: 3 },
            destination: Some(Destination {
                addressee: "Taro Suzuki".into(),
                address: "2-2 Umeda, Kita-ku, Osaka 530-0001".into(),
            }),
        };
        let modes = KeyScheme::ALL
            .into_iter()
            .map(|scheme| {
                let ch = source(&cardholder, scheme);
                let forwarded = seal(&form, &order, &issuer_id, &ch, now, &mut OsRandom)
                    .expect("seal")
                    .forward(Role::Issuer)
                    .expect("issuer part");
                let mode = Mode {
                    scheme,
                    cardholder: ch,
                    cardholder_cached: CachedKeys::new(source(&cardholder, scheme), 64),
                    issuer: source(&issuer_id, scheme),
                    issuer_cached: CachedKeys::new(source(&issuer_id, scheme), 64),
                    forwarded,
                };
                // Warm the caches: the cardholder has met the three recipients, the issuer
                // the cardholder.
                mode.seal_cached(&form, &order, &issuer_id, now);
                mode.open_cached(&form.policy);
                mode
            })
            .collect();
        let merchant_keys = KeyScheme::ALL
            .into_iter()
            .map(|s| source(&merchant, s))
            .collect();
        Setup {
            modes,
            merchant,
            cardholder,
            issuer_id,
            form,
            order,
            now,
            merchant_keys,
        }
    }

    fn seal(&self, m: &Mode) -> SealedOrder {
        seal(
            black_box(&self.form),
            black_box(&self.order),
            &self.issuer_id,
            &m.cardholder,
            self.now,
            &mut OsRandom,
        )
        .expect("seal")
    }
}

impl Mode {
    fn seal_cached(&self, form: &OrderForm, order: &Order, issuer: &PartyId, now: u64) {
        seal(
            black_box(form),
            black_box(order),
            issuer,
            &self.cardholder_cached,
            now,
            &mut OsRandom,
        )
        .expect("seal");
    }

    /// The issuer derives the key with the cardholder, then opens its part.
    fn open(&self, policy: &Policy) {
        black_box(&self.forwarded)
            .open::<ForIssuer>(policy, &self.issuer)
            .expect("open");
    }

    /// The issuer takes the key from its cache, then opens its part.
    fn open_cached(&self, policy: &Policy) {
        let key = self
            .issuer_cached
            .pairwise(&self.forwarded.header.cardholder)
            .expect("key");
        black_box(&self.forwarded)
            .open_with_key::<ForIssuer>(policy, &key)
            .expect("open");
    }

    fn cached_key(&self, peer: &PartyId) -> PairwiseKey {
        self.cardholder_cached
            .pairwise(black_box(peer))
            .expect("key")
    }
}

fn criterion_benches(c: &mut Criterion, s: &Setup, base: &Baselines) {
    let mut g = c.benchmark_group("pairwise key");
    for (m, merchant_side) in s.modes.iter().zip(&s.merchant_keys) {
        g.bench_function(format!("{} (cardholder, lo)", m.scheme), |b| {
            b.iter(|| pairwise_key(&m.cardholder, black_box(&s.merchant)).expect("key"))
        });
        g.bench_function(format!("{} (merchant, hi)", m.scheme), |b| {
            b.iter(|| pairwise_key(merchant_side, black_box(&s.cardholder)).expect("key"))
        });
        g.bench_function(format!("{} from cache", m.scheme), |b| {
            b.iter(|| m.cached_key(&s.merchant))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("order");
    for m in &s.modes {
        g.bench_function(format!("seal 3 parts, {}", m.scheme), |b| {
            b.iter(|| s.seal(m))
        });
        g.bench_function(format!("seal 3 parts, {} cached", m.scheme), |b| {
            b.iter(|| m.seal_cached(&s.form, &s.order, &s.issuer_id, s.now))
        });
        g.bench_function(format!("open issuer part, {}", m.scheme), |b| {
            b.iter(|| m.open(&s.form.policy))
        });
        g.bench_function(format!("open issuer part, {} cached", m.scheme), |b| {
            b.iter(|| m.open_cached(&s.form.policy))
        });
    }
    g.bench_function("baseline: HPKE X25519/ChaCha20 open", |b| {
        b.iter(|| base.hpke_open())
    });
    g.finish();
}

/// One operation timed in interleaved rounds, by the thread's CPU time (what the operation
/// costs, robust to other processes on a shared machine) and by wall time.
struct Op<'a> {
    name: &'static str,
    run: Box<dyn FnMut() + 'a>,
    iters: u64,
    cpu: Vec<f64>,
    wall: Vec<f64>,
}

/// CPU time one batch aims at.
const BATCH: Duration = Duration::from_millis(3);

impl<'a> Op<'a> {
    fn new(name: &'static str, run: impl FnMut() + 'a) -> Op<'a> {
        Op {
            name,
            run: Box::new(run),
            iters: 1,
            cpu: Vec::new(),
            wall: Vec::new(),
        }
    }

    fn batch(&mut self, iters: u64) -> (Duration, Duration) {
        let (cpu, wall) = (ThreadTime::now(), Instant::now());
        for _ in 0..iters {
            (self.run)();
        }
        (cpu.elapsed(), wall.elapsed())
    }

    fn calibrate(&mut self) {
        let mut iters = 1u64;
        loop {
            let (cpu, _) = self.batch(iters);
            if cpu >= BATCH / 4 || iters >= 1 << 30 {
                let per = cpu.as_secs_f64() / iters as f64;
                self.iters = ((BATCH.as_secs_f64() / per).ceil() as u64).max(1);
                return;
            }
            iters *= 2;
        }
    }

    fn measure(&mut self) {
        let (cpu, wall) = self.batch(self.iters);
        self.cpu.push(cpu.as_secs_f64() * 1e9 / self.iters as f64);
        self.wall.push(wall.as_secs_f64() * 1e9 / self.iters as f64);
    }
}

/// Calibrates, then runs `rounds` rounds, rotating which operation goes first.
fn run(ops: &mut [Op<'_>], rounds: usize) {
    ops.iter_mut().for_each(Op::calibrate);
    let n = ops.len();
    for round in 0..rounds {
        for i in 0..n {
            ops[(i + round) % n].measure();
        }
    }
}

/// Median, p25 and p75 of the per-round ratio a / b.
fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let v: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (median(&v), quantile(&v, 0.25), quantile(&v, 0.75))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn ratios(s: &Setup, base: &Baselines, rounds: usize) {
    let [blom, sok, hyb] = [&s.modes[0], &s.modes[1], &s.modes[2]];
    let policy = &s.form.policy;
    let mut ops = vec![
        Op::new("key: blom", || {
            black_box(pairwise_key(&blom.cardholder, &s.merchant).expect("k"));
        }),
        Op::new("key: sok (lo side)", || {
            black_box(pairwise_key(&sok.cardholder, &s.merchant).expect("k"));
        }),
        Op::new("key: sok (hi side)", || {
            black_box(pairwise_key(&s.merchant_keys[1], &s.cardholder).expect("k"));
        }),
        Op::new("key: hybrid (lo side)", || {
            black_box(pairwise_key(&hyb.cardholder, &s.merchant).expect("k"));
        }),
        Op::new("key: hybrid (hi side)", || {
            black_box(pairwise_key(&s.merchant_keys[2], &s.cardholder).expect("k"));
        }),
        Op::new("key: blom cached", || {
            black_box(blom.cached_key(&s.merchant));
        }),
        Op::new("key: hybrid cached", || {
            black_box(hyb.cached_key(&s.merchant));
        }),
        Op::new("seal: blom", || {
            black_box(s.seal(blom));
        }),
        Op::new("seal: hybrid", || {
            black_box(s.seal(hyb));
        }),
        Op::new("seal: hybrid cached", || {
            hyb.seal_cached(&s.form, &s.order, &s.issuer_id, s.now)
        }),
        Op::new("open: blom", || blom.open(policy)),
        Op::new("open: sok", || sok.open(policy)),
        Op::new("open: hybrid", || hyb.open(policy)),
        Op::new("open: blom cached", || blom.open_cached(policy)),
        Op::new("open: hybrid cached", || hyb.open_cached(policy)),
        Op::new("open: HPKE X25519 (baseline)", || {
            black_box(base.hpke_open());
        }),
    ];
    run(&mut ops, rounds);
    let cpu = |name: &str| -> &[f64] {
        &ops.iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("no op {name}"))
            .cpu
    };
    println!("\n== issue 6: SOK and hybrid, k = {DEFAULT_K}, {rounds} interleaved rounds ==");
    println!(
        "{:<32} {:>12} {:>12}",
        "median per call", "CPU time", "wall time"
    );
    for op in &ops {
        println!(
            "{:<32} {:>12} {:>12}",
            op.name,
            time(median(&op.cpu)),
            time(median(&op.wall))
        );
    }
    println!("\nratios of CPU time (median of per-round ratios, p25–p75):");
    let pr = |label: &str, a: &str, b: &str| {
        let (m, lo, hi) = ratio(cpu(a), cpu(b));
        println!("{label:<54} {m:>8.3}×  ({lo:.3}–{hi:.3})");
        m
    };
    pr(
        "hybrid key (lo) / blom key",
        "key: hybrid (lo side)",
        "key: blom",
    );
    pr(
        "hybrid key (lo) / sok key (lo)",
        "key: hybrid (lo side)",
        "key: sok (lo side)",
    );
    pr(
        "hybrid key (lo) / HPKE open",
        "key: hybrid (lo side)",
        "open: HPKE X25519 (baseline)",
    );
    pr(
        "hybrid cached key / blom cached key",
        "key: hybrid cached",
        "key: blom cached",
    );
    pr("seal hybrid / seal blom", "seal: hybrid", "seal: blom");
    pr(
        "seal hybrid cached / seal blom",
        "seal: hybrid cached",
        "seal: blom",
    );
    pr("open hybrid / open blom", "open: hybrid", "open: blom");
    pr(
        "open hybrid / HPKE open",
        "open: hybrid",
        "open: HPKE X25519 (baseline)",
    );
    pr(
        "open hybrid cached / HPKE open",
        "open: hybrid cached",
        "open: HPKE X25519 (baseline)",
    );
    let cached = pr(
        "open hybrid cached / open blom cached (target ≤ 1.2)",
        "open: hybrid cached",
        "open: blom cached",
    );
    let first = median(cpu("key: hybrid (lo side)")).max(median(cpu("key: hybrid (hi side)")));
    println!();
    println!(
        "target: hybrid first contact ≤ 1 ms per pairwise key: {} (slower side {} CPU)",
        verdict(first <= 1e6),
        time(first)
    );
    println!(
        "target: cached hybrid open within 1.2× of cached Blom open: {} ({cached:.3}×)",
        verdict(cached <= 1.2)
    );
}

fn main() {
    let rounds = std::env::var("WARIFU_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n >= 3)
        .unwrap_or(DEFAULT_ROUNDS);
    eprintln!("setting up (a Blom master at k = {DEFAULT_K}, a SOK master, an RSA-2048 key) …");
    let s = Setup::new();
    let len = s.modes[0].forwarded.part.ciphertext.len() - 16;
    let base = Baselines::new(len, s.modes[0].forwarded.header.encode());
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .configure_from_args();
    criterion_benches(&mut c, &s, &base);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once to see that it works; skip the ratios.
    if !std::env::args().any(|a| a == "--test") {
        ratios(&s, &base, rounds);
    }
}
