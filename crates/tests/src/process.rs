//! Running the real `scorekeeper` binary against one test's databases, and
//! talking to its HTTP port.

use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::TestEnv;

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// `<binary> serve` on this test's Postgres and ClickHouse databases, quiet
/// but for warnings, killed when dropped, and with none of the scheduler or
/// API settings of the environment the tests run in. Callers add the parts
/// and addresses they want.
pub fn serve_command(binary: &str, env: &TestEnv) -> Command {
    let clickhouse = env.clickhouse_config();
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("DATABASE_URL", env.database_url())
        .env("CLICKHOUSE_URL", &clickhouse.url)
        .env("CLICKHOUSE_DATABASE", &clickhouse.database)
        .env("SK_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("OUTBOX_POLL_MS", "100")
        .env_remove("REINDEX_SCHEDULE")
        .env_remove("AUDIT_SCHEDULE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// `<binary> serve` with all its parts (API, dispatcher, job worker), the
/// API on `grpc_port` and /metrics and /health on `http_port`.
pub fn spawn_serve(binary: &str, env: &TestEnv, grpc_port: u16, http_port: u16) -> tokio::process::Child {
    serve_command(binary, env)
        .env("SK_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("SK_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .spawn()
        .expect("starting scorekeeper serve")
}

/// A plain HTTP/1.0 GET on loopback: `(status, body)`, if anything answered.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}
