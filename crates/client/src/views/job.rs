//! Jobs as `scorekeeper reindex` and `scorekeeper jobs` print them.

use scorekeeper_proto::coaching::ScorecardTemplateType;
use scorekeeper_proto::v1::Job;
use scorekeeper_proto::v1::job_payload::Payload;
use serde::Serialize;

use super::rfc3339;

/// A job as the CLI prints it (text or JSON).
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    pub state: &'static str,
    /// `None`: a job of every customer.
    pub customer: Option<i64>,
    pub attempts: i32,
    pub scorecard_types: Vec<&'static str>,
    pub activities: Vec<ActivityView>,
    pub error: Option<ErrorView>,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// One activity's progress. Pages are the unit of the batch-size settings;
/// a checkpoint commit may cover many of them (see `proto` `ActivityProgress`).
#[derive(Debug, Serialize)]
pub struct ActivityView {
    pub activity: String,
    pub rows_done: i64,
    pub rows_estimated: i64,
    pub pages_done: i64,
    pub checkpoints_done: i64,
    /// Deprecated: checkpoint commits under their old name (the wire's
    /// deprecated `batches_done`), kept in the JSON for scripts that read
    /// it; read `checkpoints_done` or `pages_done`.
    pub batches_done: i64,
    pub rows_per_second: f64,
    pub finished: bool,
    pub checkpoint: String,
    pub partitions_done: i32,
    pub partitions_total: i32,
    pub partitions: Vec<PartitionView>,
}

/// One partition of an activity.
#[derive(Debug, Serialize)]
pub struct PartitionView {
    pub index: i32,
    pub state: String,
    pub rows_done: i64,
    pub rows_estimated: i64,
    pub rows_per_second: f64,
    pub worker: String,
    pub attempts: i32,
    pub range: String,
}

#[derive(Debug, Serialize)]
pub struct ErrorView {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// The word for a job state, as the CLI prints it.
pub use scorekeeper_proto::words::job_state as state_word;

impl From<&Job> for JobView {
    fn from(job: &Job) -> JobView {
        let types = match job.payload.as_ref().and_then(|p| p.payload.as_ref()) {
            Some(Payload::ReindexConversations(p)) => p
                .reindex_scorecard_types
                .iter()
                .map(|t| match ScorecardTemplateType::try_from(*t) {
                    Ok(ScorecardTemplateType::Conversation) => "conversation",
                    Ok(ScorecardTemplateType::Process) => "process",
                    _ => "unknown",
                })
                .collect(),
            Some(Payload::Audit(_)) | None => Vec::new(),
        };
        JobView {
            id: job.id.clone(),
            state: state_word(job.state),
            customer: (job.customer_id != 0).then_some(job.customer_id),
            attempts: job.attempts,
            scorecard_types: types,
            activities: job
                .progress
                .iter()
                .map(|a| ActivityView {
                    activity: a.activity.clone(),
                    rows_done: a.rows_done,
                    rows_estimated: a.rows_estimated,
                    pages_done: a.pages_done,
                    checkpoints_done: a.checkpoints_done,
                    // Read as sent, so the JSON keeps its old meaning
                    // whichever server version answered.
                    #[allow(deprecated)]
                    batches_done: a.batches_done,
                    rows_per_second: a.rows_per_second,
                    finished: a.finished,
                    checkpoint: a.checkpoint.clone(),
                    partitions_done: a.partitions_done,
                    partitions_total: a.partitions_total,
                    partitions: a
                        .partitions
                        .iter()
                        .map(|p| PartitionView {
                            index: p.index,
                            state: p.state.clone(),
                            rows_done: p.rows_done,
                            rows_estimated: p.rows_estimated,
                            rows_per_second: p.rows_per_second,
                            worker: p.worker.clone(),
                            attempts: p.attempts,
                            range: p.range.clone(),
                        })
                        .collect(),
                })
                .collect(),
            error: job.error.as_ref().map(|e| ErrorView {
                code: e.code.clone(),
                message: e.message.clone(),
                retryable: e.retryable,
            }),
            created_at: rfc3339(&job.created_at),
            started_at: rfc3339(&job.started_at),
            finished_at: rfc3339(&job.finished_at),
        }
    }
}

impl JobView {
    fn customer_word(&self) -> String {
        self.customer.map_or("all".to_owned(), |c| c.to_string())
    }

    /// The job, its activities and its last error, one fact per line (no
    /// trailing newline).
    pub fn text(&self) -> String {
        let mut lines = vec![
            format!("job        {}", self.id),
            format!("state      {}  (attempts {})", self.state, self.attempts),
            format!("customer   {}", self.customer_word()),
        ];
        if !self.scorecard_types.is_empty() {
            lines.push(format!("types      {}", self.scorecard_types.join(", ")));
        }
        for a in &self.activities {
            lines.push(format!(
                "  {:28} {:>10} rows{}  {:>6} pages  {:>6} checkpoints  {:>10.0} rows/s  {}",
                a.activity,
                a.rows_done,
                if a.rows_estimated > 0 { format!(" of {}", a.rows_estimated) } else { String::new() },
                a.pages_done,
                a.checkpoints_done,
                a.rows_per_second,
                if a.finished { "finished" } else { "" }
            ));
            if a.partitions_total > 1 {
                lines.push(format!("    {} of {} partitions done", a.partitions_done, a.partitions_total));
                for p in a.partitions.iter().filter(|p| p.state != "succeeded") {
                    lines.push(format!(
                        "    partition {:>4} {:9} {:>10} of {:>10} rows  {:>10.0} rows/s  attempts {}  {}",
                        p.index,
                        p.state,
                        p.rows_done,
                        p.rows_estimated,
                        p.rows_per_second,
                        p.attempts,
                        p.worker
                    ));
                }
            }
        }
        if let Some(e) = &self.error {
            lines.push(format!(
                "error      {} ({}): {}",
                e.code,
                if e.retryable { "retryable" } else { "final" },
                e.message
            ));
        }
        lines.join("\n")
    }
}

/// Jobs as a table, a header and a line per job (no trailing newline).
pub fn list_text(jobs: &[Job]) -> String {
    let mut lines = vec![format!(
        "{:36}  {:9}  {:8}  {:>8}  {:>12}  created",
        "id", "state", "customer", "attempts", "rows"
    )];
    for job in jobs {
        let view = JobView::from(job);
        lines.push(format!(
            "{:36}  {:9}  {:8}  {:>8}  {:>12}  {}",
            view.id,
            view.state,
            view.customer_word(),
            view.attempts,
            view.activities.iter().map(|a| a.rows_done).sum::<i64>(),
            view.created_at.as_deref().unwrap_or("")
        ));
    }
    lines.join("\n")
}
