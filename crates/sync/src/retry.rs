//! The one place that decides whether and when a failed write is retried.

use std::time::Duration;

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

/// Exponential backoff from `BASE` doubling per attempt, capped at `MAX`.
pub const BASE: Duration = Duration::from_millis(200);
pub const MAX: Duration = Duration::from_secs(60);

pub fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    BASE.saturating_mul(factor).min(MAX)
}

/// Decides for the `attempt`-th failure (1-based) of a write.
pub fn decide(error: &SyncError, attempt: u32) -> RetryDecision {
    match error {
        SyncError::Invalid(_) => RetryDecision::Never,
        e if e.is_transient() => RetryDecision::RetryLater(backoff(attempt)),
        _ => RetryDecision::NeedsOperator(MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(5), Duration::from_millis(3200));
        assert_eq!(backoff(30), MAX);
        assert_eq!(backoff(u32::MAX), MAX);
    }

    #[test]
    fn invalid_requests_are_never_retried() {
        let error = SyncError::Invalid(scorekeeper_domain::Invalid::new("x", "y"));
        assert_eq!(decide(&error, 1), RetryDecision::Never);
    }
}
