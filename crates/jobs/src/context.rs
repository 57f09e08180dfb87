//! What a handler sees of its attempt: the job, its progress so far, and the
//! fenced writes of progress and checkpoints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scorekeeper_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::handler::{RunError, StopReason};
use crate::job::{ActivityProgress, Job, JobError, Lease, ProgressUpdate};
use crate::store::JobStore;

pub struct JobContext {
    store: JobStore,
    job: Job,
    fence: i32,
    stop: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl JobContext {
    pub(crate) fn new(store: JobStore, job: Job, fence: i32) -> JobContext {
        JobContext { store, job, fence, stop: CancellationToken::new(), reason: Arc::new(Mutex::new(None)) }
    }

    /// The job as claimed, with each activity's progress at that moment.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// This attempt's fencing token.
    pub fn fence(&self) -> i32 {
        self.fence
    }

    pub fn activity(&self, name: &str) -> Option<&ActivityProgress> {
        self.job.activities.iter().find(|a| a.activity == name)
    }

    /// Fires when the attempt must stop (cancel asked, or lease lost);
    /// long reads can select on it.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stop
    }

    pub(crate) fn stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock().expect("stop reason lock");
        // A lost lease outranks a cancel: then nothing may be written at all.
        if *slot != Some(StopReason::LeaseLost) {
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    /// Why the attempt is stopping, if it is.
    pub fn stop_reason(&self) -> Option<StopReason> {
        *self.reason.lock().expect("stop reason lock")
    }

    /// Records one batch of `activity` (ClickHouse has acknowledged it) and
    /// the checkpoint to resume after it. Fenced: fails with
    /// `Stopped(LeaseLost)` if another attempt holds the job, and with
    /// `Stopped(Cancelled)` once a cancel was asked, so the handler stops at
    /// the batch boundary.
    pub async fn record_batch(
        &self,
        activity: &str,
        rows: usize,
        checkpoint: &serde_json::Value,
        active: Duration,
    ) -> Result<(), RunError> {
        self.record(&ProgressUpdate {
            activity,
            rows: rows as i64,
            batches: 1,
            checkpoint: Some(checkpoint),
            finished: false,
            active,
        })
        .await
    }

    /// Records how many rows `activity` expects to copy (for progress and
    /// ETA). Fenced like [`JobContext::record_batch`].
    pub async fn record_estimate(&self, activity: &str, rows: i64) -> Result<(), RunError> {
        if let Some(reason) = self.stop_reason() {
            return Err(RunError::Stopped(reason));
        }
        let lease = self
            .store
            .record_estimate(self.job.id, self.fence, activity, rows)
            .await
            .map_err(store_failure)?;
        self.check(lease)
    }

    /// Marks `activity` finished, so a later attempt skips it.
    pub async fn finish_activity(&self, activity: &str, active: Duration) -> Result<(), RunError> {
        self.record(&ProgressUpdate {
            activity,
            rows: 0,
            batches: 0,
            checkpoint: None,
            finished: true,
            active,
        })
        .await
    }

    async fn record(&self, update: &ProgressUpdate<'_>) -> Result<(), RunError> {
        if let Some(reason) = self.stop_reason() {
            return Err(RunError::Stopped(reason));
        }
        let lease =
            self.store.record_progress(self.job.id, self.fence, update).await.map_err(store_failure)?;
        self.check(lease)
    }

    /// Stops the attempt when the lease is lost or a cancel was asked.
    fn check(&self, lease: Lease) -> Result<(), RunError> {
        match lease {
            Lease::Lost => {
                self.stop(StopReason::LeaseLost);
                Err(RunError::Stopped(StopReason::LeaseLost))
            }
            Lease::Held { cancel_requested: true } => {
                self.stop(StopReason::Cancelled);
                Err(RunError::Stopped(StopReason::Cancelled))
            }
            Lease::Held { cancel_requested: false } => Ok(()),
        }
    }
}

/// Postgres failing under a progress write: the attempt fails, retryably
/// when the failure is transient.
fn store_failure(error: StoreError) -> RunError {
    RunError::Failed(JobError {
        code: "postgres".into(),
        message: format!("recording progress: {error}"),
        retryable: error.is_transient(),
        details: serde_json::Value::Null,
    })
}
