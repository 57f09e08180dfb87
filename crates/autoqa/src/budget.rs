//! What one AutoscoreConversations call may spend: until the client's
//! deadline or the server's ceiling, whichever comes first, and not past
//! the moment the client goes away.
//!
//! Scoring runs on pool threads that cannot be cancelled from outside, so
//! the budget is a flag and a deadline they read before each message they
//! search; [`Budget::cancel_on_drop`] raises the flag when the call's
//! future is dropped (tonic drops it when the client cancels or its
//! deadline passes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long before the client's deadline the budget ends (at most a tenth
/// of what the deadline leaves).
pub const CLIENT_DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// Why a call's scoring stopped before it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("the client's deadline passed")]
    ClientDeadline,
    #[error("the call reached the server's AutoQA time limit of {}s per call (AUTOQA_CALL_TIMEOUT_SECONDS); score fewer conversations per call", .0.as_secs())]
    Ceiling(Duration),
    #[error("the client cancelled the call")]
    Cancelled,
}

/// The budget of one call; clones share it.
#[derive(Clone, Debug)]
pub struct Budget {
    deadline: Instant,
    /// Whether `deadline` is the client's (else the server's ceiling).
    client_deadline: bool,
    ceiling: Duration,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    /// A budget starting now: `client` is what the client's deadline leaves
    /// (from `grpc-timeout`), `ceiling` the server's limit per call. The
    /// budget ends a little before the client's deadline
    /// ([`CLIENT_DEADLINE_MARGIN`]), so the call answers DEADLINE_EXCEEDED
    /// itself rather than being dropped by the server's timer at the
    /// deadline (tonic answers that CANCELLED).
    pub fn start(client: Option<Duration>, ceiling: Duration) -> Budget {
        let now = Instant::now();
        let client = client.map(|left| left - CLIENT_DEADLINE_MARGIN.min(left / 10));
        let (until, client_deadline) = match client {
            Some(client) if client < ceiling => (client, true),
            _ => (ceiling, false),
        };
        Budget {
            deadline: now + until,
            client_deadline,
            ceiling,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `Err` once the call must stop, saying why.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(Stopped::Cancelled)
        } else if Instant::now() < self.deadline {
            Ok(())
        } else if self.client_deadline {
            Err(Stopped::ClientDeadline)
        } else {
            Err(Stopped::Ceiling(self.ceiling))
        }
    }

    /// A guard that cancels the budget when dropped.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.cancelled.clone())
    }
}

/// Cancels its budget when dropped: held by the call's future, so a call
/// abandoned by its client stops its scoring too.
#[derive(Debug)]
pub struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearer_deadline_decides_and_is_named() {
        let budget = Budget::start(Some(Duration::ZERO), Duration::from_secs(60));
        assert_eq!(budget.check(), Err(Stopped::ClientDeadline));
        let budget = Budget::start(Some(Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(budget.check(), Err(Stopped::Ceiling(Duration::ZERO)));
        let budget = Budget::start(None, Duration::from_secs(60));
        assert_eq!(budget.check(), Ok(()));
    }

    #[test]
    fn dropping_the_guard_cancels_every_clone() {
        let budget = Budget::start(None, Duration::from_secs(60));
        let worker_side = budget.clone();
        let guard = budget.cancel_on_drop();
        assert_eq!(worker_side.check(), Ok(()));
        drop(guard);
        assert_eq!(worker_side.check(), Err(Stopped::Cancelled));
    }
}
