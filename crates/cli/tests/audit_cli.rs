//! `scorekeeper audit` as a user runs it, against a real `scorekeeper
//! serve` process on this test's databases: rows bulk-imported into
//! Postgres only are reported missing (exit status 3), and `--repair`
//! queues their reindex, follows it, and audits again to zero (exit 0).

use std::process::Output;
use std::time::Duration;

use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::process::{cli, http_get, serve};
use serde_json::Value;

/// The binary under test.
const SCOREKEEPER: &str = env!("CARGO_BIN_EXE_scorekeeper");

/// How long one CLI command may take.
const CLI_WITHIN: Duration = Duration::from_secs(120);

fn json(args: &[&str], output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "scorekeeper {args:?} printed no JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test]
async fn audit_and_repair_against_a_serve_process() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let customer = env.store.ensure_customer("acme").await.unwrap();
    let data = bulk_import(&env.store, customer, 200).await;
    let token = env.store.create_token(customer, false, "cli").await.unwrap();

    let serve = serve(env!("CARGO_BIN_EXE_scorekeeper"), &env)
        .start(Duration::from_secs(30))
        .await
        .expect("serve answers /health within 30 s");
    let (grpc_url, http_port) = (serve.grpc_url(), serve.http_port());
    let customer_arg = customer.0.to_string();
    let base = [
        "audit",
        "--customer",
        customer_arg.as_str(),
        "--grpc-url",
        grpc_url.as_str(),
        "--token",
        token.as_str(),
    ];

    // Everything is in Postgres only: all of it missing, exit status 3.
    let mut args = base.to_vec();
    args.push("--json");
    let output = cli(SCOREKEEPER, &args, CLI_WITHIN).await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "drift is exit status 3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&args, &output);
    assert_eq!(report["before"]["drifted_rows"], data.rows, "{report:#}");
    assert_eq!(report["after"], Value::Null);
    let tables = report["before"]["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 3);
    assert!(tables.iter().all(|t| t["drift"]["missing"] == t["rows_checked"]), "{report:#}");

    // --repair: reindex jobs followed to their end, then zero drift.
    args.push("--repair");
    let output = cli(SCOREKEEPER, &args, CLI_WITHIN).await;
    let report = json(&args, &output);
    assert_eq!(output.status.code(), Some(0), "{report:#}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(!report["repair"]["jobs"].as_array().unwrap().is_empty(), "{report:#}");
    assert_eq!(report["after"]["drifted_rows"], 0, "{report:#}");
    env.assert_scorecards_mirrored().await;

    // The text form of an audit in sync.
    let output = cli(SCOREKEEPER, &base, CLI_WITHIN).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("0 drifted row(s)") && stdout.contains("conversations"), "{stdout}");

    // The drift metric of the last audit, on the serve process's /metrics.
    let (_, metrics) = http_get(http_port, "/metrics").await.unwrap();
    assert!(
        metrics.contains(r#"scorekeeper_audit_drifted_rows{table="scores",kind="missing"} 0"#),
        "{metrics}"
    );
}
