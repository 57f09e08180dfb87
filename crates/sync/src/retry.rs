//! The one place that decides whether and when a failed write of a sync
//! path is retried: [`decide`] classifies, [`BACKOFF`] paces. The waiting
//! itself is `scorekeeper_retry`'s, shared with the job engine.

use std::time::Duration;

use scorekeeper_retry::Backoff;

use crate::error::SyncError;

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// A passing fault (server down, timeout, overload): try again after the delay.
    RetryLater(Duration),
    /// The request itself is refused (schema, credentials, bad data): it will
    /// not succeed until an operator acts. Work that must not be lost (the
    /// outbox) still retries, at the slowest pace, and alerts.
    NeedsOperator(Duration),
    /// Retrying cannot help and nothing is lost by giving up (a request the
    /// caller must correct).
    Never,
}

/// 200 ms doubling per attempt, capped at 60 s.
pub const BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(60));

/// The slowest pace: work that waits for an operator retries at it.
pub const MAX: Duration = BACKOFF.max();

/// Decides for the `attempt`-th failure (1-based) of a write.
pub fn decide(error: &SyncError, attempt: u32) -> RetryDecision {
    match error {
        SyncError::Invalid(_) => RetryDecision::Never,
        e if e.is_transient() => RetryDecision::RetryLater(BACKOFF.delay(attempt)),
        _ => RetryDecision::NeedsOperator(MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(BACKOFF.delay(1), Duration::from_millis(200));
        assert_eq!(BACKOFF.delay(2), Duration::from_millis(400));
        assert_eq!(BACKOFF.delay(5), Duration::from_millis(3200));
        assert_eq!(BACKOFF.delay(30), MAX);
        assert_eq!(BACKOFF.delay(u32::MAX), MAX);
    }

    #[test]
    fn invalid_requests_are_never_retried() {
        let error = SyncError::Invalid(scorekeeper_domain::Invalid::new("x", "y"));
        assert_eq!(decide(&error, 1), RetryDecision::Never);
    }
}
