//! `kill -9` of a worker process in the middle of a reindex: another worker
//! process takes the job over once the lease expires, resumes from the
//! checkpoint (rows already recorded are not read again), and the job
//! succeeds with ClickHouse equal to Postgres.

use std::time::Duration;

use scorekeeper_jobs::JobState;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::process::{ServeProcess, serve};
use scorekeeper_tests::stored_jobs::{full_reindex, rows_done, wait_job};

/// A worker-only `scorekeeper serve` on this test's databases.
fn worker_process(env: &TestEnv) -> ServeProcess {
    serve(env!("CARGO_BIN_EXE_scorekeeper"), env)
        .without_api()
        .without_dispatcher()
        .env("JOB_LEASE_SECONDS", "3")
        // A checkpoint after every page: the first progress the test sees
        // comes early, with most pages still to go, so the kill lands
        // mid-job (the default commits every 1M rows or 5 s, and a quick
        // run could finish before the kill).
        .env("REINDEX_WRITE_ROWS", "1")
        .spawn()
        .expect("starting a worker process")
}

#[tokio::test]
async fn a_killed_worker_s_job_is_resumed_by_another() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let data = bulk_import(&env.store, customer.id, 1000).await;
    let (job, _) = env.jobs.create_job(&full_reindex(customer.id, Some(10))).await.unwrap();

    let mut first = worker_process(&env);
    let running = wait_job(&env.jobs, &job, Duration::from_secs(30), |j| rows_done(j) > 0).await;
    assert_eq!(running.state, JobState::Running);
    first.kill().await.expect("kill -9 the first worker");
    let at_kill = env.jobs.get_job(job.id, None).await.unwrap().unwrap();
    assert!(
        rows_done(&at_kill) < data.rows,
        "killed in the middle: {} of {} rows",
        rows_done(&at_kill),
        data.rows
    );

    let _second = worker_process(&env);
    let done = wait_job(&env.jobs, &job, Duration::from_secs(90), |j| j.state == JobState::Succeeded).await;
    assert_eq!(done.attempts, 2, "the second worker took the job over once");
    assert_eq!(rows_done(&done), data.rows, "resumed from the checkpoint: no recorded row was read again");
    assert!(done.activities.iter().all(|a| a.finished));
    env.assert_scorecards_mirrored().await;
    assert_eq!(env.clickhouse_conversations().await.len() as i64, data.conversations);
}
