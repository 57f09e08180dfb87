//! Connection settings shared by the subcommands: flags or environment.

use anyhow::Context;
use clap::Args;
use scorekeeper_analytics::{Analytics, ClickHouseConfig};
use scorekeeper_domain::CustomerId;
use scorekeeper_store::Store;

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
}

impl ClickHouseArgs {
    pub fn analytics(&self) -> anyhow::Result<Analytics> {
        Analytics::new(ClickHouseConfig {
            url: self.clickhouse_url.clone(),
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
        })
        .context("CLICKHOUSE_DATABASE")
    }
}

/// A customer given by numeric id or by name; it must exist.
pub async fn resolve_customer(store: &Store, customer: &str) -> anyhow::Result<CustomerId> {
    let found = match customer.parse::<i64>() {
        Ok(id) => store.customer_exists(CustomerId(id)).await?.then_some(CustomerId(id)),
        Err(_) => store.find_customer(customer).await?,
    };
    found.with_context(|| {
        format!("--customer: no customer {customer:?}; create it with `scorekeeper customer create`")
    })
}
