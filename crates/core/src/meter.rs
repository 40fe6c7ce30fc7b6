//! Where the CPU goes: time spent in short synchronous sections (sealing, sessions, SQLite
//! statements), summed by kind while a benchmark turns the meter on; one relaxed load when off.
//!
//! A section never awaits and is timed by its thread's own CPU clock, so a thread descheduled
//! in the middle of one is not charged for the wait. Nested sections count once, in the
//! outermost.

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

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
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

/// Runs `f`, adding its time to `section` while the meter is on.
#[inline]
pub fn measure<T>(section: Section, f: impl FnOnce() -> T) -> T {
    if !ON.load(Ordering::Relaxed) || INSIDE.with(Cell::get) {
        return f();
    }
    INSIDE.with(|c| c.set(true));
    let started = ThreadTime::now();
    let out = f();
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    INSIDE.with(|c| c.set(false));
    NANOS[section as usize].fetch_add(nanos, Ordering::Relaxed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_when_on_and_nested_sections_once() {
        let spin = || {
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_millis(2) {}
        };
        let before = totals();
        measure(Section::Sealing, spin);
        assert_eq!(totals()[0].1, before[0].1, "off: nothing counted");
        set_enabled(true);
        measure(Section::Sealing, || measure(Section::Session, spin));
        set_enabled(false);
        // Other tests of this binary may run metered code meanwhile, but not for 2 ms.
        let sealing = totals()[0].1 - before[0].1;
        let session = totals()[1].1 - before[1].1;
        assert!(sealing >= Duration::from_millis(2), "{sealing:?}");
        assert!(
            session < Duration::from_millis(2),
            "the nested section counts in the outer: {session:?}"
        );
    }
}
