//! The local stack the tests run on: its settings (`DATABASE_URL`,
//! `CLICKHOUSE_URL`, …, from `scripts/stack env`), names for a test's own
//! databases on it, and a guard that drops them when the test ends.

use anyhow::Context;
use scorekeeper_analytics::ClickHouseConfig;

/// A setting of the local stack; an error that says how to set it when it
/// is missing (tests fail, never skip, without the servers).
pub fn setting(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set: start the local stack and run `eval \"$(scripts/stack env)\"` (scripts/test does)")
    })
}

/// A fresh database name, `sk_test_<random>`, for both servers.
pub fn fresh_database_name() -> String {
    format!("sk_test_{:016x}", rand::random::<u64>())
}

/// ClickHouse settings of the stack for `database`: its URL, and the user
/// and password of `CLICKHOUSE_USER`/`CLICKHOUSE_PASSWORD` (default:
/// `default`, none).
pub fn clickhouse_config(database: &str) -> anyhow::Result<ClickHouseConfig> {
    Ok(ClickHouseConfig {
        url: setting("CLICKHOUSE_URL")?,
        database: database.to_owned(),
        user: std::env::var("CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
        password: std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default(),
        cluster: None,
    })
}

/// Drops a Postgres database (through the admin URL, `WITH (FORCE)` so
/// open connections do not keep it) and a ClickHouse database (`ON CLUSTER`
/// on a cluster) when dropped,
/// also when the test panics. Errors are ignored: the database may never
/// have been made.
pub struct DropDatabases {
    /// The stack's `DATABASE_URL` (any database the user may connect to).
    pub admin_url: String,
    /// The Postgres database to drop.
    pub postgres_db: String,
    /// The server and the database (`clickhouse.database`) to drop there.
    pub clickhouse: ClickHouseConfig,
}

impl DropDatabases {
    /// Drops the Postgres database and the ClickHouse database both called
    /// `database` on the stack (a bench's own databases, beside the test's).
    pub fn same_name(admin_url: &str, database: &str) -> anyhow::Result<DropDatabases> {
        Ok(DropDatabases {
            admin_url: admin_url.to_owned(),
            postgres_db: database.to_owned(),
            clickhouse: clickhouse_config(database)?,
        })
    }
}

/// The databases of one bench run: the fresh base name the bench is given
/// (it works in `<base>_bench_<suffix>` beside it, on both servers), the
/// bench's database name, and the guard that drops that database on both
/// servers.
pub struct BenchDatabases {
    pub base: String,
    pub bench: String,
    pub cleanup: DropDatabases,
}

impl BenchDatabases {
    pub fn fresh(admin_url: &str, suffix: &str) -> anyhow::Result<BenchDatabases> {
        let base = fresh_database_name();
        let bench = format!("{base}_bench_{suffix}");
        let cleanup = DropDatabases::same_name(admin_url, &bench)?;
        Ok(BenchDatabases { base, bench, cleanup })
    }
}

impl Drop for DropDatabases {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let postgres_db = self.postgres_db.clone();
        let clickhouse = self.clickhouse.clone();
        // Drop runs outside async context guarantees: clean up on a thread
        // with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                if let Ok((admin, connection)) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {postgres_db} WITH (FORCE)"))
                        .await;
                }
                // On every node of its cluster, if it has one.
                let _ = scorekeeper_analytics::maintenance::drop_database(&clickhouse).await;
            });
            Some(())
        });
        let _ = cleanup.join();
    }
}
