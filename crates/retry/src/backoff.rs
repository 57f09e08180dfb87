//! Exponential backoff: `base`, doubling per consecutive failure, capped.

use std::time::Duration;

/// Delays that start at `base` and double per consecutive failure up to
/// `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

/// Doublings stop here (2^20 × base), far beyond any `max` in use, so the
/// arithmetic never overflows.
const MAX_DOUBLINGS: u32 = 20;

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max }
    }

    pub const fn base(&self) -> Duration {
        self.base
    }

    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The delay after the `failures`-th failure in a row (1-based):
    /// `base`, `2 × base`, `4 × base`, …, never above `max`. 0 counts as 1.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(MAX_DOUBLINGS);
        self.base.saturating_mul(2u32.pow(doublings)).min(self.max)
    }

    /// The same delays, capped at `max` as well.
    pub fn capped(self, max: Duration) -> Backoff {
        Backoff { base: self.base, max: self.max.min(max) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(60));
        assert_eq!(backoff.delay(0), Duration::from_millis(200));
        assert_eq!(backoff.delay(1), Duration::from_millis(200));
        assert_eq!(backoff.delay(2), Duration::from_millis(400));
        assert_eq!(backoff.delay(5), Duration::from_millis(3200));
        assert_eq!(backoff.delay(30), Duration::from_secs(60));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn capping_lowers_only_the_maximum() {
        let backoff =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(300)).capped(Duration::from_secs(5));
        assert_eq!(
            (backoff.delay(1), backoff.delay(3), backoff.delay(10)),
            (Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(5))
        );
        assert_eq!(backoff.capped(Duration::from_secs(600)).max(), Duration::from_secs(5));
    }
}
