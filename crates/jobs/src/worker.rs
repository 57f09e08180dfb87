//! The worker loop: claim a runnable job (its attempt coordinates it) or a
//! partition of one, keep its lease alive, run its handler, and record how
//! it ended. [`Runner`] does the claiming and running; a job's attempt uses
//! the same one to run its own partitions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use scorekeeper_retry::Backoff;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument;
use uuid::Uuid;

use crate::context::JobContext;
use crate::handler::{Registry, RegistryError, RunError, StopReason};
use crate::job::{AttemptOutcome, Claim, Holding, JobError, PartitionClaim};
use crate::lease::{keep_lease, record_end};
use crate::store::JobStore;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this worker in `lease_owner` and logs.
    pub worker_id: String,
    /// Claims (job attempts and partitions) run at once by this process.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat; a killed worker's job or
    /// partition is taken over after this.
    pub lease: Duration,
    /// How often an idle worker looks for work (notifications usually wake
    /// it sooner).
    pub poll_interval: Duration,
    /// Between claims that failed (Postgres unreachable); capped at 5 s it
    /// also paces the retries of recording an attempt's end.
    pub claim_backoff: Backoff,
    /// Replaces every job type's own backoff between attempts
    /// ([`RetryPolicy`](crate::handler::RetryPolicy)) when set; the tests
    /// use a short one.
    pub retry_backoff: Option<Backoff>,
    /// Jobs of one customer running at once across every worker
    /// (`JOBS_MAX_RUNNING_PER_CUSTOMER`); see `JobStore::claim_job`.
    pub max_running_per_customer: usize,
    /// Partitions of one customer's jobs running at once across every
    /// worker (`JOBS_MAX_PARTITIONS_PER_CUSTOMER`); see
    /// `JobStore::claim_partition`.
    pub max_partitions_per_customer: usize,
}

impl WorkerConfig {
    pub fn new(worker_id: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            worker_id: worker_id.into(),
            concurrency: 2,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            claim_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            retry_backoff: None,
            max_running_per_customer: 2,
            max_partitions_per_customer: 8,
        }
    }
}

pub struct Worker {
    runner: Arc<Runner>,
}

/// Claims and runs job attempts and partitions for one worker.
pub(crate) struct Runner {
    store: JobStore,
    registry: Registry,
    config: WorkerConfig,
    job_types: Vec<i16>,
    /// Counts the notifications heard on the job channel, so that every
    /// waiter (the loop, job attempts waiting for partitions) wakes.
    wakes: watch::Sender<u64>,
}

impl Worker {
    pub fn new(store: JobStore, registry: Registry, config: WorkerConfig) -> Worker {
        let job_types = registry.job_types();
        let runner = Runner { store, registry, config, job_types, wakes: watch::Sender::new(0) };
        Worker { runner: Arc::new(runner) }
    }

    /// Runs until `shutdown` turns true. Claims in flight then finish only
    /// if they end before the process does; one cut off is taken over by
    /// another worker after its lease.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let runner = self.runner;
        let heard = Arc::new(Notify::new());
        let listener = {
            let store = runner.store.clone();
            let heard = heard.clone();
            tokio::spawn(async move { store.listen(heard).await })
        };
        let forwarder = {
            let runner = runner.clone();
            tokio::spawn(async move {
                loop {
                    heard.notified().await;
                    runner.wakes.send_modify(|n| *n = n.wrapping_add(1));
                }
            })
        };
        let mut woken = runner.wakes.subscribe();
        let slots = Arc::new(Semaphore::new(runner.config.concurrency));
        let mut failures = 0u32;
        while !*shutdown.borrow() {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            match runner.claim_any().await {
                Ok(Some(work)) => {
                    failures = 0;
                    let runner = runner.clone();
                    tokio::spawn(async move {
                        match work {
                            Work::Attempt(claim) => {
                                let span = tracing::info_span!("job", id = %claim.job.id, job_type = claim.job.job_type, attempt = claim.fence);
                                runner.clone().run_attempt(*claim).instrument(span).await;
                            }
                            Work::Partition(claim) => runner.run_partition(*claim).await,
                        }
                        drop(permit);
                    });
                    continue;
                }
                Ok(None) => failures = 0,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, "claiming a job failed");
                }
            }
            drop(permit);
            let pause = if failures == 0 {
                runner.config.poll_interval
            } else {
                runner.config.claim_backoff.delay(failures)
            };
            tokio::select! {
                _ = woken.changed() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        listener.abort();
        forwarder.abort();
    }
}

/// What a free slot claimed.
enum Work {
    Attempt(Box<Claim>),
    Partition(Box<PartitionClaim>),
}

impl Runner {
    /// A job to start (or take over) first: its attempt then works on its
    /// own partitions, so new jobs start at once; else a partition of a
    /// running job, to help it along.
    async fn claim_any(&self) -> scorekeeper_store::Result<Option<Work>> {
        let config = &self.config;
        let claimed = self
            .store
            .claim_job(&config.worker_id, config.lease, &self.job_types, config.max_running_per_customer)
            .await?;
        if let Some(claim) = claimed {
            return Ok(Some(Work::Attempt(Box::new(claim))));
        }
        Ok(self.claim_partition(None).await?.map(|claim| Work::Partition(Box::new(claim))))
    }

    /// Claims a partition (of job `only_job`, when given).
    pub(crate) async fn claim_partition(
        &self,
        only_job: Option<Uuid>,
    ) -> scorekeeper_store::Result<Option<PartitionClaim>> {
        let config = &self.config;
        self.store
            .claim_partition(
                &config.worker_id,
                config.lease,
                &self.job_types,
                config.max_partitions_per_customer,
                only_job,
            )
            .await
    }

    /// Resolves at the next notification on the job channel.
    pub(crate) async fn woken(&self) {
        let _ = self.wakes.subscribe().changed().await;
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    async fn run_attempt(self: Arc<Self>, claim: Claim) {
        let Claim { job, fence } = claim;
        tracing::info!("attempt started");
        metrics::counter!(crate::metrics::JOB_ATTEMPTS_TOTAL, "job_type" => job.job_type.to_string())
            .increment(1);
        let holding = Holding::Job(job.id);
        let ctx = JobContext::new(self.store.clone(), job, fence, Some(self.clone()));
        let started = Instant::now();
        let attempts = ctx.job().attempts;
        let budget = attempts < ctx.job().max_attempts;
        let outcome = self.run_claim(&ctx, &holding, attempts, budget, self.registry.run(&ctx)).await;
        let word = outcome.as_ref().map_or("lease_lost", AttemptOutcome::word);
        metrics::counter!(crate::metrics::JOB_ATTEMPTS_ENDED_TOTAL, "job_type" => ctx.job().job_type.to_string(), "outcome" => word)
            .increment(1);
        if let Some(outcome) = outcome {
            tracing::info!(elapsed = ?started.elapsed(), outcome = outcome.word(), "attempt ended");
            self.finish(&holding, fence, outcome).await;
        }
    }

    /// Runs one claim of a partition to its end and records it.
    pub(crate) async fn run_partition(&self, claim: PartitionClaim) {
        let PartitionClaim { job, partition, fence } = claim;
        let job_type = job.job_type;
        let holding =
            Holding::Partition { job: job.id, activity: partition.activity.clone(), n: partition.n };
        let span = tracing::info_span!("partition", job = %job.id, activity = %partition.activity, n = partition.n, attempt = fence);
        let ctx = JobContext::for_partition(self.store.clone(), job, partition, fence);
        async {
            let started = Instant::now();
            // A partition's retryable failure spends no attempt: it waits
            // out an outage (see `JobStore::claim_partition`).
            let outcome = self.run_claim(&ctx, &holding, fence, true, self.registry.run_partition(&ctx)).await;
            let word = outcome.as_ref().map_or("lease_lost", AttemptOutcome::word);
            metrics::counter!(crate::metrics::JOB_PARTITIONS_TOTAL, "job_type" => job_type.to_string(), "outcome" => word)
                .increment(1);
            tracing::info!(elapsed = ?started.elapsed(), outcome = word, "partition claim ended");
            if let Some(outcome) = outcome {
                self.finish(&holding, fence, outcome).await;
            }
        }
        .instrument(span)
        .await
    }

    /// Runs a claim's handler (`run`, or the registry's refusal of it)
    /// while keeping the claim's lease, and decides how it ended after
    /// `attempts` claims, with or without `budget` left for a retry (see
    /// [`decide`]); `None` when the claim was lost.
    async fn run_claim<'a>(
        &self,
        ctx: &'a JobContext,
        holding: &Holding,
        attempts: i32,
        budget: bool,
        run: Result<BoxFuture<'a, Result<(), RunError>>, RegistryError>,
    ) -> Option<AttemptOutcome> {
        let (run, policy) = match (run, self.registry.retry_policy(ctx.job().job_type)) {
            (Ok(run), Ok(policy)) => (run, policy),
            (Err(error), _) | (_, Err(error)) => return Some(AttemptOutcome::Failed(unregistered(error))),
        };
        let result = tokio::select! {
            result = run => result,
            // The heartbeat fires this on a lost lease: drop the handler's
            // future at once, whatever it is waiting on.
            () = keep_lease(&self.store, holding, ctx.fence(), self.config.lease, ctx.stop_signal()) => {
                Err(RunError::Stopped(ctx.stop_reason().unwrap_or(StopReason::LeaseLost)))
            }
        };
        let backoff = self.config.retry_backoff.unwrap_or(policy.backoff);
        decide(result, attempts, budget, backoff)
    }

    /// Records the outcome (see [`record_end`]).
    async fn finish(&self, holding: &Holding, fence: i32, outcome: AttemptOutcome) {
        let backoff = self.config.claim_backoff.capped(Duration::from_secs(5));
        record_end(&self.store, holding, fence, &outcome, self.config.lease, backoff).await;
    }
}

/// A job type missing from the registry: claimed only registered types, so
/// a changed registry is a bug.
fn unregistered(error: RegistryError) -> JobError {
    let error = JobError {
        code: "unregistered_job_type".into(),
        message: error.to_string(),
        retryable: false,
        details: serde_json::Value::Null,
    }
    .correlated();
    tracing::error!(code = %error.code, message = %error.message, correlation_id = error.correlation_id(), "job failed");
    error
}

/// How a claim's run ends, for a job's attempt and a partition's claim
/// alike: the one place that decides between another attempt (when the
/// failure is retryable and there is `budget` left; after the backoff for
/// the `attempts` made so far) and failing for good. `None` when the claim
/// was lost: then it writes nothing more.
fn decide(
    result: Result<(), RunError>,
    attempts: i32,
    budget: bool,
    backoff: Backoff,
) -> Option<AttemptOutcome> {
    Some(match result {
        Ok(()) => AttemptOutcome::Succeeded,
        Err(RunError::Stopped(StopReason::Cancelled)) => AttemptOutcome::Cancelled,
        Err(RunError::Stopped(StopReason::LeaseLost)) => {
            tracing::warn!("lease lost; another worker holds it now, this claim writes nothing more");
            return None;
        }
        Err(RunError::Failed(error)) => {
            // The full chain goes to the log only with the id a customer
            // sees in place of it.
            let error = error.correlated();
            let correlation_id = error.correlation_id().unwrap_or_default().to_owned();
            if error.retryable && budget {
                let delay = backoff.delay(u32::try_from(attempts).unwrap_or(0));
                tracing::warn!(code = %error.code, message = %error.message, %correlation_id, ?delay, "attempt failed; will retry");
                let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                AttemptOutcome::Retry { error, at }
            } else {
                tracing::error!(code = %error.code, message = %error.message, %correlation_id, "failed for good");
                AttemptOutcome::Failed(error)
            }
        }
    })
}
