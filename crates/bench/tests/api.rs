//! `scorekeeper-bench api` as a user runs it, briefly: the real binary
//! starts its own `serve`, drives CreateScorecard for two seconds and
//! writes its figures as JSON. No speed is asserted (targets live in
//! BENCHMARKS.md); what must hold is that the command works, reports what
//! it promises, and every scorecard the API acknowledged reached ClickHouse.

use scorekeeper_store::Store;
use scorekeeper_testbed::postgres_url::with_database;
use scorekeeper_tests::process::run_bench;
use scorekeeper_tests::stack::{self, BenchDatabases, setting};

#[tokio::test]
async fn bench_api_reports_its_figures_and_every_acknowledged_scorecard_is_visible() {
    let admin_url = setting("DATABASE_URL").unwrap();
    // A random name keeps runs apart.
    let databases = BenchDatabases::fresh(&admin_url, "api").unwrap();
    let (base, bench_databases) = (databases.base.as_str(), databases.bench.as_str());
    let (stdout, figures) = run_bench(
        env!("CARGO_BIN_EXE_scorekeeper-bench"),
        &["api", "--duration", "2s", "--warmup", "1s", "--concurrency", "2"],
        base,
    )
    .await;
    assert!(stdout.contains("visibility lag") && stdout.contains("targets"), "the table:\n{stdout}");

    for field in [
        "creates_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "visibility_lag_p50_ms",
        "visibility_lag_p99_ms",
        "requests_ok",
        "requests_failed",
        "concurrency",
        "duration_s",
    ] {
        assert!(figures[field].is_number(), "{field} is missing or not a number: {figures:#}");
    }
    let count = |field: &str| figures[field].as_u64().unwrap_or_else(|| panic!("{field}: {figures:#}"));
    assert_eq!(count("concurrency"), 2);
    assert!(count("requests_ok") > 0, "{figures:#}");
    assert_eq!(count("requests_failed"), 0, "{figures:#}");
    let acknowledged = count("requests_ok") + count("warmup_requests_ok");
    assert_eq!(count("scorecards_not_visible"), 0, "{figures:#}");
    assert_eq!(count("scorecards_visible"), acknowledged, "{figures:#}");
    assert_eq!(count("scorecards_in_postgres"), acknowledged, "{figures:#}");
    assert!(figures["postgres_fsync"].is_string() && figures["postgres_synchronous_commit"].is_string());
    // Every create made Postgres, the serve process and this client work.
    for who in ["postgres", "worker", "bench"] {
        let seconds = figures["cpu"][who].as_f64().unwrap_or_else(|| panic!("cpu.{who}: {figures:#}"));
        assert!(seconds > 0.0, "cpu.{who} is {seconds}: {figures:#}");
    }
    assert!(figures["cpu_ms_per_create"].as_f64().is_some_and(|ms| ms > 0.0), "{figures:#}");

    // Independently of the bench's own account: ClickHouse holds exactly
    // the scorecards Postgres holds.
    let store = Store::connect(&with_database(&admin_url, bench_databases).unwrap(), 1).unwrap();
    let in_postgres: i64 = store
        .pool()
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM scorecards", &[])
        .await
        .unwrap()
        .get(0);
    let clickhouse = stack::clickhouse_config(bench_databases).unwrap();
    let in_clickhouse: u64 = scorekeeper_analytics::server_client(&clickhouse)
        .with_database(&clickhouse.database)
        .query("SELECT count() FROM (SELECT id FROM scorecards FINAL WHERE is_deleted = 0)")
        .fetch_one()
        .await
        .expect("counting the bench's ClickHouse scorecards");
    assert_eq!(in_postgres as u64, acknowledged);
    assert_eq!(in_clickhouse, acknowledged, "every acknowledged scorecard is in ClickHouse");
}
