//! The bench's tests, one binary with a module per bench: the real
//! `scorekeeper-bench` run briefly on bench databases of their own, and
//! what they share (running the bench, the local stack's settings,
//! dropping the databases a bench made beside a test's name).

mod api;
mod audit;

use std::process::Stdio;
use std::time::Duration;

use scorekeeper_store::Store;
use tokio::process::Command;

/// A setting of the local stack (`scripts/stack env`).
pub fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the local stack and run `eval \"$(scripts/stack env)\"`")
    })
}

/// `url` with the database replaced (`scorekeeper-testbed`'s URL surgery).
pub fn with_database(url: &str, database: &str) -> String {
    scorekeeper_testbed::postgres_url::with_database(url, database).expect("a postgres:// URL")
}

/// Drops the database `name` on both servers when dropped, also when the
/// test fails.
pub struct DropDatabases {
    pub admin_url: String,
    pub clickhouse_url: String,
    pub name: String,
}

impl Drop for DropDatabases {
    fn drop(&mut self) {
        let (admin_url, clickhouse_url, name) =
            (self.admin_url.clone(), self.clickhouse_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                if let Ok(store) = Store::connect(&admin_url, 1)
                    && let Ok(client) = store.pool().get().await
                {
                    let _ =
                        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
                let _ = clickhouse::Client::default()
                    .with_url(&clickhouse_url)
                    .with_user(std::env::var("CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()))
                    .with_password(std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default())
                    .query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute()
                    .await;
            });
            Some(())
        });
        let _ = cleanup.join();
    }
}

/// Runs `scorekeeper-bench <args> --json …` on the bench databases beside
/// the test database `base` (within 90 s; it must succeed) and returns
/// what it printed and the figures it wrote.
pub async fn run_bench(args: &[&str], base: &str) -> (String, serde_json::Value) {
    let json_path = std::env::temp_dir().join(format!("{base}.json"));
    // The `scorekeeper` binary the bench starts as its `serve`: found (and
    // built if stale) here, outside the bench's time limit.
    let serve_binary = scorekeeper_testbed::binary::serve_binary().expect("the scorekeeper binary");
    let run = Command::new(env!("CARGO_BIN_EXE_scorekeeper-bench"))
        .args(args)
        .env("SCOREKEEPER_BIN", serve_binary)
        .arg("--json")
        .arg(&json_path)
        .env("DATABASE_URL", with_database(&setting("DATABASE_URL"), base))
        .env("CLICKHOUSE_URL", setting("CLICKHOUSE_URL"))
        .env("CLICKHOUSE_DATABASE", base)
        .env("RUST_LOG", "warn")
        .env_remove("REINDEX_SCHEDULE")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .unwrap_or_else(|_| panic!("bench {args:?} did not finish within 90 s"))
        .expect("running scorekeeper-bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench {args:?} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&json_path).expect("the --json file");
    let _ = std::fs::remove_file(&json_path);
    (stdout, serde_json::from_str(&text).expect("--json writes JSON"))
}
