//! ClickHouse, the analytics copy: the schema (`sql/schema`), the row
//! encodings, the one insert path every writer calls, and the readers of
//! statistics (`sql/queries`).
//!
//! Rows are idempotent: tables are `ReplacingMergeTree(version)` keyed by
//! (customer_id, id) with an `is_deleted` tombstone column, and versions come
//! from Postgres, so any path may write again, late or out of order, and the
//! highest version wins. Readers use `FINAL`.
//!
//! The target is one server, or a cluster (`ClickHouseConfig::cluster`):
//! see the `cluster` module for what changes there.

pub mod activity;
pub mod audit;
mod cluster;
pub mod error;
pub mod maintenance;
pub mod metrics;
pub mod rows;
mod schema;
#[cfg(test)]
mod select_list;
pub mod stats;
pub mod topology;
pub mod writer;

pub use error::{AnalyticsError, Result};
pub use writer::WritePath;

use std::sync::{Arc, OnceLock};

/// Where ClickHouse is and who we are there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    /// `CLICKHOUSE_CLUSTER`: the cluster (a name in the servers'
    /// `<remote_servers>`) whose nodes hold the tables, `url` being one of
    /// them. `None`: one server.
    pub cluster: Option<String>,
}

/// A handle on the analytics database. Cheap to clone.
#[derive(Clone)]
pub struct Analytics {
    client: clickhouse::Client,
    config: ClickHouseConfig,
    /// On a cluster, the server's name of the synchronous insert setting,
    /// once asked (the `cluster` module); shared by the clones.
    sync_insert: Arc<OnceLock<&'static str>>,
}

/// Whether `name` may stand in SQL as it is (database and cluster names).
fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Analytics {
    /// Checks the settings; connects lazily.
    pub fn new(config: ClickHouseConfig) -> Result<Analytics> {
        if !is_identifier(&config.database) {
            return Err(AnalyticsError::BadDatabaseName(config.database.clone()));
        }
        if let Some(cluster) = config.cluster.as_deref().filter(|c| !is_identifier(c)) {
            return Err(AnalyticsError::BadClusterName(cluster.to_owned()));
        }
        let client = server_client(&config).with_database(&config.database);
        Ok(Analytics { client, config, sync_insert: Arc::default() })
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// The underlying client, on this database, for this crate's readers
    /// and writers. Tools that need raw queries build their own from the
    /// same settings with [`server_client`].
    pub(crate) fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// Creates the database if missing and applies every schema file. The
    /// statements are `IF NOT EXISTS`, so this is safe to repeat. On a
    /// cluster, everything is made `ON CLUSTER` (every node must answer),
    /// and the synchronous insert setting is looked up, so a server without
    /// one fails here rather than at the first write.
    pub async fn migrate(&self) -> Result<()> {
        let server = server_client(&self.config);
        let Some(cluster) = &self.config.cluster else {
            let create = format!("CREATE DATABASE IF NOT EXISTS {}", self.config.database);
            server.query(&create).execute().await.map_err(AnalyticsError::from_query)?;
            for statement in schema::statements() {
                self.client.query(&statement).execute().await.map_err(AnalyticsError::from_query)?;
            }
            return Ok(());
        };
        // Names are qualified in the cluster DDL: no database is selected.
        for statement in cluster::statements(&self.config.database, cluster) {
            server.query(&statement).execute().await.map_err(AnalyticsError::from_query)?;
        }
        self.sync_insert_setting().await.map(drop)
    }

    /// Checks that ClickHouse answers.
    pub async fn ping(&self) -> Result<()> {
        self.client.query("SELECT 1").execute().await.map_err(AnalyticsError::from_query)
    }
}

/// A client for the server, without a database selected.
pub fn server_client(config: &ClickHouseConfig) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(&config.url)
        .with_user(&config.user)
        .with_password(&config.password)
        // ClickHouse 18.16 lacks RowBinaryWithNamesAndTypes, which validation needs.
        .with_validation(false)
        .with_compression(clickhouse::Compression::Lz4)
}
