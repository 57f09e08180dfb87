//! What the CLI tests share: running the binary as a user would.

use std::process::{Output, Stdio};
use std::time::Duration;

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
