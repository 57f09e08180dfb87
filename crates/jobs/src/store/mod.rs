//! The job engine's persistence: [`JobStore`], its own embedded migrations
//! and history table, and the notification channel that wakes workers.
//!
//! It runs on the store's connection pool (one pool per process) but owns
//! its SQL: nothing outside this module reads or writes `jobs`,
//! `job_activities`, `job_partitions` or `schedules`. Errors are the store's
//! ([`StoreError`]), so that which Postgres failures are transient is
//! decided in one place.

mod attempts;
mod partitions;
mod queue;
mod rows;
mod schedules;

use std::sync::Arc;

use deadpool_postgres::Pool;
use scorekeeper_store::{Result, Store, StoreError};
use tokio::sync::Notify;

pub use partitions::PartitionKey;
pub use schedules::tick_dedupe_key;

/// The Postgres channel notified whenever a job is queued or its
/// `run_after` changes. The `jobs_notify` trigger of migration
/// `V1__jobs.sql` (in this crate's `migrations/`) sends it: the two must
/// agree, which a unit test checks.
pub const CHANNEL: &str = "scorekeeper_jobs";

/// The refinery history table of the job engine's migrations (the store
/// keeps its own, `refinery_schema_history`).
pub const MIGRATION_TABLE: &str = "refinery_schema_history_jobs";

/// A duration as the whole milliseconds the tables' `*_ms` columns hold.
fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Arbitrary constant: "scorekeeper job migrations". Serialises processes
/// that migrate at once.
const MIGRATION_LOCK: i64 = 7204190002;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The job tables, on the shared pool. Cheap to clone.
#[derive(Clone)]
pub struct JobStore {
    store: Store,
}

impl JobStore {
    /// The job tables of `store`'s database, through its pool.
    pub fn new(store: &Store) -> JobStore {
        JobStore { store: store.clone() }
    }

    fn pool(&self) -> &Pool {
        self.store.pool()
    }

    /// Applies the job engine's embedded migrations. The store's must have
    /// run first (`jobs` references `customers`): [`migrate_postgres`] does
    /// both. Safe from several processes at once (an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        let mut client = self.pool().get().await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        let outcome = embedded::migrations::runner()
            .set_migration_table_name(MIGRATION_TABLE)
            .run_async(&mut **client)
            .await;
        // A pooled connection goes back to the pool: never keep the lock.
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        let report = outcome.map_err(StoreError::from)?;
        for applied in report.applied_migrations() {
            tracing::info!(migration = %applied, "applied job engine migration");
        }
        Ok(())
    }

    /// Wakes `notify` whenever a job is queued ([`CHANNEL`]), until the
    /// process ends; reconnects after losing Postgres.
    pub async fn listen(&self, notify: Arc<Notify>) {
        self.store.listen_channel(CHANNEL, notify).await
    }
}

/// Migrates the whole Postgres schema: the store's migrations, then the job
/// engine's. The one call for every place that migrates (`serve`,
/// `scorekeeper migrate`, tests, tools).
pub async fn migrate_postgres(store: &Store) -> Result<()> {
    store.migrate().await?;
    JobStore::new(store).migrate().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigger_notifies_the_channel_workers_listen_on() {
        let migration = include_str!("../../migrations/V1__jobs.sql");
        assert!(
            migration.contains(&format!("pg_notify('{CHANNEL}', '')")),
            "V1__jobs.sql must notify {CHANNEL}"
        );
    }
}
