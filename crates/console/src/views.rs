//! The JSON the pages read (docs/console.md), built from the API's answers:
//! words for enums, RFC 3339 times, and the ETA the page shows.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use scorekeeper_proto::coaching::ScorecardTemplateType;
use scorekeeper_proto::v1::Job;
use scorekeeper_proto::v1::job_payload::Payload;
use serde::Serialize;

#[derive(Serialize)]
pub struct JobView {
    id: String,
    customer_id: i64,
    #[serde(rename = "type")]
    job_type: &'static str,
    state: &'static str,
    scorecard_types: Vec<&'static str>,
    /// An audit job repairs what it finds.
    repair: bool,
    created_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    attempts: i32,
    error: Option<ErrorView>,
    activities: Vec<ActivityView>,
}

#[derive(Serialize)]
struct ErrorView {
    code: String,
    message: String,
    retryable: bool,
    correlation_id: String,
}

#[derive(Serialize)]
struct ActivityView {
    activity: String,
    finished: bool,
    rows_done: i64,
    rows_estimated: i64,
    rows_per_second: f64,
    eta_seconds: Option<f64>,
    pages_done: i64,
    checkpoint: String,
    partitions_done: i32,
    partitions_total: i32,
    partitions: Vec<PartitionView>,
}

#[derive(Serialize)]
struct PartitionView {
    index: i32,
    state: String,
    rows_done: i64,
    rows_estimated: i64,
    rows_per_second: f64,
    eta_seconds: Option<f64>,
    worker: String,
    attempts: i32,
    range: String,
}

/// Seconds left at the current rate; `None` without a rate or an estimate.
fn eta(done: i64, estimated: i64, rate: f64, finished: bool) -> Option<f64> {
    if finished {
        return Some(0.0);
    }
    (rate > 0.0 && estimated > 0).then(|| (estimated - done).max(0) as f64 / rate)
}

fn time(t: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| scorekeeper_proto::time::from_timestamp(t).ok())
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> JobView {
        let payload = job.payload.as_ref().and_then(|p| p.payload.as_ref());
        let (customer_id, scorecard_types, repair) = match payload {
            Some(Payload::ReindexConversations(p)) => {
                let mut types: Vec<&'static str> = p
                    .reindex_scorecard_types
                    .iter()
                    .map(|t| match ScorecardTemplateType::try_from(*t) {
                        Ok(ScorecardTemplateType::Process) => "process",
                        _ => "conversation",
                    })
                    .collect();
                if types.is_empty() {
                    // Old clients: conversations, as before process scorecards.
                    types.push("conversation");
                }
                types.dedup();
                (p.customer_id, types, false)
            }
            Some(Payload::Audit(p)) => (p.customer_id, Vec::new(), p.repair),
            None => (job.customer_id, Vec::new(), false),
        };
        JobView {
            id: job.id.clone(),
            customer_id,
            job_type: scorekeeper_proto::words::job_type(job.r#type),
            state: scorekeeper_proto::words::job_state(job.state),
            scorecard_types,
            repair,
            created_at: time(job.created_at.as_ref()),
            started_at: time(job.started_at.as_ref()),
            finished_at: time(job.finished_at.as_ref()),
            attempts: job.attempts,
            error: job.error.as_ref().map(|e| ErrorView {
                code: e.code.clone(),
                message: e.message.clone(),
                retryable: e.retryable,
                correlation_id: e.correlation_id.clone(),
            }),
            activities: job
                .progress
                .iter()
                .map(|a| ActivityView {
                    activity: a.activity.clone(),
                    finished: a.finished,
                    rows_done: a.rows_done,
                    rows_estimated: a.rows_estimated,
                    rows_per_second: a.rows_per_second,
                    eta_seconds: eta(a.rows_done, a.rows_estimated, a.rows_per_second, a.finished),
                    pages_done: a.pages_done,
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
                            eta_seconds: eta(
                                p.rows_done,
                                p.rows_estimated,
                                p.rows_per_second,
                                p.state == "succeeded",
                            ),
                            worker: p.worker.clone(),
                            attempts: p.attempts,
                            range: p.range.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
