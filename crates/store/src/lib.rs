//! Postgres, the source of truth: embedded migrations, repositories for
//! tenants, templates, conversations and scorecards, the transactional
//! outbox, and the readers that produce the rows ClickHouse mirrors.
//!
//! The job engine's tables (`jobs`, `job_activities`, `schedules`) are not
//! the store's: `scorekeeper-jobs` owns them, their SQL and their
//! migrations, on this store's pool.
//!
//! Every write that ClickHouse must see is committed together with what makes
//! it reach ClickHouse (an outbox entry), or is read back later by a path
//! that copies it (batch index, reindex). Versions come from Postgres.

pub mod audit;
mod codec;
pub mod console;
pub mod conversations;
pub mod error;
pub mod listen;
pub mod locks;
pub mod mirror;
pub mod outbox;
mod quotas;
pub mod reindex;
pub mod scorecards;
pub mod templates;
pub mod tenants;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub use error::{Result, StoreError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Versions of the store's history that are no longer the store's: the job
/// tables' migrations (V2 jobs, V3 schedules, V4 activity estimates), which
/// moved to `scorekeeper-jobs` with their own history table. Databases
/// created before the move have them recorded here; the runner accepts
/// them as applied but absent, and nothing else (see `migrations/README.md`).
pub const HANDED_OVER_TO_JOBS: [i32; 3] = [2, 3, 4];

/// Refuses a history that this binary does not know: an applied version
/// neither embedded nor handed over (a newer binary migrated this database),
/// or an embedded version below the newest applied one that never ran.
/// refinery's own check is turned off (`set_abort_missing(false)`) because
/// it cannot be told about [`HANDED_OVER_TO_JOBS`]; this one replaces it.
fn check_history(applied: &[(i32, String)], embedded: &[(i32, String)]) -> Result<()> {
    for (version, name) in applied {
        if !HANDED_OVER_TO_JOBS.contains(version) && !embedded.iter().any(|(v, _)| v == version) {
            return Err(StoreError::UnknownMigration { version: *version, name: name.clone() });
        }
    }
    let newest = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
    for (version, name) in embedded {
        if *version < newest && !applied.iter().any(|(v, _)| v == version) {
            return Err(StoreError::SkippedMigration { version: *version, name: name.clone() });
        }
    }
    Ok(())
}

/// A pool of Postgres connections and the repositories on top of it.
/// Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    url: String,
}

impl Store {
    /// Creates the pool; connections are opened lazily, so an unreachable
    /// server shows up on first use, not here.
    pub fn connect(url: &str, max_connections: usize) -> Result<Store> {
        let config: tokio_postgres::Config = url.parse().map_err(StoreError::BadUrl)?;
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Setup(e.to_string()))?;
        Ok(Store { pool, url: url.to_owned() })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Applies the store's embedded migrations (not the job engine's:
    /// `scorekeeper_jobs::migrate_postgres` applies both). Safe to run from
    /// several processes at once: they serialise on an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        let (mut client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        let driver = tokio::spawn(connection);
        // Arbitrary constant: "scorekeeper migrations".
        client.execute("SELECT pg_advisory_lock(7204190001)", &[]).await?;
        let outcome = Store::run_migrations(&mut client).await;
        client.execute("SELECT pg_advisory_unlock(7204190001)", &[]).await?;
        drop(client);
        let _ = driver.await;
        let report = outcome?;
        for applied in report.applied_migrations() {
            tracing::info!(migration = %applied, "applied Postgres migration");
        }
        Ok(())
    }

    async fn run_migrations(client: &mut tokio_postgres::Client) -> Result<refinery::Report> {
        let runner = embedded::migrations::runner().set_abort_missing(false);
        // refinery creates its history table on its first run only.
        let history = client
            .query_one("SELECT to_regclass('refinery_schema_history') IS NOT NULL AS found", &[])
            .await?;
        let applied = if history.try_get("found")? {
            runner.get_applied_migrations_async(client).await?
        } else {
            Vec::new()
        };
        let named = |m: &refinery::Migration| (m.version(), m.name().to_owned());
        let embedded: Vec<_> = runner.get_migrations().iter().map(named).collect();
        check_history(&applied.iter().map(named).collect::<Vec<_>>(), &embedded)?;
        Ok(runner.run_async(client).await?)
    }

    /// Checks that Postgres answers.
    pub async fn ping(&self) -> Result<()> {
        let client = self.pool.get().await?;
        client.execute("SELECT 1", &[]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(numbers: &[i32]) -> Vec<(i32, String)> {
        numbers.iter().map(|&v| (v, format!("v{v}"))).collect()
    }

    #[test]
    fn a_history_with_the_handed_over_job_migrations_is_accepted() {
        let embedded = versions(&[1, 5, 6, 7]);
        assert!(check_history(&versions(&[1, 2, 3, 4, 5, 6, 7]), &embedded).is_ok());
        assert!(check_history(&versions(&[1, 2, 3, 4]), &embedded).is_ok(), "V5-V7 still to apply");
        assert!(check_history(&[], &embedded).is_ok(), "a fresh database");
        assert!(check_history(&versions(&[1, 5, 6, 7]), &embedded).is_ok(), "created after the move");
    }

    #[test]
    fn unknown_or_skipped_versions_are_refused() {
        let embedded = versions(&[1, 5, 6, 7]);
        let newer = check_history(&versions(&[1, 5, 6, 7, 8]), &embedded).unwrap_err();
        assert!(matches!(newer, StoreError::UnknownMigration { version: 8, .. }), "{newer}");
        let skipped = check_history(&versions(&[1, 2, 3, 4, 6, 7]), &embedded).unwrap_err();
        assert!(matches!(skipped, StoreError::SkippedMigration { version: 5, .. }), "{skipped}");
    }
}
