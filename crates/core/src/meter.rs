//! Where the CPU goes: time spent in short synchronous sections (sealing, sessions, SQLite
//! statements), summed by kind while a benchmark turns the meter on; one relaxed load when off.
//!
//! A section never awaits and is timed by its thread's own CPU clock, so a thread descheduled
//! in the middle of one is not charged for the wait. Nested sections count once, in the
//! outermost.
//!
//! Reading a thread's CPU clock is a system call (≈ 1 µs), and an order runs some hundred
//! sections: timing each one cost ≈ 3 % of the benchmark's CPU. So each thread times one
//! section in [`SAMPLE_EVERY`] on average, after a random gap of 1 to 2 × `SAMPLE_EVERY` − 1
//! sections, and counts it for the whole gap: an unbiased estimate of the total.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cpu_time::ThreadTime;

/// What a measured section does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Sealing an order's parts and opening one (HPKE, pairwise keys, commitments).
    Sealing,
    /// Session work: handshakes, tickets, record encryption and request/response MACs.
    Session,
    /// SQLite statements run on the caller's thread (reads).
    SqlRead,
    /// SQLite statements run on a database's writer thread (the write transactions, without
    /// their BEGIN, savepoints and COMMIT).
    SqlWrite,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 4] = [
        Section::Sealing,
        Section::Session,
        Section::SqlRead,
        Section::SqlWrite,
    ];

    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Section::Sealing => "sealing, opening parts",
            Section::Session => "sessions, MACs",
            Section::SqlRead => "SQLite reads",
            Section::SqlWrite => "SQLite writes",
        }
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// One section in this many is timed, on average.
pub const SAMPLE_EVERY: u32 = 8;

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    /// Sections still to pass before the next timed one, and the length of the current gap.
    static GAP: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
    /// This thread's xorshift state for the gaps (seeded on first use).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A gap of 1 to 2 × [`SAMPLE_EVERY`] − 1 sections, uniformly.
fn next_gap() -> u32 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            // Any odd, thread-distinct seed will do: the gaps need no secrecy.
            static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
            x = SEED.fetch_add(0x6a09_e667_f3bc_c909, Ordering::Relaxed) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        1 + u32::try_from(x % u64::from(2 * SAMPLE_EVERY - 1)).unwrap_or(0)
    })
}

/// Turns the meter on or off (a benchmark's measured rounds).
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// The time measured so far in each section.
pub fn totals() -> [(Section, Duration); 4] {
    Section::ALL.map(|s| {
        (
            s,
            Duration::from_nanos(NANOS[s as usize].load(Ordering::Relaxed)),
        )
    })
}

/// Runs `f`, adding its time (sampled, see the module's note) to `section` while the meter
/// is on.
#[inline]
pub fn measure<T>(section: Section, f: impl FnOnce() -> T) -> T {
    if !ON.load(Ordering::Relaxed) || INSIDE.with(Cell::get) {
        return f();
    }
    let weight = GAP.with(|g| {
        let (left, len) = g.get();
        if left > 1 {
            g.set((left - 1, len));
            return None;
        }
        let next = next_gap();
        g.set((next, next));
        // The first gap of a thread was never drawn: it counts as an average one.
        Some(if len == 0 { SAMPLE_EVERY } else { len })
    });
    // Sections nested in this one are part of it, timed or not.
    INSIDE.with(|c| c.set(true));
    let timed = weight.map(|w| (w, ThreadTime::now()));
    let out = f();
    if let Some((w, t)) = timed {
        let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        NANOS[section as usize].fetch_add(nanos.saturating_mul(u64::from(w)), Ordering::Relaxed);
    }
    INSIDE.with(|c| c.set(false));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy for `d` of this thread's CPU time.
    fn spin(d: Duration) {
        let t = ThreadTime::now();
        while t.elapsed() < d {}
    }

    #[test]
    fn counts_only_when_on_and_nested_sections_once() {
        let before = totals();
        measure(Section::Sealing, || spin(Duration::from_millis(2)));
        assert_eq!(totals()[0].1, before[0].1, "off: nothing counted");
        // 400 sections of 0.1 ms of CPU each, a nested one inside each: 40 ms in all.
        set_enabled(true);
        for _ in 0..400 {
            measure(Section::Sealing, || {
                measure(Section::Session, || spin(Duration::from_micros(100)))
            });
        }
        set_enabled(false);
        let sealing = totals()[0].1 - before[0].1;
        let session = totals()[1].1 - before[1].1;
        // About 50 of the 400 are timed, each for its gap (1 to 15 sections, 8 on average):
        // the estimate's spread is ≈ 8 %, so these bounds are some 6 spreads away.
        assert!(
            sealing >= Duration::from_millis(20) && sealing <= Duration::from_millis(80),
            "{sealing:?}"
        );
        // Other tests of this binary may run metered code meanwhile, but not for 2 ms.
        assert!(
            session < Duration::from_millis(2),
            "the nested section counts in the outer: {session:?}"
        );
    }

    #[test]
    fn the_gaps_average_sample_every() {
        let gaps: Vec<u32> = (0..8000).map(|_| next_gap()).collect();
        assert!(gaps.iter().all(|g| (1..2 * SAMPLE_EVERY).contains(g)));
        let mean = f64::from(gaps.iter().sum::<u32>()) / 8000.0;
        assert!((mean - f64::from(SAMPLE_EVERY)).abs() < 0.3, "{mean}");
    }
}
