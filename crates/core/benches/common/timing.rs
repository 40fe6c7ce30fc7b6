//! A small interleaved timer: each operation runs in batches of about 2 ms, the batches of all
//! operations alternate round by round so that they share the machine's noise.

use std::time::{Duration, Instant};

/// Wall time one batch of one operation aims at.
pub const BATCH: Duration = Duration::from_millis(2);

/// One timed operation.
pub struct Op<'a> {
    /// What is timed.
    pub name: String,
    run: Box<dyn FnMut() + 'a>,
    iters: u64,
    /// Nanoseconds per call, one entry per round.
    pub ns: Vec<f64>,
}

impl<'a> Op<'a> {
    /// An operation named `name`.
    pub fn new(name: impl Into<String>, run: impl FnMut() + 'a) -> Op<'a> {
        Op {
            name: name.into(),
            run: Box::new(run),
            iters: 1,
            ns: Vec::new(),
        }
    }

    /// Runs `iters` calls and returns the wall time.
    fn batch(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            (self.run)();
        }
        start.elapsed()
    }

    /// Warms up and picks the batch size so a batch lasts about [`BATCH`].
    pub fn calibrate(&mut self) {
        let mut iters = 1u64;
        loop {
            let t = self.batch(iters);
            if t >= BATCH / 4 || iters >= 1 << 40 {
                let per = t.as_secs_f64() / iters as f64;
                self.iters = ((BATCH.as_secs_f64() / per).ceil() as u64).max(1);
                return;
            }
            iters *= 2;
        }
    }

    /// Times one batch and records the time per call.
    pub fn measure(&mut self) {
        let t = self.batch(self.iters);
        self.ns.push(t.as_secs_f64() * 1e9 / self.iters as f64);
    }
}

/// The `q` quantile of `v`, interpolated.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The median of `v`.
pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// A duration in ns, printed with a fitting unit.
pub fn time(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.2} ns"),
        n if n < 1e6 => format!("{:.2} µs", n / 1e3),
        n => format!("{:.2} ms", n / 1e6),
    }
}

/// Calibrates every operation, then measures `rounds` interleaved rounds, rotating the
/// starting point so that no operation always runs first or last.
pub fn run(ops: &mut [Op<'_>], rounds: usize) {
    for op in ops.iter_mut() {
        op.calibrate();
    }
    let n = ops.len();
    for round in 0..rounds {
        for i in 0..n {
            ops[(i + round) % n].measure();
        }
    }
}

/// The per-round ratio `a[r] / b[r]`: median, p25 and p75.
pub fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let v: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (median(&v), quantile(&v, 0.25), quantile(&v, 0.75))
}
