//! The paths that bring Postgres rows into ClickHouse, all through
//! `Analytics::write`: the outbox dispatcher (API and AutoQA changes), batch
//! indexing of conversations, reindex jobs; and the drift
//! [`audit`] that finds what they missed. The retry policy for all of them
//! lives in [`retry`].

pub mod audit;
pub mod batch_index;
pub mod error;
pub mod metrics;
pub mod outbox;
pub mod reindex;
pub mod retry;
pub mod schedule_setting;

pub use error::{Result, SyncError};

use scorekeeper_analytics::Analytics;
use scorekeeper_store::Store;

/// The job handlers this service runs, by job type.
pub fn job_registry(
    store: Store,
    analytics: Analytics,
    settings: reindex::ReindexSettings,
) -> scorekeeper_jobs::Registry {
    scorekeeper_jobs::Registry::new()
        .register(reindex::ReindexHandler::new(store.clone(), analytics.clone(), settings))
        .register(audit::job::AuditHandler::new(store, analytics))
}
