//! The bench's own databases on the servers the settings point at, and the
//! `scorekeeper serve` child process a bench drives.

use std::time::Duration;

use anyhow::Context;
use scorekeeper_analytics::{Analytics, ClickHouseConfig};
use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};
use scorekeeper_store::Store;
use scorekeeper_testbed::binary::serve_binary;
use scorekeeper_testbed::postgres_url::{self, with_database};
use scorekeeper_testbed::serve::Serve;

/// A Postgres database and a ClickHouse database named after the bench,
/// beside the ones the settings name: `<db>_bench_<name>`.
pub struct BenchDatabases {
    pub database_url: String,
    pub clickhouse: ClickHouseConfig,
    pub store: Store,
    pub analytics: Analytics,
    /// The bench's own client on its ClickHouse database, for the raw
    /// queries the service never makes (counts, merges, drift).
    pub clickhouse_client: clickhouse::Client,
}

/// A client on `config`'s database, set up as the service's own.
pub fn database_client(config: &ClickHouseConfig) -> clickhouse::Client {
    scorekeeper_analytics::server_client(config).with_database(&config.database)
}

impl BenchDatabases {
    /// Creates (if missing) and migrates both databases.
    pub async fn prepare(
        postgres: &PostgresArgs,
        clickhouse: &ClickHouseArgs,
        name: &str,
    ) -> anyhow::Result<BenchDatabases> {
        let url = &postgres.database_url;
        let database_url = with_database(url, &format!("{}_bench_{name}", postgres_url::database(url)?))
            .context("DATABASE_URL")?;
        scorekeeper_testbed::database::create_if_missing(&database_url)
            .await
            .with_context(|| format!("creating the bench database of {database_url}"))?;
        let store = Store::connect(&database_url, postgres.database_max_connections)?;
        scorekeeper_jobs::migrate_postgres(&store).await.context("migrating the bench Postgres database")?;
        let mut analytics = clickhouse.analytics()?.config().clone();
        analytics.database = format!("{}_bench_{name}", analytics.database);
        let clickhouse = analytics;
        let analytics = Analytics::new(clickhouse.clone())?;
        analytics.migrate().await.context("creating the bench ClickHouse database")?;
        let clickhouse_client = database_client(&clickhouse);
        Ok(BenchDatabases { database_url, clickhouse, store, analytics, clickhouse_client })
    }

    /// An admin API token of a `bench-admin` customer (created if missing).
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        let customer = self.store.ensure_customer("bench-admin").await?;
        Ok(self.store.create_token(customer, true, "bench").await?)
    }
}

/// A `scorekeeper serve` child process on the bench databases (started by
/// the one launcher, `scorekeeper_testbed::serve`), killed when dropped.
pub struct ServeProcess {
    process: scorekeeper_testbed::serve::ServeProcess,
    pub grpc_url: String,
}

impl ServeProcess {
    /// Starts `scorekeeper serve` (the binary beside this one, or
    /// `SCOREKEEPER_BIN`) with `env` added and waits for /health. Its log
    /// goes to this process's standard error, at `RUST_LOG` (default warn).
    pub async fn start(databases: &BenchDatabases, env: &[(&str, String)]) -> anyhow::Result<ServeProcess> {
        let clickhouse = &databases.clickhouse;
        let mut serve = Serve::new(serve_binary()?)
            .postgres(&databases.database_url)
            .clickhouse(&clickhouse.url, &clickhouse.database, &clickhouse.user, &clickhouse.password)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
        for (key, value) in env {
            serve = serve.env(*key, value.clone());
        }
        let process = serve.start(Duration::from_secs(60)).await?;
        Ok(ServeProcess { grpc_url: process.grpc_url(), process })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The process's peak resident memory so far (Linux `VmHWM`), in MiB.
    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        let kib = self.process.peak_rss_kib().context("serve has exited, or has no VmHWM in /proc")?;
        Ok(kib as f64 / 1024.0)
    }

    /// Stops the process (SIGKILL: a bench has nothing to drain).
    pub async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}
