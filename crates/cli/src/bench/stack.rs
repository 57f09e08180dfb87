//! The bench's own databases on the servers the settings point at, and the
//! `scorekeeper serve` child process a bench drives.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scorekeeper_analytics::{Analytics, ClickHouseConfig};
use scorekeeper_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::settings::{ClickHouseArgs, PostgresArgs};

/// A Postgres database and a ClickHouse database named after the bench,
/// beside the ones the settings name: `<db>_bench_<name>`.
pub struct BenchDatabases {
    pub database_url: String,
    pub clickhouse: ClickHouseConfig,
    pub store: Store,
    pub analytics: Analytics,
}

impl BenchDatabases {
    /// Creates (if missing) and migrates both databases.
    pub async fn prepare(
        postgres: &PostgresArgs,
        clickhouse: &ClickHouseArgs,
        name: &str,
    ) -> anyhow::Result<BenchDatabases> {
        let database_url = with_database(&postgres.database_url, |db| format!("{db}_bench_{name}"))?;
        Store::create_database_if_missing(&database_url)
            .await
            .with_context(|| format!("creating the bench database of {database_url}"))?;
        let store = Store::connect(&database_url, postgres.database_max_connections)?;
        scorekeeper_jobs::migrate_postgres(&store).await.context("migrating the bench Postgres database")?;
        let mut analytics = clickhouse.analytics()?.config().clone();
        analytics.database = format!("{}_bench_{name}", analytics.database);
        let clickhouse = analytics;
        let analytics = Analytics::new(clickhouse.clone())?;
        analytics.migrate().await.context("creating the bench ClickHouse database")?;
        Ok(BenchDatabases { database_url, clickhouse, store, analytics })
    }

    /// An admin API token of a `bench-admin` customer (created if missing).
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        let customer = self.store.ensure_customer("bench-admin").await?;
        Ok(self.store.create_token(customer, true, "bench").await?)
    }
}

/// `url` with its database name (the path) replaced by `rename(old)`.
pub fn with_database(url: &str, rename: impl Fn(&str) -> String) -> anyhow::Result<String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let Some(scheme_end) = base.find("://") else { bail!("DATABASE_URL {url:?} is not a postgres:// URL") };
    let (authority, database) = match base[scheme_end + 3..].split_once('/') {
        Some((_, db)) if !db.is_empty() => (&base[..base.len() - db.len() - 1], db),
        _ => (base.trim_end_matches('/'), "postgres"),
    };
    let mut renamed = format!("{authority}/{}", rename(database));
    if let Some(query) = query {
        renamed.push('?');
        renamed.push_str(query);
    }
    Ok(renamed)
}

/// A `scorekeeper serve` child process on the bench databases, killed when
/// dropped.
pub struct ServeProcess {
    child: Child,
    pub grpc_url: String,
    http_port: u16,
}

impl ServeProcess {
    /// Starts this binary's `serve` with `env` added and waits for /health.
    pub async fn start(databases: &BenchDatabases, env: &[(&str, String)]) -> anyhow::Result<ServeProcess> {
        let (grpc_port, http_port) = (free_port()?, free_port()?);
        let binary: PathBuf = std::env::current_exe().context("locating this binary")?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("DATABASE_URL", &databases.database_url)
            .env("CLICKHOUSE_URL", &databases.clickhouse.url)
            .env("CLICKHOUSE_DATABASE", &databases.clickhouse.database)
            .env("CLICKHOUSE_USER", &databases.clickhouse.user)
            .env("CLICKHOUSE_PASSWORD", &databases.clickhouse.password)
            .env("SK_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("SK_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env_remove("REINDEX_SCHEDULE")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().context("starting scorekeeper serve")?;
        let mut serve = ServeProcess { child, grpc_url: format!("http://127.0.0.1:{grpc_port}"), http_port };
        serve.wait_healthy(Duration::from_secs(60)).await?;
        Ok(serve)
    }

    async fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("scorekeeper serve exited at start ({status}); its log is above");
            }
            if http_status(self.http_port, "/health").await == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("scorekeeper serve did not answer /health within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process's peak resident memory so far (Linux `VmHWM`), in MiB.
    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn peak_rss_mb(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("serve has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")?;
        Ok(kib / 1024.0)
    }

    /// Stops the process (SIGKILL: a bench has nothing to drain).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The status of a plain HTTP/1.0 GET on loopback, if anything answered.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn renames_the_database_of_a_url() {
        let bench = |db: &str| format!("{db}_bench_m");
        assert_eq!(
            with_database("postgres://u@h:1/scorekeeper", bench).unwrap(),
            "postgres://u@h:1/scorekeeper_bench_m"
        );
        assert_eq!(
            with_database("postgres://u:p@h/sk?sslmode=disable", bench).unwrap(),
            "postgres://u:p@h/sk_bench_m?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", bench).unwrap(), "postgres://u@h:1/postgres_bench_m");
        assert!(with_database("host=h dbname=x", bench).is_err());
    }
}
