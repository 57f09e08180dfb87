//! Errors of the sync paths: the store's or ClickHouse's, kept as sources.

use scorekeeper_analytics::AnalyticsError;
use scorekeeper_domain::Invalid;
use scorekeeper_store::StoreError;

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
