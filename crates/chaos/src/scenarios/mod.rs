//! The six fault scenarios, and what they share: a world in sync to start
//! from, reindex jobs, waiting on jobs.

pub mod clickhouse_outage;
pub mod cluster_kills;
pub mod fleet_kills;
pub mod postgres_restart;
pub mod reindex_kills;
pub mod torn_insert;

use std::time::{Duration, Instant};

use anyhow::bail;
use scorekeeper_analytics::WritePath;
use scorekeeper_domain::reindex::{KeyRange, ReindexScope};
use scorekeeper_jobs::{Job, JobFilter, JobState, JobStore};
use scorekeeper_tests::stored_jobs::full_reindex;
use uuid::Uuid;

use crate::world::World;

/// Copies every row of the world's customer from Postgres to ClickHouse
/// (direct, as a reindex would): the world starts in sync.
pub async fn mirror_everything(world: &World) -> anyhow::Result<()> {
    let scope = ReindexScope { customer_id: Some(world.customer), ..ReindexScope::default() };
    let mut after = 0;
    loop {
        let page = world.store.conversations_in_scope(&scope, KeyRange { after, until: None }, 5_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id.0;
        let batch = scorekeeper_domain::mirror::MirrorBatch { conversations: page, ..Default::default() };
        world.analytics.write(WritePath::Reindex, &batch).await?;
    }
    for chunk in world.scorecard_ids().await?.chunks(5_000) {
        let batch = world.store.scorecard_mirror(chunk).await?;
        world.analytics.write(WritePath::Reindex, &batch).await?;
    }
    Ok(())
}

/// Queues a reindex of all the customer's rows, both scorecard types, in
/// pages of `batch_size`.
pub async fn reindex_job(world: &World, batch_size: u32) -> anyhow::Result<Job> {
    Ok(JobStore::new(&world.store).create_job(&full_reindex(world.customer, Some(batch_size))).await?.0)
}

/// The job now; Postgres errors (a restart) are retried for a while.
pub async fn job(world: &World, id: Uuid) -> anyhow::Result<Job> {
    let started = Instant::now();
    loop {
        match JobStore::new(&world.store).get_job(id, None).await {
            Ok(Some(job)) => return Ok(job),
            Ok(None) => bail!("job {id} is gone"),
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Waits until the job is done (succeeded, failed or cancelled), or `within`.
pub async fn wait_done(world: &World, id: Uuid, within: Duration) -> anyhow::Result<Job> {
    let started = Instant::now();
    loop {
        let now = job(world, id).await?;
        if now.state.is_terminal() {
            return Ok(now);
        }
        if started.elapsed() > within {
            bail!("job {id} not done after {within:?}: {:?}, attempts {}", now.state, now.attempts_made());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Jobs of every kind not yet finished, and failed ones, over the database.
pub async fn job_counts(world: &World) -> anyhow::Result<(i64, i64, i64)> {
    let jobs = JobStore::new(&world.store);
    let count = |state| {
        let jobs = jobs.clone();
        async move { jobs.count_jobs(&JobFilter { state: Some(state), ..JobFilter::default() }).await }
    };
    let unfinished = count(JobState::Queued).await? + count(JobState::Running).await?;
    Ok((unfinished, count(JobState::Succeeded).await?, count(JobState::Failed).await?))
}

pub fn succeeded(job: &Job) -> bool {
    job.state == JobState::Succeeded
}
