//! What a handler sees of its attempt: the job, its progress so far, the
//! typed checkpoints of its activities, and the fenced writes of progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scorekeeper_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::handler::{Activity, RunError, StopReason};
use crate::job::{ActivityProgress, Job, JobError, Lease, ProgressUpdate};
use crate::store::JobStore;

/// The work one checkpoint covers: what was done since the previous one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Covered {
    /// Pages, the unit of the handler's batch-size settings; 0 for a
    /// checkpoint that only records a result (a summary).
    pub pages: usize,
    pub rows: usize,
}

pub struct JobContext {
    store: JobStore,
    job: Job,
    fence: i32,
    stop: StopSignal,
}

/// Tells a running attempt to stop, and why; shared by the attempt's
/// context and the worker's lease keeper.
#[derive(Clone, Default)]
pub struct StopSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl StopSignal {
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Asks the attempt to stop. A lost lease outranks a cancel: then
    /// nothing may be written at all.
    pub fn stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock().expect("stop reason lock");
        if *slot != Some(StopReason::LeaseLost) {
            *slot = Some(reason);
        }
        self.token.cancel();
    }

    /// Why the attempt is stopping, if it is.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().expect("stop reason lock")
    }

    /// Fires once [`StopSignal::stop`] was called.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl JobContext {
    pub(crate) fn new(store: JobStore, job: Job, fence: i32) -> JobContext {
        JobContext { store, job, fence, stop: StopSignal::new() }
    }

    /// The job as claimed, with each activity's progress at that moment.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// This attempt's fencing token.
    pub fn fence(&self) -> i32 {
        self.fence
    }

    /// `activity`'s progress as claimed; `None` if the job has no such
    /// activity.
    pub fn progress<C>(&self, activity: &Activity<C>) -> Option<&ActivityProgress> {
        self.job.activities.iter().find(|a| a.activity == activity.name())
    }

    /// Whether `activity` finished in an earlier attempt.
    pub fn finished<C>(&self, activity: &Activity<C>) -> bool {
        self.progress(activity).is_some_and(|p| p.finished)
    }

    /// The checkpoint `activity` recorded last, decoded; `None` when it has
    /// recorded none.
    ///
    /// A stored checkpoint that does not decode as `C` fails the attempt,
    /// and the job: `invalid_checkpoint`, not retryable, naming the
    /// activity. Restarting the activity from zero instead would hide a
    /// bug (or a checkpoint written by another version) and redo work no
    /// one asked for; an operator who wants that creates a new job.
    pub fn checkpoint<C: DeserializeOwned>(&self, activity: &Activity<C>) -> Result<Option<C>, RunError> {
        let Some(stored) = self.progress(activity).and_then(|p| p.checkpoint.as_ref()) else {
            return Ok(None);
        };
        C::deserialize(stored).map(Some).map_err(|error| {
            tracing::error!(activity = activity.name(), %error, "the activity's checkpoint does not decode");
            RunError::Failed(JobError {
                code: "invalid_checkpoint".into(),
                message: format!(
                    "the checkpoint of activity {} does not decode ({error}); the job stops rather than start the activity over",
                    activity.name()
                ),
                retryable: false,
                details: serde_json::json!({ "activity": activity.name(), "checkpoint": stored }),
            })
        })
    }

    /// Fires when the attempt must stop (cancel asked, or lease lost);
    /// long reads can select on it.
    pub fn stopping(&self) -> &CancellationToken {
        self.stop.token()
    }

    pub(crate) fn stop_signal(&self) -> &StopSignal {
        &self.stop
    }

    /// Why the attempt is stopping, if it is.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.reason()
    }

    /// Commits a checkpoint of `activity`: the work it covers (done since
    /// the previous checkpoint, and acknowledged by its destination) and
    /// where to resume after it, in one write. Counts one checkpoint commit
    /// and `covered.pages` pages. Fenced: fails with `Stopped(LeaseLost)`
    /// if another attempt holds the job, and with `Stopped(Cancelled)` once
    /// a cancel was asked, so the handler stops at the checkpoint.
    pub async fn record_checkpoint<C: Serialize>(
        &self,
        activity: &Activity<C>,
        covered: Covered,
        checkpoint: &C,
        active: Duration,
    ) -> Result<(), RunError> {
        let checkpoint = serde_json::to_value(checkpoint).expect("a checkpoint serialises");
        self.record(&ProgressUpdate {
            activity: activity.name(),
            rows: covered.rows as i64,
            pages: covered.pages as i64,
            checkpoint: Some(&checkpoint),
            finished: false,
            active,
        })
        .await
    }

    /// Records how many rows `activity` expects to copy (for progress and
    /// ETA). Fenced like [`JobContext::record_checkpoint`].
    pub async fn record_estimate<C>(&self, activity: &Activity<C>, rows: i64) -> Result<(), RunError> {
        if let Some(reason) = self.stop_reason() {
            return Err(RunError::Stopped(reason));
        }
        let lease = self
            .store
            .record_estimate(self.job.id, self.fence, activity.name(), rows)
            .await
            .map_err(store_failure)?;
        self.check(lease)
    }

    /// Marks `activity` finished, so a later attempt skips it.
    pub async fn finish_activity<C>(&self, activity: &Activity<C>, active: Duration) -> Result<(), RunError> {
        self.record(&ProgressUpdate {
            activity: activity.name(),
            rows: 0,
            pages: 0,
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
                self.stop.stop(StopReason::LeaseLost);
                Err(RunError::Stopped(StopReason::LeaseLost))
            }
            Lease::Held { cancel_requested: true } => {
                self.stop.stop(StopReason::Cancelled);
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
