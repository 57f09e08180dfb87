//! One customer cannot take the workers, the queue or the audits from
//! another: claims take turns between customers within a per-customer
//! running limit, CreateJob and Audit are limited per customer, and a
//! repair of a scope already being repaired is not queued twice.

use std::time::{Duration, Instant};

use scorekeeper_domain::CustomerId;
use scorekeeper_jobs::{Job, JobState, JobStore, Worker};
use scorekeeper_proto::v1::{self as pb, AuditRequest};
use scorekeeper_service::TenantLimits;
use scorekeeper_sync::reindex::{JOB_TYPE, ReindexSettings};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import, test_worker};
use scorekeeper_tests::fixtures::conversations;
use scorekeeper_tests::jobs::reindex_request;
use scorekeeper_tests::stored_jobs::{full_reindex, wait_job};
use tokio::sync::watch;
use tonic::Code;

async fn claim(jobs: &JobStore, max_running: usize) -> Option<Job> {
    let claim = jobs.claim_job("worker", Duration::from_secs(30), &[JOB_TYPE], max_running).await.unwrap();
    claim.map(|c| c.job)
}

#[tokio::test]
async fn claims_take_turns_between_customers_within_the_running_limit() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let (a, b) = (env.customer("a").await.id, env.customer("b").await.id);
    let mut a_jobs = Vec::new();
    for _ in 0..20 {
        a_jobs.push(env.jobs.create_job(&full_reindex(a, None)).await.unwrap().0.id);
    }
    let b_job = env.jobs.create_job(&full_reindex(b, None)).await.unwrap().0.id;

    // Limit 10: first a's oldest, then b's (a has one running), then a's.
    let order: Vec<_> = [claim(&env.jobs, 10).await, claim(&env.jobs, 10).await, claim(&env.jobs, 10).await]
        .into_iter()
        .map(|job| job.expect("a job to claim").id)
        .collect();
    assert_eq!(order, [a_jobs[0], b_job, a_jobs[1]], "b's one job waits for one of a's, not twenty");
    // a runs 2 now: at a limit of 2, a's other 18 queued jobs wait.
    assert!(claim(&env.jobs, 2).await.is_none(), "no claim past the running limit");
    let third = claim(&env.jobs, 3).await.expect("below a limit of 3");
    assert_eq!(third.id, a_jobs[2]);
}

#[tokio::test]
async fn a_customer_with_one_job_is_not_starved_by_one_with_twenty() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let (a, b) = (env.customer("a").await.id, env.customer("b").await.id);
    bulk_import(&env.store, a, 1000).await;
    bulk_import(&env.store, b, 1000).await;
    // Twenty jobs of a queued before b's one, then one worker that runs one
    // job at a time: the claim order is all there is.
    let mut a_jobs = Vec::new();
    for _ in 0..20 {
        a_jobs.push(env.jobs.create_job(&full_reindex(a, None)).await.unwrap().0);
    }
    let b_job = env.jobs.create_job(&full_reindex(b, None)).await.unwrap().0;
    let mut config = test_worker("the one worker");
    config.concurrency = 1;
    let registry =
        scorekeeper_sync::job_registry(env.store.clone(), env.analytics.clone(), ReindexSettings::default());
    let (stop, stopping) = watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn(Worker::new(JobStore::new(&env.store), registry, config).run(stopping));

    let succeeded = |j: &Job| j.state == JobState::Succeeded;
    let b_done = wait_job(&env.jobs, &b_job, Duration::from_secs(120), succeeded).await;
    let b_wait = started.elapsed();
    let b_started = b_done.started_at.expect("b's job started");
    let mut a_started_before_b = 0;
    let mut last_a_done = b_wait;
    for job in &a_jobs {
        let job = wait_job(&env.jobs, job, Duration::from_secs(300), succeeded).await;
        a_started_before_b += usize::from(job.started_at.expect("a's job started") < b_started);
        last_a_done = started.elapsed();
    }
    let _ = stop.send(true);
    worker.await.unwrap();
    eprintln!(
        "queued behind 20 of another customer's jobs, b's one job was done {b_wait:?} after the worker \
         started, the last of a's after {last_a_done:?}; {a_started_before_b} of a's started before b's"
    );
    // a's oldest job first (neither customer had a turn yet), then b's:
    // first in, first out would have run all twenty of a's first.
    assert_eq!(a_started_before_b, 1, "a's jobs started before b's");
}

#[tokio::test]
async fn create_job_and_audit_are_limited_per_customer_and_admins_are_not() {
    let limits = TenantLimits { max_queued_jobs_per_customer: 3, audits_per_minute_per_customer: 2 };
    let env =
        TestEnv::start_with(Options { worker: false, dispatcher: false, limits, ..Options::default() }).await;
    let (a, b) = (env.customer("a").await, env.customer("b").await);
    let request = |customer_id: CustomerId| {
        reindex_request(pb::ReindexConversationsPayload { customer_id: customer_id.0, ..Default::default() })
    };
    for _ in 0..3 {
        a.jobs().create_job(request(a.id)).await.expect("within the queue limit");
    }
    let refused = a.jobs().create_job(request(a.id)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("JOBS_MAX_QUEUED_PER_CUSTOMER"), "{}", refused.message());
    b.jobs().create_job(request(b.id)).await.expect("another customer's queue is its own");
    env.admin(&a).await.jobs().create_job(request(a.id)).await.expect("an operator is not limited");
    assert_eq!(env.jobs.list_jobs(&Default::default(), None, 100).await.unwrap().len(), 5);

    for _ in 0..2 {
        a.analytics().audit(AuditRequest::default()).await.expect("within the audit limit");
    }
    let refused = a.analytics().audit(AuditRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("AUDITS_PER_MINUTE_PER_CUSTOMER"), "{}", refused.message());
    b.analytics().audit(AuditRequest::default()).await.expect("another customer's audits are its own");
}

#[tokio::test]
async fn a_repair_already_queued_is_not_queued_twice() {
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    let customer = env.customer("drifted").await;
    // Upserted but never indexed: ClickHouse lacks them.
    conversations(&customer, 3).await;
    let repair = || async {
        let response = customer.analytics().audit(AuditRequest { repair: true, ..Default::default() }).await;
        response.expect("audit with repair").into_inner().repair.expect("a repair").job_ids
    };
    let first = repair().await;
    assert_eq!(first.len(), 1, "{first:?}");
    let second = repair().await;
    assert_eq!(second, first, "the queued repair is answered again, not queued anew");
    assert_eq!(env.jobs.list_jobs(&Default::default(), None, 100).await.unwrap().len(), 1);
}
