//! Errors of an AutoQA call: Postgres's, a request that cannot be scored,
//! a call refused for want of a slot, or a call stopped by its budget.

use scorekeeper_domain::Invalid;
use scorekeeper_store::StoreError;

use crate::budget::Stopped;
use crate::calls::Busy;

pub type Result<T, E = AutoQaError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AutoQaError {
    #[error("Postgres")]
    Store(#[from] StoreError),
    /// The request names something that cannot be scored (an unknown
    /// template or conversation, a process template, a rule that does not
    /// compile or that the cost model refuses), named by field.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Too many calls in progress, for the customer or the process.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The call's budget ran out before every conversation was scored;
    /// nothing was written.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// The `outcome` label of `scorekeeper_autoqa_calls_total` for a call that
/// ended with `error` (`None`: it succeeded).
pub(crate) fn outcome(error: Option<&AutoQaError>) -> &'static str {
    match error {
        None => "ok",
        Some(AutoQaError::Invalid(_)) => "invalid",
        Some(AutoQaError::Busy(_)) => "busy",
        Some(AutoQaError::Stopped(Stopped::ClientDeadline)) => "client_deadline",
        Some(AutoQaError::Stopped(Stopped::Ceiling(_))) => "ceiling",
        Some(AutoQaError::Stopped(Stopped::Cancelled)) => "cancelled",
        Some(AutoQaError::Store(_)) => "error",
    }
}
