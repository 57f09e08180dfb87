//! What the CLI tests share: running the binary, the local stack's
//! settings, and dropping the databases a bench made beside a test's name.
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::process::{Output, Stdio};
use std::time::Duration;

use scorekeeper_store::Store;
use tokio::process::Command;

/// Runs the CLI to completion, within `within`. The API settings come from
/// the arguments only, never from the environment the tests run in.
pub async fn cli(args: &[&str], within: Duration) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_scorekeeper"))
        .args(args)
        .env_remove("SK_GRPC_URL")
        .env_remove("SCOREKEEPER_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output();
    tokio::time::timeout(within, output)
        .await
        .unwrap_or_else(|_| panic!("scorekeeper {args:?} did not finish within {within:?}"))
        .expect("running scorekeeper")
}

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

/// Runs `scorekeeper bench <args> --json …` on the bench databases beside
/// the test database `base` (within 90 s; it must succeed) and returns
/// what it printed and the figures it wrote.
pub async fn run_bench(args: &[&str], base: &str) -> (String, serde_json::Value) {
    let json_path = std::env::temp_dir().join(format!("{base}.json"));
    let run = Command::new(env!("CARGO_BIN_EXE_scorekeeper"))
        .arg("bench")
        .args(args)
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
        .expect("running scorekeeper bench");
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
