//! Short runs of fault scenarios 1 to 5 against the local stack (6, on the
//! ClickHouse cluster, is in `cluster.rs`), each failing on a lost
//! acknowledged write, drift after recovery, or its own checks (a job that
//! did not succeed, a process that crashed). Outages
//! never stop the shared servers: ClickHouse is cut at a proxy, and
//! Postgres restarts are of a private cluster (`pg_ctl`). The full runs
//! are `scripts/chaos`.

use std::time::Duration;

use scorekeeper_chaos::report::ScenarioReport;
use scorekeeper_chaos::scenarios::{
    clickhouse_outage, fleet_kills, postgres_restart, reindex_kills, torn_insert,
};
use scorekeeper_chaos::world::FaultSettings;

pub(crate) fn assert_passed(report: &ScenarioReport) {
    eprintln!("{}", scorekeeper_chaos::report::table(std::slice::from_ref(report)));
    eprintln!("notes: {:#?}", report.notes);
    assert_eq!(report.rows_lost, 0, "acknowledged writes lost: {:#?}", report.verdict);
    assert_eq!(report.drift, 0, "drift after recovery: {:#?}", report.verdict);
    assert!(report.requests_acked > 0, "the load got nothing acknowledged: {:?}", report.requests_failed);
    assert!(report.faults_injected > 0, "no fault was injected");
    assert!(
        report.passed,
        "the scenario's own checks failed: {:#?} (logs in {})",
        report.notes, report.log_dir
    );
    report.discard_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_survives_repeated_worker_kills() {
    let settings = reindex_kills::Settings {
        conversations: 3_000,
        kills: 3,
        kills_per_job: 3,
        batch_size: 20,
        workers: 2,
        concurrency: 2,
    };
    let report = reindex_kills::run(&FaultSettings::default(), &settings).await.unwrap();
    assert!(report.faults_injected >= 3);
    assert_passed(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_outage_during_a_burst_loses_nothing() {
    let settings = clickhouse_outage::Settings {
        conversations: 300,
        before: Duration::from_secs(2),
        outage: Duration::from_secs(4),
        after: Duration::from_secs(2),
        concurrency: 4,
    };
    assert_passed(&clickhouse_outage::run(&FaultSettings::default(), &settings).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_during_reindex_and_burst_lose_nothing() {
    let settings = postgres_restart::Settings {
        conversations: 3_000,
        batch_size: 20,
        outage: Duration::from_secs(2),
        between: Duration::from_secs(3),
        concurrency: 4,
    };
    assert_passed(&postgres_restart::run(&FaultSettings::default(), &settings).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_under_random_kills_loses_no_acknowledged_write() {
    let settings = fleet_kills::Settings {
        conversations: 300,
        duration: Duration::from_secs(15),
        api_processes: 2,
        worker_processes: 2,
        kill_every: (Duration::from_millis(500), Duration::from_secs(2)),
        concurrency: 4,
    };
    assert_passed(&fleet_kills::run(&FaultSettings::default(), &settings).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_clickhouse_inserts_converge_exactly() {
    let settings = torn_insert::Settings {
        conversations: 2_000,
        tears: 5,
        cut_after_bytes: (300, 8_000),
        concurrency: 4,
        batch_size: 50,
    };
    assert_passed(&torn_insert::run(&FaultSettings::default(), &settings).await.unwrap());
}
