//! Running the project's real binaries for tests: `scorekeeper serve`
//! against one test's databases, through the one launcher
//! (`scorekeeper-testbed`'s [`Serve`]), and talking to its HTTP port; a
//! client command (`scorekeeper reindex …`) as a user runs it; and
//! `scorekeeper-bench` on bench databases beside a test's.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

pub use scorekeeper_testbed::loopback::{HttpResponse, http_get, http_request, https_get};
pub use scorekeeper_testbed::serve::{Serve, ServeError, ServeProcess};

use crate::TestEnv;
use crate::stack::setting;

/// `<binary> serve` on this test's Postgres and ClickHouse databases, with
/// all its parts, quiet but for warnings, killed when dropped, and with
/// none of the scheduler settings of the environment the tests run in; the
/// dispatcher polls every 100 ms so that tests need not wait long. Callers
/// add what they need and spawn it.
pub fn serve(binary: impl Into<PathBuf>, env: &TestEnv) -> Serve {
    let clickhouse = env.clickhouse_config();
    let serve = Serve::new(binary)
        .postgres(&env.database_url())
        .clickhouse(&clickhouse.url, &clickhouse.database, &clickhouse.user, &clickhouse.password)
        .env("OUTBOX_POLL_MS", "100");
    match &clickhouse.cluster {
        Some(cluster) => serve.clickhouse_cluster(cluster),
        None => serve,
    }
}

/// Runs `binary` (the `scorekeeper` CLI: `env!("CARGO_BIN_EXE_scorekeeper")`
/// in its tests) with `args` to completion, within `within`. The API
/// settings come from the arguments only, never from the environment the
/// tests run in.
pub async fn cli(binary: impl AsRef<Path>, args: &[&str], within: Duration) -> Output {
    let output = Command::new(binary.as_ref())
        .args(args)
        .env_remove("SK_GRPC_URL")
        .env_remove("SK_TLS_CA")
        .env_remove("SCOREKEEPER_TOKEN")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output();
    tokio::time::timeout(within, output)
        .await
        .unwrap_or_else(|_| panic!("scorekeeper {args:?} did not finish within {within:?}"))
        .expect("running scorekeeper")
}

/// Runs `binary` (`scorekeeper-bench`) with `<args> --json …` on the bench
/// databases beside the test database `base` (within 90 s; it must
/// succeed) and returns what it printed and the figures it wrote.
pub async fn run_bench(binary: impl AsRef<Path>, args: &[&str], base: &str) -> (String, serde_json::Value) {
    let database_url = setting("DATABASE_URL").expect("the local stack");
    let json_path = std::env::temp_dir().join(format!("{base}.json"));
    // The `scorekeeper` binary the bench starts as its `serve`: found (and
    // built if stale) here, outside the bench's time limit.
    let serve_binary = scorekeeper_testbed::binary::serve_binary().expect("the scorekeeper binary");
    let run = Command::new(binary.as_ref())
        .args(args)
        .env("SCOREKEEPER_BIN", serve_binary)
        .arg("--json")
        .arg(&json_path)
        .env(
            "DATABASE_URL",
            scorekeeper_testbed::postgres_url::with_database(&database_url, base).expect("a postgres:// URL"),
        )
        .env("CLICKHOUSE_URL", setting("CLICKHOUSE_URL").expect("the local stack"))
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

/// An output's bytes as text (lossy), for messages and checks.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The standard output of the `scorekeeper` command run with `args`, which
/// must have succeeded (else a panic shows its status, stdout and stderr).
pub fn stdout_of(args: &[&str], output: &Output) -> String {
    assert!(
        output.status.success(),
        "scorekeeper {args:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}
