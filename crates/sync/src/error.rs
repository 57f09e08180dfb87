//! Errors of the sync paths: the store's or ClickHouse's, kept as sources.

use scorekeeper_analytics::AnalyticsError;
use scorekeeper_domain::Invalid;
use scorekeeper_jobs::{JobError, RunError};
use scorekeeper_store::StoreError;

use crate::retry::{self, RetryDecision};

pub type Result<T, E = SyncError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("Postgres")]
    Store(#[from] StoreError),
    #[error("ClickHouse")]
    Analytics(#[from] AnalyticsError),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl SyncError {
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Store(e) => e.is_transient(),
            SyncError::Analytics(e) => e.is_transient(),
            SyncError::Invalid(_) => false,
        }
    }
}

/// A failure of a sync path inside a job (a reindex batch, an audit) as the
/// job records it: the backend as the code, the error chain as the message,
/// and retryable when the one retry policy would retry it later.
impl From<SyncError> for RunError {
    fn from(error: SyncError) -> RunError {
        let retryable = matches!(retry::decide(&error, 1), RetryDecision::RetryLater(_));
        let code = match &error {
            SyncError::Store(_) => "postgres",
            // A row the mirror cannot hold: no retry or outage explains it.
            SyncError::Analytics(AnalyticsError::OutOfMirrorRange(_)) => "out_of_mirror_range",
            SyncError::Analytics(_) => "clickhouse",
            SyncError::Invalid(_) => "invalid",
        };
        let message = scorekeeper_domain::report::error_chain(&error);
        RunError::Failed(JobError { code: code.into(), message, retryable, details: serde_json::Value::Null })
    }
}
