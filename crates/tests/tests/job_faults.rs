//! The job engine under faults: a stale worker is fenced, many workers never
//! write a batch twice, a ClickHouse or Postgres outage in the middle of a
//! reindex is retried until the job succeeds from its checkpoint, and,
//! seen through the JobService, a permanent ClickHouse error fails the job
//! at once while an outage is retried until it ends.

use std::time::Duration;

use scorekeeper_domain::CustomerId;
use scorekeeper_jobs::JobStore;
use scorekeeper_jobs::job::{AttemptOutcome, Job, JobState, Lease, ProgressUpdate};
use scorekeeper_proto::coaching::ScorecardTemplateType as Kind;
use scorekeeper_proto::v1;
use scorekeeper_store::Store;
use scorekeeper_sync::job_registry as registry;
use scorekeeper_sync::reindex::{JOB_TYPE, ReindexSettings};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{BulkData, Options, bulk_import, test_worker};
use scorekeeper_tests::jobs::{
    created, get_job, is_terminal, reindex_request, scorecard_types, state, wait_for,
};
use scorekeeper_tests::mirror::assert_clickhouse_holds;
use scorekeeper_tests::stored_jobs::{full_reindex, rows_done, wait_job};
use scorekeeper_tests::world::{Truth, World};
use tokio::sync::watch;

/// Creates a reindex job for `customer` of both scorecard types.
async fn reindex_job(store: &JobStore, customer: CustomerId, batch_size: u32) -> Job {
    store.create_job(&full_reindex(customer, Some(batch_size))).await.expect("creating a job").0
}

async fn job(store: &JobStore, job: &Job) -> Job {
    store.get_job(job.id, None).await.expect("reading the job").expect("the job exists")
}

/// A checkpoint after every page, so the first progress a test waits for
/// comes early and the fault it then injects lands mid-job (the default
/// commits every 1M rows or 5 s: a quick job would show progress only at
/// its end).
fn checkpoint_per_page() -> Options {
    Options { reindex: ReindexSettings { write_rows: 1, ..ReindexSettings::default() }, ..Options::default() }
}

fn succeeded(job: &Job) -> bool {
    assert_ne!(job.state, JobState::Failed, "the job failed: {:?}", job.error);
    job.state == JobState::Succeeded
}

/// ClickHouse holds exactly Postgres's live rows of every table.
async fn assert_mirrored(env: &TestEnv, data: &BulkData) {
    env.assert_scorecards_mirrored().await;
    assert_eq!(env.clickhouse_conversations().await.len() as i64, data.conversations);
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_write() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let created = reindex_job(&env.jobs, customer.id, 10).await;
    let lease = Duration::from_millis(500);
    let a = env.jobs.claim_job("worker-a", lease, &[JOB_TYPE], 2).await.unwrap().expect("a claims the job");
    assert_eq!(a.fence, 1);
    let progress = |rows| ProgressUpdate {
        activity: "reindex_conversations",
        rows,
        pages: 1,
        checkpoint: None,
        finished: false,
        active: Duration::from_millis(1),
    };
    assert!(matches!(
        env.jobs.record_progress(created.id, a.fence, &progress(5)).await.unwrap(),
        Lease::Held { .. }
    ));

    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let b = env
        .jobs
        .claim_job("worker-b", Duration::from_secs(30), &[JOB_TYPE], 2)
        .await
        .unwrap()
        .expect("b takes over");
    assert_eq!(b.fence, 2, "the takeover is a new attempt");
    assert_eq!(b.job.activities[0].rows_done, 5, "b sees a's recorded progress");

    // a wakes up: every write it tries is refused, and changes nothing.
    assert_eq!(env.jobs.record_progress(created.id, a.fence, &progress(100)).await.unwrap(), Lease::Lost);
    assert_eq!(env.jobs.heartbeat(created.id, a.fence, lease).await.unwrap(), Lease::Lost);
    assert!(!env.jobs.finish_attempt(created.id, a.fence, &AttemptOutcome::Succeeded).await.unwrap());
    let now = job(&env.jobs, &created).await;
    assert_eq!((now.state, now.attempts, rows_done(&now)), (JobState::Running, 2, 5));
    assert_eq!(now.lease_owner.as_deref(), Some("worker-b"));

    // b's writes go through.
    assert!(matches!(
        env.jobs.record_progress(created.id, b.fence, &progress(7)).await.unwrap(),
        Lease::Held { .. }
    ));
    assert!(env.jobs.finish_attempt(created.id, b.fence, &AttemptOutcome::Succeeded).await.unwrap());
    let done = job(&env.jobs, &created).await;
    assert_eq!((done.state, rows_done(&done)), (JobState::Succeeded, 12));
}

#[tokio::test]
async fn a_checkpoint_that_does_not_decode_fails_the_job_and_names_the_activity() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    bulk_import(&env.store, customer.id, 30).await;
    let created = reindex_job(&env.jobs, customer.id, 5).await;
    // An earlier attempt (another version, a bug) left a checkpoint this
    // version cannot read, then gave the job back to the queue.
    let first =
        env.jobs.claim_job("old-worker", Duration::from_secs(30), &[JOB_TYPE], 2).await.unwrap().unwrap();
    let unreadable = serde_json::json!({ "phase": "sideways", "after": "the middle" });
    let update = ProgressUpdate {
        activity: "reindex_conversations",
        rows: 0,
        pages: 1,
        checkpoint: Some(&unreadable),
        finished: false,
        active: Duration::ZERO,
    };
    assert_eq!(
        env.jobs.record_progress(created.id, first.fence, &update).await.unwrap(),
        Lease::Held { cancel_requested: false }
    );
    let error = scorekeeper_jobs::JobError {
        code: "clickhouse".into(),
        message: "down".into(),
        retryable: true,
        details: serde_json::Value::Null,
    };
    let requeue = AttemptOutcome::Retry { error, at: chrono::Utc::now() };
    assert!(env.jobs.finish_attempt(created.id, first.fence, &requeue).await.unwrap());

    let (stop, stop_rx) = watch::channel(false);
    let registry =
        registry(env.server_store.clone(), env.server_analytics.clone(), ReindexSettings::default());
    let mut config = scorekeeper_jobs::WorkerConfig::new("worker-now");
    config.poll_interval = Duration::from_millis(50);
    tokio::spawn(
        scorekeeper_jobs::Worker::new(JobStore::new(&env.server_store), registry, config).run(stop_rx),
    );
    let failed = wait_job(&env.jobs, &created, Duration::from_secs(30), |j| j.state.is_terminal()).await;
    let _ = stop.send(true);

    assert_eq!(failed.state, JobState::Failed, "{failed:#?}");
    assert_eq!(failed.attempts, 2, "not retried: no attempt can read the checkpoint");
    let error = failed.error.expect("the failure is recorded");
    assert_eq!(error.code, "invalid_checkpoint", "{error:?}");
    assert!(!error.retryable, "{error:?}");
    assert!(error.message.contains("reindex_conversations"), "the message names the activity: {error:?}");
    assert_eq!(error.details["activity"], "reindex_conversations", "{error:?}");
    let activity = &failed.activities[0];
    assert_eq!(
        (activity.rows_done, activity.checkpoint.as_ref()),
        (0, Some(&unreadable)),
        "the activity did not start over: nothing read, the checkpoint kept"
    );
    assert_eq!(env.clickhouse_row_count("conversations").await, 0, "nothing was copied");
}

#[tokio::test]
async fn many_workers_and_jobs_write_each_batch_once() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let mut jobs = Vec::new();
    let mut total_rows = 0;
    for i in 0..12 {
        let customer = env.customer(&format!("customer-{i}")).await;
        let data = bulk_import(&env.store, customer.id, 60).await;
        total_rows += data.rows;
        jobs.push((reindex_job(&env.jobs, customer.id, 7).await, data));
    }
    let (stop, stop_rx) = watch::channel(false);
    let registry =
        registry(env.server_store.clone(), env.server_analytics.clone(), ReindexSettings::default());
    for w in 0..4 {
        let mut config = scorekeeper_jobs::WorkerConfig::new(format!("worker-{w}"));
        config.poll_interval = Duration::from_millis(50);
        let worker =
            scorekeeper_jobs::Worker::new(JobStore::new(&env.server_store), registry.clone(), config);
        tokio::spawn(worker.run(stop_rx.clone()));
    }
    for (created, data) in &jobs {
        let done = wait_job(&env.jobs, created, Duration::from_secs(60), succeeded).await;
        assert_eq!(done.attempts_made(), 1, "no job was taken over while its lease was held");
        assert_eq!(rows_done(&done), data.rows, "every row was read once");
    }
    let _ = stop.send(true);
    // Without FINAL: had any batch been written twice, ClickHouse would
    // hold more rows than Postgres.
    let raw = env.clickhouse_row_count("conversations").await
        + env.clickhouse_row_count("scorecards").await
        + env.clickhouse_row_count("scores").await;
    assert_eq!(raw as i64, total_rows, "each batch reached ClickHouse exactly once");
    env.assert_scorecards_mirrored().await;
}

#[tokio::test]
async fn a_partition_waits_out_an_outage_longer_than_its_attempts() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let data = bulk_import(&env.store, customer.id, 50).await;
    // Retries every 20 to 100 ms: the reindex's 10 attempts would be spent
    // in under a second of outage.
    let mut config = test_worker("patient");
    config.retry_backoff =
        Some(scorekeeper_retry::Backoff::new(Duration::from_millis(20), Duration::from_millis(100)));
    let registry =
        registry(env.server_store.clone(), env.server_analytics.clone(), ReindexSettings::default());
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(
        scorekeeper_jobs::Worker::new(JobStore::new(&env.server_store), registry, config).run(stop_rx),
    );
    env.proxy.cut();
    let created = reindex_job(&env.jobs, customer.id, 10).await;
    let max = created.max_attempts;
    let waited =
        wait_job(&env.jobs, &created, Duration::from_secs(60), |j| j.attempts_made() > max + 2).await;
    assert_ne!(waited.state, JobState::Failed, "{waited:#?}");
    assert!(waited.error.as_ref().is_some_and(|e| e.retryable && e.code == "clickhouse"), "{waited:#?}");
    env.proxy.restore();
    let done = wait_job(&env.jobs, &created, Duration::from_secs(60), succeeded).await;
    let _ = stop.send(true);
    assert!(done.error.is_none(), "{done:#?}");
    assert_mirrored(&env, &data).await;
}

#[tokio::test]
async fn a_clickhouse_outage_mid_job_is_retried_from_the_checkpoint() {
    let env = TestEnv::start_with(checkpoint_per_page()).await;
    let customer = env.customer("acme").await;
    let data = bulk_import(&env.store, customer.id, 200).await;
    let created = reindex_job(&env.jobs, customer.id, 5).await;
    wait_job(&env.jobs, &created, Duration::from_secs(30), |j| rows_done(j) > 0).await;
    env.proxy.cut();
    let failed = wait_job(&env.jobs, &created, Duration::from_secs(30), |j| j.error.is_some()).await;
    let error = failed.error.clone().unwrap();
    assert!(error.retryable, "an unreachable ClickHouse is worth retrying: {error:?}");
    assert_ne!(failed.state, JobState::Failed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.proxy.restore();
    let done = wait_job(&env.jobs, &created, Duration::from_secs(60), succeeded).await;
    assert!(done.attempts_made() >= 2, "the outage cost at least one attempt");
    assert_eq!(rows_done(&done), data.rows, "the retry resumed from the checkpoint, re-reading nothing");
    assert_mirrored(&env, &data).await;
}

#[tokio::test]
async fn a_postgres_outage_mid_job_is_survived() {
    let env = TestEnv::start_with(checkpoint_per_page()).await;
    let customer = env.customer("acme").await;
    let data = bulk_import(&env.store, customer.id, 200).await;
    let created = reindex_job(&env.jobs, customer.id, 5).await;
    wait_job(&env.jobs, &created, Duration::from_secs(30), |j| rows_done(j) > 0).await;
    // Every connection of the worker is cut, and reconnects are refused,
    // as in a Postgres restart.
    env.postgres_proxy.cut();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = job(&env.jobs, &created).await;
    env.postgres_proxy.restore();
    let done = wait_job(&env.jobs, &created, Duration::from_secs(60), succeeded).await;
    assert!(rows_done(&during) < data.rows, "the outage hit the job in the middle");
    assert!(done.attempts_made() >= 2, "the outage cost at least one attempt");
    assert_eq!(rows_done(&done), data.rows, "the job resumed from its checkpoint");
    assert_mirrored(&env, &data).await;
}

#[tokio::test]
async fn a_real_postgres_restart_mid_job_is_survived() {
    // ClickHouse from the harness; Postgres a cluster of this test's own, so
    // restarting it disturbs no other test.
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let cluster = tokio::task::spawn_blocking(scorekeeper_tests::private_postgres::PrivatePostgres::start)
        .await
        .unwrap()
        .expect("a private Postgres cluster");
    let store = Store::connect(&cluster.url(), 8).unwrap();
    scorekeeper_jobs::migrate_postgres(&store).await.expect("migrating the private cluster");
    let jobs = JobStore::new(&store);
    let customer = store.ensure_customer("acme").await.unwrap();
    let data = bulk_import(&store, customer, 200).await;
    // Pages of 2 with a checkpoint after each: the first checkpoint comes
    // early and a hundred pages follow it, so the restart lands mid-job
    // (with the default REINDEX_WRITE_ROWS a small job commits only at its
    // end, and a quick one could succeed before Postgres stopped).
    let created = reindex_job(&jobs, customer, 2).await;

    let (stop, stop_rx) = watch::channel(false);
    let settings = ReindexSettings { write_rows: 1, ..ReindexSettings::default() };
    let registry = registry(store.clone(), env.analytics.clone(), settings);
    let config = test_worker("worker-restart");
    tokio::spawn(scorekeeper_jobs::Worker::new(jobs.clone(), registry, config).run(stop_rx));

    wait_job(&jobs, &created, Duration::from_secs(30), |j| rows_done(j) > 0).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop().expect("pg_ctl stop -m fast");
        std::thread::sleep(Duration::from_secs(1));
        cluster.start_again().expect("pg_ctl start");
        cluster
    })
    .await
    .unwrap();
    let done = wait_job(&jobs, &created, Duration::from_secs(60), succeeded).await;
    let _ = stop.send(true);
    assert!(done.attempts_made() >= 2, "the restart cost at least one attempt: {done:#?}");
    assert_eq!(rows_done(&done), data.rows, "the job resumed from its checkpoint");
    env.assert_scorecards_mirrored_from(&store).await;
    drop(cluster);
}

#[tokio::test]
async fn a_permanent_clickhouse_error_fails_the_job_at_once() {
    let (env, world) = World::start().await;
    env.clickhouse_client().query("DROP TABLE scores").execute().await.expect("dropping scores");
    let customer = &world.a.customer;
    let mut api = customer.jobs();
    let job = created(
        &mut api,
        reindex_request(v1::ReindexConversationsPayload { customer_id: customer.id.0, ..Default::default() }),
    )
    .await;
    let failed = wait_for(&mut api, &job.id, "finished", is_terminal).await;
    assert_eq!(state(&failed), v1::JobState::Failed, "inserting into a missing table: {failed:?}");
    assert_eq!(failed.attempts, 1, "a permanent error must not be retried: {failed:?}");
    let error = failed.error.as_ref().expect("a failed job shows its error");
    assert_eq!((error.code.as_str(), error.retryable), ("clickhouse", false), "{error:?}");
    // A customer token sees a safe sentence and the correlation id, never
    // ClickHouse's exception (its code, the database and table names).
    let database = &env.clickhouse_config().database;
    assert_eq!(error.correlation_id.len(), 32, "{error:?}");
    assert_eq!(
        error.message,
        format!("the analytics store failed while the job ran (correlation id {})", error.correlation_id)
    );
    assert!(!error.message.contains(database.as_str()) && !error.message.contains("Code"), "{error:?}");
    // An admin token sees the whole chain, with the same correlation id.
    let admin = env.admin(customer).await;
    let seen_by_admin = get_job(&mut admin.jobs(), &job.id).await.error.expect("the same error");
    assert_eq!(seen_by_admin.correlation_id, error.correlation_id);
    assert!(seen_by_admin.message.contains("60"), "ClickHouse's code 60: {seen_by_admin:?}");
    assert!(seen_by_admin.message.contains(database.as_str()), "the database: {seen_by_admin:?}");
    assert!(failed.finished_at.is_some(), "{failed:?}");
    assert!(failed.progress.iter().all(|p| !p.finished), "no activity finished: {:?}", failed.progress);
}

#[tokio::test]
async fn a_clickhouse_outage_is_retried_until_it_ends() {
    let (env, world) = World::start().await;
    let a = &world.a;
    let mut api = a.customer.jobs();
    env.proxy.cut();
    let request = reindex_request(v1::ReindexConversationsPayload {
        customer_id: a.customer.id.0,
        reindex_scorecard_types: scorecard_types(&[Kind::Conversation, Kind::Process]),
        ..Default::default()
    });
    let job = created(&mut api, request).await;
    // Between two attempts: the one seen has failed, so success needs another.
    let retrying = wait_for(&mut api, &job.id, "retrying", |j| {
        j.attempts >= 2
            && matches!(state(j), v1::JobState::Queued | v1::JobState::Running)
            && j.error.as_ref().is_some_and(|e| e.retryable)
            && j.progress.iter().flat_map(|a| &a.partitions).all(|p| p.state == "queued")
    })
    .await;
    assert_eq!(retrying.error.as_ref().map(|e| e.code.as_str()), Some("clickhouse"), "{retrying:?}");
    env.proxy.restore();

    let done = wait_for(&mut api, &job.id, "finished", is_terminal).await;
    assert_eq!(state(&done), v1::JobState::Succeeded, "once ClickHouse is back: {done:?}");
    assert!(done.attempts > retrying.attempts, "{done:?}");
    assert!(done.error.is_none(), "a succeeded job shows no error of its earlier attempts: {done:?}");
    let truth = Truth::read(&env, &world).await;
    assert_clickhouse_holds(&env, "after the outage", &truth.all_of(a)).await;
}
