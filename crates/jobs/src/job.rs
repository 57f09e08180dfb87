//! The job engine's records: a job and its activities' progress as stored,
//! what it takes to create one, and the outcomes of a claimed attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_domain::CustomerId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// The word stored in `jobs.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state of a stored word; `None` for a word no schema writes.
    pub fn parse(text: &str) -> Option<JobState> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// Why an attempt failed, as stored and shown by GetJob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// A stable word, e.g. `clickhouse`, `invalid_payload`, `invalid_checkpoint`.
    pub code: String,
    /// The full error chain: it may name internal databases, tables and
    /// servers, so the API shows it to admin tokens only.
    pub message: String,
    pub retryable: bool,
    #[serde(default)]
    pub details: serde_json::Value,
}

impl JobError {
    /// This failure with a correlation id in `details.correlation_id` (a
    /// new one unless it has one): the id the log lines about it carry and
    /// the only detail a customer is shown beside the code.
    pub fn correlated(mut self) -> JobError {
        if self.correlation_id().is_some() {
            return self;
        }
        if !self.details.is_object() {
            let earlier = std::mem::take(&mut self.details);
            self.details = serde_json::json!({});
            if !earlier.is_null() {
                self.details["value"] = earlier;
            }
        }
        self.details["correlation_id"] = Uuid::new_v4().simple().to_string().into();
        self
    }

    /// The id [`JobError::correlated`] gave it.
    pub fn correlation_id(&self) -> Option<&str> {
        self.details.get("correlation_id")?.as_str()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ActivityProgress {
    pub activity: String,
    pub position: i32,
    pub rows_done: i64,
    /// Pages read and written: the unit of the handler's batch-size
    /// settings (what a page is, the handler says).
    pub pages_done: i64,
    /// Checkpoint commits: progress writes that carried a checkpoint, each
    /// after the work before it was acknowledged. One may cover many pages.
    /// (Stored in the column `batches_done`, the name the wire keeps for
    /// older clients.)
    pub checkpoints_done: i64,
    pub checkpoint: Option<serde_json::Value>,
    pub finished: bool,
    /// Time spent in this activity over all attempts.
    pub active_ms: i64,
    /// Rows the activity expects to copy; 0 until it has counted.
    pub rows_estimated: i64,
    /// The partitions the activity was split into, in order; empty for an
    /// activity its job runs in one piece. The counters above include
    /// theirs.
    pub partitions: Vec<PartitionProgress>,
}

impl ActivityProgress {
    /// Partitions that finished, of [`ActivityProgress::partitions`].
    pub fn partitions_done(&self) -> usize {
        self.partitions.iter().filter(|p| p.state == PartitionState::Succeeded).count()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// Waiting for a worker (never run, put back for a retry, or stopped by
    /// a cancel).
    Queued,
    /// A worker holds it (its lease may have expired: then it is claimable).
    Running,
    Succeeded,
    /// Failed for good; the job fails with its error.
    Failed,
}

impl PartitionState {
    /// The word stored in `job_partitions.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionState::Queued => "queued",
            PartitionState::Running => "running",
            PartitionState::Succeeded => "succeeded",
            PartitionState::Failed => "failed",
        }
    }

    /// The state of a stored word; `None` for a word no schema writes.
    pub fn parse(text: &str) -> Option<PartitionState> {
        Some(match text {
            "queued" => PartitionState::Queued,
            "running" => PartitionState::Running,
            "succeeded" => PartitionState::Succeeded,
            "failed" => PartitionState::Failed,
            _ => return None,
        })
    }
}

/// One partition of an activity: a range of its rows that a worker claims
/// on its own lease, with its own checkpoint and progress.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionProgress {
    pub activity: String,
    /// 0, 1, … in the order of the ranges.
    pub n: i32,
    /// The rows it covers, as the job's handler described them.
    pub range: serde_json::Value,
    pub state: PartitionState,
    /// Claims so far; the fencing token of the latest.
    pub attempts: i32,
    /// The worker that holds (or last held) it.
    pub lease_owner: Option<String>,
    pub checkpoint: Option<serde_json::Value>,
    pub rows_done: i64,
    pub pages_done: i64,
    pub checkpoints_done: i64,
    pub rows_estimated: i64,
    /// Time spent running it over all attempts.
    pub active_ms: i64,
    /// The last failure, if any.
    pub error: Option<JobError>,
}

impl PartitionProgress {
    pub fn rows_per_second(&self) -> f64 {
        if self.active_ms == 0 { 0.0 } else { self.rows_done as f64 * 1000.0 / self.active_ms as f64 }
    }
}

/// One partition as a handler plans it: its range (the handler's
/// `JobHandler::Partition`) and the rows it expects to copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Split<R> {
    pub range: R,
    pub rows_estimated: i64,
}

/// What a lease is held on: a job's attempt (its coordinator) or one
/// partition of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holding {
    Job(Uuid),
    Partition { job: Uuid, activity: String, n: i32 },
}

impl Holding {
    pub fn job(&self) -> Uuid {
        match self {
            Holding::Job(job) | Holding::Partition { job, .. } => *job,
        }
    }
}

impl ActivityProgress {
    pub fn rows_per_second(&self) -> f64 {
        if self.active_ms == 0 { 0.0 } else { self.rows_done as f64 * 1000.0 / self.active_ms as f64 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub customer_id: Option<CustomerId>,
    pub job_type: i16,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub cancel_requested: bool,
    pub error: Option<JobError>,
    /// The key that makes this job one of a kind (a schedule's tick, an
    /// audit's repair), if it has one.
    pub dedupe_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// In workflow order.
    pub activities: Vec<ActivityProgress>,
}

impl Job {
    /// The most claims any part of the job needed: its own attempts, or a
    /// partition's (each partition is retried on its own). What GetJob
    /// shows as the job's attempts.
    pub fn attempts_made(&self) -> i32 {
        self.activities.iter().flat_map(|a| &a.partitions).map(|p| p.attempts).fold(self.attempts, i32::max)
    }
}

/// A job to create. `activities` are the workflow's steps, in order, so
/// progress shows them before they start.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub customer_id: Option<CustomerId>,
    pub job_type: i16,
    pub payload: serde_json::Value,
    pub max_attempts: i32,
    /// One job per key, ever: a second create with the same key returns the
    /// existing job.
    pub dedupe_key: Option<String>,
    /// At most one queued or running job per key: a create while one is
    /// returns it; once it ends, the key is free again
    /// ([`NewJob::one_active_per_payload`]).
    pub active_key: Option<String>,
    pub activities: Vec<String>,
}

/// Filters of `list_jobs`; `None` matches all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub job_type: Option<i16>,
    pub customer_id: Option<CustomerId>,
}

/// A claimed attempt: the job and the fencing token of this attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    pub job: Job,
    pub fence: i32,
}

/// A claimed partition: its job (with every activity's progress), the
/// partition as claimed, and the fencing token of this claim.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionClaim {
    pub job: Job,
    pub partition: PartitionProgress,
    pub fence: i32,
}

/// What a heartbeat (or a fenced progress write) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// Still ours; whether someone asked to cancel.
    Held { cancel_requested: bool },
    /// Claimed again by another worker, or finished: stop, write nothing.
    Lost,
}

/// One write of an activity's progress: amounts added to its counters.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressUpdate<'a> {
    pub activity: &'a str,
    pub rows: i64,
    /// Pages the write covers (see [`ActivityProgress::pages_done`]).
    pub pages: i64,
    /// Where to resume. A write that carries one is a checkpoint commit
    /// and counts in [`ActivityProgress::checkpoints_done`]; one without
    /// (e.g. marking the activity finished) does not.
    pub checkpoint: Option<&'a serde_json::Value>,
    pub finished: bool,
    pub active: Duration,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    Succeeded,
    Cancelled,
    Failed(JobError),
    Retry { error: JobError, at: DateTime<Utc> },
}

impl AttemptOutcome {
    /// One word for logs.
    pub fn word(&self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Failed(_) => "failed",
            AttemptOutcome::Retry { .. } => "retry",
        }
    }
}
