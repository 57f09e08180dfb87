//! A reindex split into partitions and shared by three worker processes:
//! each runs some of it; `kill -9` of one in the middle of a partition
//! hands that partition to another once its lease expires, which resumes it
//! from its checkpoint; the process activity starts only after every
//! conversation partition finished; and ClickHouse ends equal to Postgres,
//! with no partition written by two workers at once.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_jobs::{JobState, PartitionState};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::process::{ServeProcess, serve};
use scorekeeper_tests::stored_jobs::{full_reindex, rows_done, wait_job};

/// Rows one page of the bulk import holds at most: 10 conversations, each
/// with a conversation scorecard and its 2 scores (process pages are
/// smaller). A kill loses at most the page written but not checkpointed.
const PAGE_ROWS: i64 = 10 * 4;

/// A worker-only `scorekeeper serve` that splits reindex activities into
/// partitions of about 1,000 rows, with a short lease and a checkpoint
/// after every page.
fn worker_process(env: &TestEnv) -> ServeProcess {
    serve(env!("CARGO_BIN_EXE_scorekeeper"), env)
        .without_api()
        .without_dispatcher()
        .without_scheduler()
        .env("JOB_LEASE_SECONDS", "3")
        .env("REINDEX_WRITE_ROWS", "1")
        .env("REINDEX_PARTITION_ROWS", "1000")
        .spawn()
        .expect("starting a worker process")
}

/// Who ran each partition, and when, as stored.
struct Ran {
    activity: String,
    owner: Option<String>,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
}

async fn partitions_ran(env: &TestEnv, job: uuid::Uuid) -> Vec<Ran> {
    let client = env.store.pool().get().await.expect("a connection");
    let rows = client
        .query(
            "SELECT activity, lease_owner, started_at, finished_at FROM job_partitions WHERE job_id = $1",
            &[&job],
        )
        .await
        .expect("reading the partitions");
    rows.iter()
        .map(|r| Ran { activity: r.get(0), owner: r.get(1), started: r.get(2), finished: r.get(3) })
        .collect()
}

#[tokio::test]
async fn three_workers_share_a_partitioned_reindex_and_a_killed_one_s_partition_is_resumed() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let data = bulk_import(&env.store, customer.id, 1500).await;
    // All three up before the job exists, so that each can claim from the
    // first partition on (a late starter could otherwise find none left).
    let mut workers = [worker_process(&env), worker_process(&env), worker_process(&env)];
    for worker in &mut workers {
        worker.wait_healthy(Duration::from_secs(60)).await.expect("a worker process up");
    }
    let (job, _) = env.jobs.create_job(&full_reindex(customer.id, Some(10))).await.unwrap();
    // Every worker holds a partition, or has held one: then kill one that
    // holds one now, mid-partition.
    let spread = wait_job(&env.jobs, &job, Duration::from_secs(60), |j| {
        let owners: BTreeSet<&str> = j
            .activities
            .iter()
            .flat_map(|a| &a.partitions)
            .filter_map(|p| p.lease_owner.as_deref())
            .collect();
        owners.len() == 3
    })
    .await;
    let conversations = &spread.activities[0];
    assert!(conversations.partitions.len() >= 5, "split by REINDEX_PARTITION_ROWS: {conversations:#?}");
    let victim = conversations
        .partitions
        .iter()
        .find(|p| p.state == PartitionState::Running)
        .and_then(|p| p.lease_owner.clone())
        .expect("a partition running");
    let pid: u32 =
        victim.split('-').nth_back(1).and_then(|p| p.parse().ok()).expect("a pid in the worker id");
    let killed = workers.iter().position(|w| w.pid() == Some(pid)).expect("the victim is one of ours");
    workers[killed].kill().await.expect("kill -9 a worker");
    let at_kill = env.jobs.get_job(job.id, None).await.unwrap().unwrap();
    assert!(rows_done(&at_kill) < data.rows, "killed mid-job: {} of {} rows", rows_done(&at_kill), data.rows);

    let done = wait_job(&env.jobs, &job, Duration::from_secs(120), |j| j.state == JobState::Succeeded).await;
    let partitions: Vec<_> = done.activities.iter().flat_map(|a| &a.partitions).collect();
    assert!(partitions.iter().all(|p| p.state == PartitionState::Succeeded), "{partitions:#?}");
    assert!(
        partitions.iter().any(|p| p.attempts >= 2),
        "the victim's partition was taken over: {partitions:#?}"
    );
    // The victim may also have held the job's attempt: then one takeover.
    assert!(done.attempts <= 2, "the job's attempt was taken over at most once: {}", done.attempts);
    assert_eq!(
        rows_done(&done),
        data.rows,
        "every row recorded once: the takeover resumed from the checkpoint"
    );
    for activity in &done.activities {
        assert!(activity.finished, "{activity:#?}");
        assert_eq!(activity.rows_done, activity.partitions.iter().map(|p| p.rows_done).sum::<i64>());
    }

    // Without FINAL: rows written twice would show. The kill may leave one
    // page written but not checkpointed, which the taker reads again.
    let raw = env.clickhouse_row_count("conversations").await
        + env.clickhouse_row_count("scorecards").await
        + env.clickhouse_row_count("scores").await;
    let again = raw as i64 - data.rows;
    assert!((0..=PAGE_ROWS).contains(&again), "{again} rows written twice (at most one page per kill)");
    env.assert_scorecards_mirrored().await;
    assert_eq!(env.clickhouse_conversations().await.len() as i64, data.conversations);

    let ran = partitions_ran(&env, job.id).await;
    let owners: BTreeSet<&str> = ran.iter().filter_map(|r| r.owner.as_deref()).collect();
    assert!(owners.len() >= 2, "partitions were run by several workers: {owners:?}");
    let last_conversation =
        ran.iter().filter(|r| r.activity == "reindex_conversations").filter_map(|r| r.finished).max();
    let first_process =
        ran.iter().filter(|r| r.activity == "reindex_process_scorecards").filter_map(|r| r.started).min();
    assert!(
        last_conversation.zip(first_process).is_some_and(|(end, start)| end <= start),
        "the process activity started after every conversation partition finished: {last_conversation:?} {first_process:?}"
    );
}
