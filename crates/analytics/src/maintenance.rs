//! Changes to ClickHouse data outside the write path, for tests and tools
//! (never the service): deleting rows by hand, dropping a database. On a
//! cluster they act on the local tables `ON CLUSTER`: 18.16 refuses
//! `ALTER … ON CLUSTER` on a Distributed table ("isn't replicated"), and a
//! plain `DROP DATABASE` would leave the other nodes' copies.

use std::time::{Duration, Instant};

use crate::error::{AnalyticsError, Result};
use crate::{Analytics, ClickHouseConfig, cluster, server_client};

/// How long [`Analytics::delete_rows`] waits for its mutation.
const MUTATION_WAIT: Duration = Duration::from_secs(30);

impl Analytics {
    /// Deletes `table`'s rows matching `condition` (SQL of the caller's
    /// own making) with `ALTER TABLE … DELETE`, and waits until they are
    /// gone: a mutation is applied in the background. On a cluster the
    /// mutation runs on every node's local table; through the replicas'
    /// log it reaches a node that is down when it returns.
    pub async fn delete_rows(&self, table: &str, condition: &str) -> Result<()> {
        let statement = delete_statement(&self.config, table, condition);
        server_client(&self.config).query(&statement).execute().await.map_err(AnalyticsError::from_query)?;
        let started = Instant::now();
        loop {
            let left: u64 = self
                .client()
                .query(&format!("SELECT count() FROM {table} WHERE {condition}"))
                .fetch_one()
                .await
                .map_err(AnalyticsError::from_query)?;
            if left == 0 {
                return Ok(());
            }
            if started.elapsed() > MUTATION_WAIT {
                return Err(AnalyticsError::MutationNotApplied {
                    table: table.to_owned(),
                    within: MUTATION_WAIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `ALTER TABLE … DELETE` of `table`'s rows matching `condition` in
/// the database of `config`: on a cluster, of every node's local table.
/// The mutation runs in the background; its rows go some time after.
pub fn delete_statement(config: &ClickHouseConfig, table: &str, condition: &str) -> String {
    let database = &config.database;
    match &config.cluster {
        None => format!("ALTER TABLE {database}.{table} DELETE WHERE {condition}"),
        Some(cluster) => format!(
            "ALTER TABLE {database}.{} ON CLUSTER {cluster} DELETE WHERE {condition}",
            cluster::local_table(table)
        ),
    }
}

/// Drops the database of `config`, on every node of its cluster if it has
/// one. Dropping a replicated table also removes its replica from ZooKeeper.
pub async fn drop_database(config: &ClickHouseConfig) -> Result<()> {
    let statement = match &config.cluster {
        None => format!("DROP DATABASE IF EXISTS {}", config.database),
        Some(name) => format!("DROP DATABASE IF EXISTS {} ON CLUSTER {name}", config.database),
    };
    server_client(config).query(&statement).execute().await.map_err(AnalyticsError::from_query)
}
