//! Postgres, the source of truth: embedded migrations, repositories for
//! tenants, templates, conversations and scorecards, the transactional
//! outbox, and the readers that produce the rows ClickHouse mirrors.
//!
//! Every write that ClickHouse must see is committed together with what makes
//! it reach ClickHouse (an outbox entry), or is read back later by a path
//! that copies it (batch index, reindex). Versions come from Postgres.

pub mod audit;
mod codec;
pub mod conversations;
pub mod error;
pub mod jobs;
pub mod mirror;
pub mod outbox;
pub mod reindex;
pub mod schedules;
pub mod scorecards;
pub mod templates;
pub mod tenants;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub use error::{Result, StoreError};

mod embedded {
    refinery::embed_migrations!("migrations");
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

    /// Applies the embedded migrations. Safe to run from several processes at
    /// once: they serialise on an advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        let (mut client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        let driver = tokio::spawn(connection);
        // Arbitrary constant: "scorekeeper migrations".
        client.execute("SELECT pg_advisory_lock(7204190001)", &[]).await?;
        let outcome = embedded::migrations::runner().run_async(&mut client).await;
        client.execute("SELECT pg_advisory_unlock(7204190001)", &[]).await?;
        drop(client);
        let _ = driver.await;
        let report = outcome?;
        for applied in report.applied_migrations() {
            tracing::info!(migration = %applied, "applied Postgres migration");
        }
        Ok(())
    }

    /// Checks that Postgres answers.
    pub async fn ping(&self) -> Result<()> {
        let client = self.pool.get().await?;
        client.execute("SELECT 1", &[]).await?;
        Ok(())
    }
}
