//! `scorekeeper reindex` and `scorekeeper jobs` as a user runs them: the
//! binary against a real `scorekeeper serve` process (API and job worker) on
//! this test's databases. Rows bulk-imported straight into Postgres reach
//! ClickHouse only through the reindex job the CLI creates and follows.

use std::process::Output;
use std::time::Duration;

use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::process::{cli, serve, stdout_of, text};
use serde_json::Value;

/// The binary under test.
const SCOREKEEPER: &str = env!("CARGO_BIN_EXE_scorekeeper");

/// How long one CLI command may take.
const CLI_WITHIN: Duration = Duration::from_secs(60);

/// Stdout parsed as JSON; the command must have succeeded.
fn json_of(args: &[&str], output: &Output) -> Value {
    let stdout = stdout_of(args, output);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("scorekeeper {args:?} printed no JSON ({e}):\n{stdout}"))
}

#[tokio::test]
async fn reindex_and_jobs_commands_against_a_serve_process() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let customer = env.store.ensure_customer("acme").await.unwrap();
    let data = bulk_import(&env.store, customer, 500).await;
    let token = env.store.create_token(customer, false, "cli").await.unwrap();
    assert_eq!(env.clickhouse_row_count("scorecards").await, 0, "a bulk import reaches Postgres only");

    // A commit per page, so that batches_done shows --batch-size reached the job.
    let serve = serve(env!("CARGO_BIN_EXE_scorekeeper"), &env)
        .env("REINDEX_WRITE_ROWS", "1")
        .start(Duration::from_secs(30))
        .await
        .expect("serve answers /health within 30 s");
    let grpc_url = serve.grpc_url();
    let api = ["--grpc-url", grpc_url.as_str(), "--token", token.as_str()];
    let customer_arg = customer.0.to_string();

    // Both scorecard types of the customer, followed to the end; small
    // batches so the conversation activity checkpoints several times.
    let mut args = vec![
        "reindex",
        "--types",
        "conversation,process",
        "--customer",
        &customer_arg,
        "--batch-size",
        "100",
        "--wait",
        "--json",
    ];
    args.extend(api);
    let job = json_of(&args, &cli(SCOREKEEPER, &args, CLI_WITHIN).await);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["customer"], customer.0, "{job:#}");
    assert_eq!(job["attempts"], 1, "{job:#}");
    assert_eq!(job["scorecard_types"], serde_json::json!(["conversation", "process"]), "{job:#}");
    let activities = job["activities"].as_array().expect("activities");
    let names: Vec<&str> = activities.iter().map(|a| a["activity"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["reindex_conversations", "reindex_process_scorecards"],
        "conversation first, then process"
    );
    assert!(activities.iter().all(|a| a["finished"] == true), "both activities finished: {job:#}");
    let rows_done: i64 = activities.iter().map(|a| a["rows_done"].as_i64().unwrap()).sum();
    assert_eq!(rows_done, data.rows, "every imported row copied once: {job:#}");
    assert!(
        activities[0]["batches_done"].as_i64().unwrap() >= 5,
        "--batch-size 100 reached the job (500 conversations): {job:#}"
    );
    assert_eq!(activities[0]["pages_done"], 5, "--batch-size 100, 500 conversations: {job:#}");
    assert!(
        activities
            .iter()
            .all(|a| a["checkpoints_done"] == a["batches_done"] && a["pages_done"].as_i64() > Some(0)),
        "the JSON says pages and checkpoints, and keeps batches_done: {job:#}"
    );
    env.assert_scorecards_mirrored().await;
    assert_eq!(env.clickhouse_conversations().await.len() as i64, data.conversations);
    let id = job["id"].as_str().expect("a job id").to_owned();

    // The job as `jobs list` and `jobs get` show it.
    let mut args = vec!["jobs", "list", "--json"];
    args.extend(api);
    let list = json_of(&args, &cli(SCOREKEEPER, &args, CLI_WITHIN).await);
    let listed = list.as_array().expect("a JSON array of jobs");
    assert_eq!(listed.len(), 1, "{list:#}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "succeeded");

    let mut args = vec!["jobs", "get", id.as_str(), "--json"];
    args.extend(api);
    let got = json_of(&args, &cli(SCOREKEEPER, &args, CLI_WITHIN).await);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["state"], "succeeded");
    assert_eq!(got["activities"], job["activities"], "the same progress as `reindex --wait` ended with");

    // A customer token may not reindex all customers: refused, and no job.
    let mut args = vec!["reindex", "--customer", "all", "--wait"];
    args.extend(api);
    let refused = cli(SCOREKEEPER, &args, CLI_WITHIN).await;
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "--customer all with a customer token must fail; stderr:\n{stderr}");
    assert!(stderr.to_lowercase().contains("permission"), "the error names the permission: {stderr}");
    let mut args = vec!["jobs", "list", "--json"];
    args.extend(api);
    let list = json_of(&args, &cli(SCOREKEEPER, &args, CLI_WITHIN).await);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "the refused reindex created no job: {list:#}");

    // An unknown scorecard type is refused by the argument parser, before
    // anything is sent.
    let mut args = vec!["reindex", "--types", "bogus", "--customer", &customer_arg];
    args.extend(api);
    let bogus = cli(SCOREKEEPER, &args, CLI_WITHIN).await;
    let stderr = text(&bogus.stderr);
    assert_eq!(bogus.status.code(), Some(2), "clap's usage error; stderr:\n{stderr}");
    assert!(stderr.contains("invalid value 'bogus'") && stderr.contains("--types"), "{stderr}");
}
