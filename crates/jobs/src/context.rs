//! What a handler sees of its attempt: the job, its progress so far, the
//! typed checkpoints of its activities, and the fenced writes of progress.
//! An attempt of a job (its coordinator) may split an activity into
//! partitions and run them ([`JobContext::run_partitions`]); a partition's
//! run sees a context of its own, whose checkpoint and progress are the
//! partition's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scorekeeper_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::handler::{Activity, JobHandler, RunError, StopReason};
use crate::job::{
    ActivityProgress, Job, JobError, Lease, PartitionProgress, PartitionState, ProgressUpdate, Split,
};
use crate::store::{JobStore, PartitionKey};
use crate::worker::Runner;

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
    /// Set when this context runs one partition: the fence is then the
    /// partition's, and progress is recorded on it.
    partition: Option<PartitionProgress>,
    /// Set for a job's attempt: what runs its partitions here.
    runner: Option<Arc<Runner>>,
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
    /// The context of attempt `fence` of `job`; `runner` runs its
    /// partitions (`None`: it cannot partition, as in unit tests).
    pub(crate) fn new(store: JobStore, job: Job, fence: i32, runner: Option<Arc<Runner>>) -> JobContext {
        JobContext { store, job, fence, partition: None, runner, stop: StopSignal::new() }
    }

    /// The context of claim `fence` of `partition` of `job`.
    pub(crate) fn for_partition(
        store: JobStore,
        job: Job,
        partition: PartitionProgress,
        fence: i32,
    ) -> JobContext {
        JobContext { store, job, fence, partition: Some(partition), runner: None, stop: StopSignal::new() }
    }

    /// The partition this context runs, as claimed; `None` in a job's
    /// attempt.
    pub fn partition(&self) -> Option<&PartitionProgress> {
        self.partition.as_ref()
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

    /// The checkpoint `activity` recorded last (in a partition's context:
    /// the partition's), decoded; `None` when it has recorded none.
    ///
    /// A stored checkpoint that does not decode as `C` fails the attempt,
    /// and the job: `invalid_checkpoint`, not retryable, naming the
    /// activity. Restarting the activity from zero instead would hide a
    /// bug (or a checkpoint written by another version) and redo work no
    /// one asked for; an operator who wants that creates a new job.
    pub fn checkpoint<C: DeserializeOwned>(&self, activity: &Activity<C>) -> Result<Option<C>, RunError> {
        let stored = match &self.partition {
            Some(partition) if partition.activity == activity.name() => partition.checkpoint.as_ref(),
            _ => self.progress(activity).and_then(|p| p.checkpoint.as_ref()),
        };
        let Some(stored) = stored else {
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
        let lease = match &self.partition {
            Some(partition) if partition.activity == update.activity => {
                let key = PartitionKey { job: self.job.id, activity: &partition.activity, n: partition.n };
                self.store.record_partition_progress(&key, self.fence, update).await
            }
            Some(partition) => {
                return Err(RunError::fatal(
                    "internal",
                    format!(
                        "partition {} of {} recorded progress of {}",
                        partition.n, partition.activity, update.activity
                    ),
                ));
            }
            None => self.store.record_progress(self.job.id, self.fence, update).await,
        };
        self.check(lease.map_err(store_failure)?)
    }

    /// Whether `activity` was split into partitions (by this attempt or an
    /// earlier one).
    pub fn is_planned<C>(&self, activity: &Activity<C>) -> bool {
        self.progress(activity).is_some_and(|p| !p.partitions.is_empty())
    }

    /// Splits `activity` into `splits`, ranges of handler `H`'s partition
    /// type, in order; the activity's estimate becomes the sum of theirs.
    /// A single split resumes from the activity's own checkpoint, if it
    /// has one (an activity begun in one piece by a version that did not
    /// partition): plan one split covering everything for such an
    /// activity.
    /// Once planned, an activity keeps its partitions: a later attempt
    /// asks [`JobContext::is_planned`] and goes straight to
    /// [`JobContext::run_partitions`]. Fenced like
    /// [`JobContext::record_checkpoint`].
    pub async fn plan_partitions<H: JobHandler, C>(
        &self,
        activity: &Activity<C>,
        splits: Vec<Split<H::Partition>>,
    ) -> Result<(), RunError> {
        if let Some(reason) = self.stop_reason() {
            return Err(RunError::Stopped(reason));
        }
        if splits.is_empty() {
            return Err(RunError::fatal(
                "internal",
                format!("{} planned no partition of {}", H::NAME, activity.name()),
            ));
        }
        let splits: Vec<(serde_json::Value, i64)> = splits
            .into_iter()
            .map(|s| {
                (serde_json::to_value(&s.range).expect("a partition range serialises"), s.rows_estimated)
            })
            .collect();
        let lease = self
            .store
            .plan_partitions(self.job.id, self.fence, activity.name(), &splits)
            .await
            .map_err(store_failure)?;
        self.check(lease)
    }

    /// Runs `activity`'s partitions to their end: claims them one at a time
    /// and runs them here, while workers of this and other processes claim
    /// others; when none is left to claim, waits for those others hold.
    /// Returns once every partition succeeded (and marks the activity
    /// finished), with the error of a partition that failed for good, or
    /// when the attempt must stop. A partition whose worker died is
    /// claimed again when its lease expires, by whoever comes first.
    pub async fn run_partitions<C>(&self, activity: &Activity<C>) -> Result<(), RunError> {
        let Some(runner) = &self.runner else {
            return Err(RunError::fatal("internal", "this context cannot run partitions".into()));
        };
        let mut since = Instant::now();
        loop {
            if let Some(reason) = self.stop_reason() {
                return Err(RunError::Stopped(reason));
            }
            let partitions =
                self.store.partitions_of(self.job.id, activity.name()).await.map_err(store_failure)?;
            if let Some(failed) = partitions.iter().find(|p| p.state == PartitionState::Failed) {
                let mut error = failed.error.clone().unwrap_or_else(|| JobError {
                    code: "partition_failed".into(),
                    message: String::new(),
                    retryable: false,
                    details: serde_json::Value::Null,
                });
                error.message = format!("partition {} of {}: {}", failed.n, activity.name(), error.message);
                // The partition had its retries; another attempt of the job would not run it again.
                error.retryable = false;
                return Err(RunError::Failed(error));
            }
            // Wall time in the activity, for its rows/s across workers.
            let active = std::mem::replace(&mut since, Instant::now()).elapsed();
            if partitions.iter().all(|p| p.state == PartitionState::Succeeded) {
                return self.finish_activity(activity, active).await;
            }
            self.record(&ProgressUpdate {
                activity: activity.name(),
                rows: 0,
                pages: 0,
                checkpoint: None,
                finished: false,
                active,
            })
            .await?;
            let claimed = runner.claim_partition(Some(self.job.id)).await.map_err(store_failure)?;
            match claimed {
                Some(claim) => runner.run_partition(claim).await,
                None => {
                    tokio::select! {
                        () = runner.woken() => {}
                        () = tokio::time::sleep(runner.poll_interval()) => {}
                        () = self.stopping().cancelled() => {}
                    }
                }
            }
        }
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
