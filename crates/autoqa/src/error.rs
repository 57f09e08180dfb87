//! Errors of an AutoQA call: Postgres's, or a request that cannot be scored.

use scorekeeper_domain::Invalid;
use scorekeeper_store::StoreError;

pub type Result<T, E = AutoQaError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AutoQaError {
    #[error("Postgres")]
    Store(#[from] StoreError),
    /// The request names something that cannot be scored (an unknown
    /// template or conversation, a process template, a rule that does not
    /// compile), named by field.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}
