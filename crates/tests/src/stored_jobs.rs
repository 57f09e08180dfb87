//! Jobs as the engine stores them, read straight from their tables through
//! [`JobStore`] (not through the API): what the fault tests watch while
//! they kill workers and stop servers.

use std::time::{Duration, Instant};

use scorekeeper_domain::reindex::{ReindexScope, ReindexSpec};
use scorekeeper_domain::{CustomerId, TemplateType};
use scorekeeper_jobs::{Job, JobState, JobStore, NewJob};
use scorekeeper_sync::reindex::new_job;

/// A reindex of all of `customer`'s rows, both scorecard types, in pages of
/// `batch_size` (`None`: the worker's settings), owned by the customer.
pub fn full_reindex(customer: CustomerId, batch_size: Option<u32>) -> NewJob {
    let spec = ReindexSpec {
        scope: ReindexScope { customer_id: Some(customer), ..ReindexScope::default() },
        scorecard_types: vec![TemplateType::Conversation, TemplateType::Process],
        conversations_batch_size: batch_size,
        process_scorecards_batch_size: batch_size,
    };
    new_job(&spec, Some(customer))
}

/// Rows the job's activities recorded, all activities together.
pub fn rows_done(job: &Job) -> i64 {
    job.activities.iter().map(|a| a.rows_done).sum()
}

/// Waits until `check` holds for the stored job, reading it every 10 ms.
/// Panics with the job when `within` passes first, or at once when the job
/// failed without `check` holding.
pub async fn wait_job(jobs: &JobStore, created: &Job, within: Duration, check: impl Fn(&Job) -> bool) -> Job {
    let started = Instant::now();
    loop {
        let now = jobs.get_job(created.id, None).await.expect("reading the job").expect("the job exists");
        if check(&now) {
            return now;
        }
        assert_ne!(now.state, JobState::Failed, "the job failed: {:?}", now.error);
        assert!(started.elapsed() < within, "job did not get there in {within:?}: {now:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
