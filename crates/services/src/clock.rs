//! The one clock every party reads: the system's, or a manual one that tests set and move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Unix time in milliseconds. [`Clock::system`] (the default) reads the system clock;
/// [`Clock::manual`] stands still until a test moves it, so that form and session expiry,
/// the outbox's due times and backoff follow the test's schedule, not wall time. Clones
/// share one hand.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl core::fmt::Debug for Clock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(t) => write!(f, "Clock::manual({})", t.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock at `start_ms` that moves only by [`Clock::advance`] and [`Clock::set`].
    pub fn manual(start_ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(start_ms))))
    }

    /// The time now, in milliseconds since 1970 (0 before it).
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            None => system_ms(),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// The time now, in whole seconds since 1970 (0 before it).
    pub fn now_unix(&self) -> u64 {
        u64::try_from(self.now_ms() / 1000).unwrap_or(0)
    }

    /// Moves a manual clock on by `by`. Returns false (and does nothing) for the system
    /// clock, which no one moves.
    pub fn advance(&self, by: Duration) -> bool {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.as_ref().is_some_and(|t| {
            t.fetch_add(ms, Ordering::SeqCst);
            true
        })
    }

    /// Sets a manual clock to `ms`. Returns false (and does nothing) for the system clock.
    pub fn set(&self, ms: i64) -> bool {
        self.0.as_ref().is_some_and(|t| {
            t.store(ms, Ordering::SeqCst);
            true
        })
    }
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = Clock::manual(1_000_000);
        let shared = c.clone();
        assert_eq!((c.now_ms(), c.now_unix()), (1_000_000, 1_000));
        assert!(c.advance(Duration::from_millis(2_500)));
        assert_eq!(shared.now_ms(), 1_002_500);
        assert!(shared.set(5));
        assert_eq!((c.now_ms(), c.now_unix()), (5, 0));
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let c = Clock::system();
        let before = c.now_ms();
        assert!(!c.advance(Duration::from_secs(3600)));
        assert!(!c.set(0));
        assert!(c.now_ms() >= before && c.now_ms() < before + 60_000);
    }
}
