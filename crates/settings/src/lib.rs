//! Where Postgres and ClickHouse are, as flags or environment
//! (`DATABASE_URL`, `CLICKHOUSE_URL`, …): one definition that `scorekeeper`,
//! `scorekeeper-bench` and `scorekeeper-demo` flatten into their arguments,
//! so every binary takes the same settings under the same names; and the
//! log filter `RUST_LOG` every binary installs the same way.

mod logging;

use anyhow::Context;
use clap::Args;
use scorekeeper_analytics::{Analytics, ClickHouseConfig};
use scorekeeper_store::Store;

pub use logging::init_logging;

#[derive(Args, Clone, Debug)]
pub struct PostgresArgs {
    /// Postgres URL, e.g. postgres://user@host:5432/scorekeeper.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Most Postgres connections this process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: usize,
}

impl PostgresArgs {
    pub fn store(&self) -> anyhow::Result<Store> {
        Store::connect(&self.database_url, self.database_max_connections).context("DATABASE_URL")
    }
}

#[derive(Args, Clone, Debug)]
pub struct ClickHouseArgs {
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123.
    #[arg(long, env = "CLICKHOUSE_URL")]
    pub clickhouse_url: String,
    #[arg(long, env = "CLICKHOUSE_DATABASE", default_value = "scorekeeper")]
    pub clickhouse_database: String,
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    #[arg(long, env = "CLICKHOUSE_PASSWORD", default_value = "", hide_env_values = true)]
    pub clickhouse_password: String,
    /// A ClickHouse cluster (a name in the servers' <remote_servers>) whose
    /// nodes hold the tables, CLICKHOUSE_URL being one of them: migrate makes
    /// replicated local tables and Distributed tables over them ON CLUSTER,
    /// and every insert is synchronous. Unset: one server.
    #[arg(long, env = "CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,
}

impl ClickHouseArgs {
    /// The settings as the analytics crate takes them.
    pub fn config(&self) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.clickhouse_url.clone(),
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
            // Set but empty (`CLICKHOUSE_CLUSTER=`) is unset: one server.
            cluster: self.clickhouse_cluster.clone().filter(|name| !name.is_empty()),
        }
    }

    pub fn analytics(&self) -> anyhow::Result<Analytics> {
        Analytics::new(self.config()).context("CLICKHOUSE_DATABASE or CLICKHOUSE_CLUSTER")
    }
}
