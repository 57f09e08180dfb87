//! The worker loop: claim a runnable job, keep its lease alive, run its
//! handler, and record how the attempt ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use scorekeeper_retry::Backoff;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument;

use crate::context::JobContext;
use crate::handler::{Registry, RunError, StopReason};
use crate::job::{AttemptOutcome, Claim, JobError};
use crate::lease::{keep_lease, record_end};
use crate::store::JobStore;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this worker in `lease_owner` and logs.
    pub worker_id: String,
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat; a killed worker's job is
    /// taken over after this.
    pub lease: Duration,
    /// How often an idle worker looks for jobs (notifications usually wake
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
        }
    }
}

pub struct Worker {
    store: JobStore,
    registry: Registry,
    config: WorkerConfig,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(store: JobStore, registry: Registry, config: WorkerConfig) -> Worker {
        Worker { store, registry, config, wake: Arc::new(Notify::new()) }
    }

    /// Runs until `shutdown` turns true. Jobs in flight then finish their
    /// current attempt's work only if they end before the process does; a
    /// job cut off is taken over by another worker after its lease.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let listener = {
            let store = this.store.clone();
            let wake = this.wake.clone();
            tokio::spawn(async move { store.listen(wake).await })
        };
        let slots = Arc::new(Semaphore::new(this.config.concurrency));
        let job_types = this.registry.job_types();
        let mut failures = 0u32;
        while !*shutdown.borrow() {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            match this
                .store
                .claim_job(
                    &this.config.worker_id,
                    this.config.lease,
                    &job_types,
                    this.config.max_running_per_customer,
                )
                .await
            {
                Ok(Some(claim)) => {
                    failures = 0;
                    let worker = this.clone();
                    let span = tracing::info_span!("job", id = %claim.job.id, job_type = claim.job.job_type, attempt = claim.fence);
                    tokio::spawn(
                        async move {
                            worker.run_attempt(claim).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
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
                this.config.poll_interval
            } else {
                this.config.claim_backoff.delay(failures)
            };
            tokio::select! {
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        listener.abort();
    }

    async fn run_attempt(&self, claim: Claim) {
        let Claim { job, fence } = claim;
        let job_type = job.job_type;
        tracing::info!("attempt started");
        metrics::counter!(crate::metrics::JOB_ATTEMPTS_TOTAL, "job_type" => job_type.to_string())
            .increment(1);
        let ctx = JobContext::new(self.store.clone(), job, fence);
        let (run, policy) = match (self.registry.run(&ctx), self.registry.retry_policy(job_type)) {
            (Ok(run), Ok(policy)) => (run, policy),
            (Err(error), _) | (_, Err(error)) => {
                // Claimed only registered types; a changed registry is a bug.
                let error = JobError {
                    code: "unregistered_job_type".into(),
                    message: error.to_string(),
                    retryable: false,
                    details: serde_json::Value::Null,
                }
                .correlated();
                tracing::error!(code = %error.code, message = %error.message, correlation_id = error.correlation_id(), "job failed");
                self.finish(&ctx, AttemptOutcome::Failed(error)).await;
                return;
            }
        };
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = run => outcome,
            // The heartbeat fires this on a lost lease: drop the handler's
            // future at once, whatever it is waiting on.
            () = keep_lease(&self.store, ctx.job().id, ctx.fence(), self.config.lease, ctx.stop_signal()) => {
                Err(RunError::Stopped(ctx.stop_reason().unwrap_or(StopReason::LeaseLost)))
            }
        };
        let outcome = match outcome {
            Ok(()) => AttemptOutcome::Succeeded,
            Err(RunError::Stopped(StopReason::Cancelled)) => AttemptOutcome::Cancelled,
            Err(RunError::Stopped(StopReason::LeaseLost)) => {
                tracing::warn!("lease lost; another worker has the job, this attempt writes nothing more");
                return;
            }
            Err(RunError::Failed(error)) => {
                // The full chain goes to the log only with the id a
                // customer sees in place of it.
                let error = error.correlated();
                let correlation_id = error.correlation_id().unwrap_or_default().to_owned();
                let attempts = ctx.job().attempts;
                if error.retryable && attempts < ctx.job().max_attempts {
                    let backoff = self.config.retry_backoff.unwrap_or(policy.backoff);
                    let delay = backoff.delay(u32::try_from(attempts).unwrap_or(0));
                    tracing::warn!(code = %error.code, message = %error.message, %correlation_id, ?delay, "attempt failed; will retry");
                    let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    AttemptOutcome::Retry { error, at }
                } else {
                    tracing::error!(code = %error.code, message = %error.message, %correlation_id, "job failed");
                    AttemptOutcome::Failed(error)
                }
            }
        };
        tracing::info!(elapsed = ?started.elapsed(), outcome = outcome.word(), "attempt ended");
        self.finish(&ctx, outcome).await;
    }

    /// Records the outcome (see [`record_end`]).
    async fn finish(&self, ctx: &JobContext, outcome: AttemptOutcome) {
        let backoff = self.config.claim_backoff.capped(Duration::from_secs(5));
        record_end(&self.store, ctx.job().id, ctx.fence(), &outcome, self.config.lease, backoff).await;
    }
}
