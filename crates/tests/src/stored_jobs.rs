//! Jobs as the engine stores them, read straight from their tables through
//! [`JobStore`] (not through the API): what the fault tests watch while
//! they kill workers and stop servers.

use std::time::{Duration, Instant};

use scorekeeper_jobs::{Job, JobState, JobStore};

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
