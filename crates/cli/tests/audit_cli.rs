//! `scorekeeper audit` as a user runs it, against a real `scorekeeper
//! serve` process on this test's databases: rows bulk-imported into
//! Postgres only are reported missing (exit status 3), and `--repair`
//! queues their reindex, follows it, and audits again to zero (exit 0).
//! And `scorekeeper bench audit` on a small world: it mirrors the world,
//! finds it in sync, and names exactly the drift it made.

use std::process::Output;
use std::time::{Duration, Instant};

use scorekeeper_store::Store;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::process::{free_port, http_get, spawn_serve};
use serde_json::Value;

mod common;
use common::{DropDatabases, cli, run_bench, setting, with_database};

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

    let (grpc_port, http_port) = (free_port(), free_port());
    let _serve = spawn_serve(env!("CARGO_BIN_EXE_scorekeeper"), &env, grpc_port, http_port);
    let started = Instant::now();
    while http_get(http_port, "/health").await.map(|r| r.0) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(30), "serve did not answer /health within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grpc_url = format!("http://127.0.0.1:{grpc_port}");
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
    let output = cli(&args, CLI_WITHIN).await;
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
    let output = cli(&args, CLI_WITHIN).await;
    let report = json(&args, &output);
    assert_eq!(output.status.code(), Some(0), "{report:#}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(!report["repair"]["jobs"].as_array().unwrap().is_empty(), "{report:#}");
    assert_eq!(report["after"]["drifted_rows"], 0, "{report:#}");
    env.assert_scorecards_mirrored().await;

    // The text form of an audit in sync.
    let output = cli(&base, CLI_WITHIN).await;
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

/// The bench's datasets take a minute to generate even at scale `s`; this
/// test puts a small bulk-imported world in the bench's database instead
/// and marks it as the scale-`s` dataset (generator 1, as
/// `bench::dataset` writes it), which the bench then takes as it is. Its
/// ClickHouse database starts empty, so the bench also reindexes first.
#[tokio::test]
async fn bench_audit_mirrors_finds_no_drift_and_names_exactly_the_drift_it_made() {
    let admin_url = setting("DATABASE_URL");
    let clickhouse_url = setting("CLICKHOUSE_URL");
    let base = format!("sk_test_{:016x}", rand::random::<u64>());
    let bench = format!("{base}_bench_reindex_s");
    let _cleanup = DropDatabases {
        admin_url: admin_url.clone(),
        clickhouse_url: clickhouse_url.clone(),
        name: bench.clone(),
    };
    let bench_url = with_database(&admin_url, &bench);
    Store::create_database_if_missing(&bench_url).await.unwrap();
    let store = Store::connect(&bench_url, 2).unwrap();
    scorekeeper_jobs::migrate_postgres(&store).await.unwrap();
    let mut rows = 0;
    for name in ["a", "b"] {
        let customer = store.ensure_customer(name).await.unwrap();
        rows += bulk_import(&store, customer, 150).await.rows;
    }
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE bench_dataset (scale text NOT NULL, generator integer NOT NULL,
                                         generated_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO bench_dataset (scale, generator) VALUES ('s', 1);",
        )
        .await
        .unwrap();

    let (stdout, figures) = run_bench(&["audit", "--scale", "s", "--drift", "4"], &base).await;
    assert!(stdout.contains("in sync") && stdout.contains("drifted rows found"), "the table:\n{stdout}");
    let count = |path: &[&str]| {
        path.iter()
            .fold(&figures, |value, key| &value[*key])
            .as_u64()
            .unwrap_or_else(|| panic!("{path:?}: {figures:#}"))
    };
    assert_eq!(figures["mirror_reindexed"], true, "ClickHouse started empty: {figures:#}");
    assert_eq!(count(&["in_sync", "rows_checked"]), rows as u64, "every live row checked: {figures:#}");
    assert_eq!(count(&["in_sync", "drifted_rows"]), 0, "{figures:#}");
    // At least the 4 rows of each kind in each table (more: the scores of
    // stale and deleted scorecards), every one named and nothing else.
    let injected = count(&["drifted_rows_injected"]);
    assert!(injected >= 3 * 3 * 4, "{figures:#}");
    assert_eq!(count(&["drifted_rows_found"]), injected, "{figures:#}");
    assert_eq!(count(&["drifted", "drifted_rows"]), injected, "{figures:#}");
    assert_eq!(count(&["drifted_rows_missed"]) + count(&["drifted_rows_unexpected"]), 0, "{figures:#}");
    for field in ["in_sync_s", "drifted_s"] {
        assert!(figures[field].as_f64().is_some_and(|s| s > 0.0), "{field}: {figures:#}");
    }

    // The drift was undone: Postgres holds the world as it was, and an
    // audit of it finds nothing again.
    let live: i64 = store
        .pool()
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT (SELECT count(*) FROM conversations WHERE deleted_at IS NULL)
                  + (SELECT count(*) FROM scorecards WHERE deleted_at IS NULL)
                  + (SELECT count(*) FROM scores WHERE deleted_at IS NULL)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, rows, "the rows the bench made and deleted are back as they were");
    let config = scorekeeper_analytics::ClickHouseConfig {
        url: clickhouse_url.clone(),
        database: bench.clone(),
        user: std::env::var("CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
        password: std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default(),
    };
    let analytics = scorekeeper_analytics::Analytics::new(config).unwrap();
    let scope = scorekeeper_domain::audit::AuditScope::default();
    let report = scorekeeper_sync::audit::audit(&store, &analytics, &scope).await.unwrap();
    assert_eq!(report.drifted(), 0, "{report:#?}");
}
