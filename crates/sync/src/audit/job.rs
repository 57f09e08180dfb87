//! `JOB_TYPE_AUDIT`: the audit as a durable job, so it can run on a
//! schedule (`AUDIT_SCHEDULE`) like the reindex.
//!
//! Activities: `audit`; with `repair` also `repair` (queue the reindex
//! jobs, keyed by this job's id so a retried attempt queues none twice) and
//! `verify` (wait for them, then audit again). The audits record each
//! table checked as progress (its rows) while they run, and their summary
//! as the last checkpoint, which `GetJob` shows.
//!
//! `verify` waits for reindex jobs that other workers run: a process whose
//! workers are all busy with audits would wait until [`VERIFY_WAIT`]; keep
//! `WORKER_CONCURRENCY` at 2 or more (the default) where audits repair.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use scorekeeper_analytics::Analytics;
use scorekeeper_domain::audit::{AuditReport, AuditSpec, AuditTable, RepairReport, TableReport};
use scorekeeper_jobs::JobError;
use scorekeeper_jobs::{JobContext, JobHandler, RunError};
use scorekeeper_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Progress, audit_with_findings, repair, wait_for_jobs};
use crate::error::SyncError;
use crate::retry::{self, RetryDecision};

/// `JobType::JOB_TYPE_AUDIT` (proto `scorekeeper.v1.JobType`); a contract
/// test checks the two agree.
pub const JOB_TYPE: i16 = 2;

/// Longest wait of `verify` for the repair's reindex jobs.
pub const VERIFY_WAIT: Duration = Duration::from_secs(600);

/// Drifted rows named in a checkpoint (the counts stay exact).
const CHECKPOINT_ROWS: usize = 100;

pub const AUDIT: &str = "audit";
pub const REPAIR: &str = "repair";
pub const VERIFY: &str = "verify";

/// What a finished activity leaves as its checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    pub drifted: u64,
    pub tables: Vec<TableReport>,
    pub rows: Vec<scorekeeper_domain::audit::DriftedRow>,
    pub elapsed_ms: u64,
}

impl From<&AuditReport> for AuditSummary {
    fn from(report: &AuditReport) -> Self {
        AuditSummary {
            drifted: report.drifted(),
            tables: report.tables.clone(),
            rows: report.rows.iter().take(CHECKPOINT_ROWS).cloned().collect(),
            elapsed_ms: report.elapsed_ms,
        }
    }
}

pub struct AuditHandler {
    store: Store,
    analytics: Analytics,
}

impl AuditHandler {
    pub fn new(store: Store, analytics: Analytics) -> AuditHandler {
        AuditHandler { store, analytics }
    }
}

fn spec(payload: &serde_json::Value) -> Result<AuditSpec, String> {
    serde_json::from_value(payload.clone()).map_err(|e| format!("not an audit payload: {e}"))
}

/// The activities of an audit job with this spec, in order.
pub fn activities(spec: &AuditSpec) -> Vec<String> {
    let names: &[&str] = if spec.repair { &[AUDIT, REPAIR, VERIFY] } else { &[AUDIT] };
    names.iter().map(|&n| n.to_owned()).collect()
}

/// Hands each table checked (of each customer) to the job's run loop,
/// which records it as the activity's progress.
struct ChannelProgress(mpsc::UnboundedSender<(AuditTable, u64)>);

impl Progress for ChannelProgress {
    fn table_done(&self, table: AuditTable, rows_checked: u64) {
        tracing::info!(table = table.name(), rows_checked, "audit: table checked");
        let _ = self.0.send((table, rows_checked));
    }
}

/// Runs the audit, recording each table checked as progress of `activity`
/// (its rows, a batch per table) when `record` is set, so that a retry does
/// not count the rows of a finished activity twice.
async fn audit_recording(
    ctx: &JobContext,
    store: &Store,
    analytics: &Analytics,
    scope: &scorekeeper_domain::audit::AuditScope,
    activity: &str,
    record: bool,
) -> Result<(AuditReport, super::Findings), RunError> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let progress = ChannelProgress(sender);
    let audit = audit_with_findings(store, analytics, scope, &progress);
    tokio::pin!(audit);
    let started = Instant::now();
    let outcome = loop {
        tokio::select! {
            outcome = &mut audit => break outcome,
            Some((table, rows)) = receiver.recv() => {
                if record {
                    let checkpoint = serde_json::json!({ "table_checked": table.name() });
                    ctx.record_batch(activity, rows as usize, &checkpoint, started.elapsed()).await?;
                }
            }
        }
    };
    let (report, findings) = outcome.map_err(failure)?;
    while let Ok((table, rows)) = receiver.try_recv() {
        if record {
            let checkpoint = serde_json::json!({ "table_checked": table.name() });
            ctx.record_batch(activity, rows as usize, &checkpoint, Duration::ZERO).await?;
        }
    }
    Ok((report, findings))
}

impl JobHandler for AuditHandler {
    fn activities(&self, payload: &serde_json::Value) -> Result<Vec<String>, String> {
        Ok(activities(&spec(payload)?))
    }

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let spec =
                spec(&ctx.job().payload).map_err(|message| RunError::fatal("invalid_payload", message))?;
            let finished = |name: &str| ctx.activity(name).is_some_and(|a| a.finished);
            let (store, analytics) = (&self.store, &self.analytics);
            let mut repaired: Option<RepairReport> = ctx
                .activity(REPAIR)
                .filter(|a| a.finished)
                .and_then(|a| a.checkpoint.clone())
                .and_then(|c| serde_json::from_value(c).ok());
            if repaired.is_none() {
                let record = !finished(AUDIT);
                let (report, findings) =
                    audit_recording(ctx, store, analytics, &spec.scope, AUDIT, record).await?;
                if record {
                    let summary = serde_json::to_value(AuditSummary::from(&report)).expect("serialises");
                    ctx.record_batch(AUDIT, 0, &summary, Duration::ZERO).await?;
                    ctx.finish_activity(AUDIT, Duration::ZERO).await?;
                }
                if !spec.repair {
                    return Ok(());
                }
                let started = Instant::now();
                let dedupe = format!("audit:{}", ctx.job().id);
                let report = repair(store, analytics, &findings, Some(&dedupe)).await.map_err(failure)?;
                let checkpoint = serde_json::to_value(&report).expect("a RepairReport serialises");
                let rows = report.jobs.len() + report.tombstones as usize + report.versions_bumped as usize;
                ctx.record_batch(REPAIR, rows, &checkpoint, started.elapsed()).await?;
                ctx.finish_activity(REPAIR, Duration::ZERO).await?;
                repaired = Some(report);
            }
            let jobs = repaired.map(|r| r.jobs).unwrap_or_default();
            let started = Instant::now();
            tokio::select! {
                outcome = wait_for_jobs(store, &jobs, VERIFY_WAIT) => outcome.map_err(failure)?,
                _ = ctx.stopping().cancelled() => {}
            }
            let (after, _) = audit_recording(ctx, store, analytics, &spec.scope, VERIFY, true).await?;
            let summary = serde_json::to_value(AuditSummary::from(&after)).expect("serialises");
            ctx.record_batch(VERIFY, 0, &summary, started.elapsed()).await?;
            ctx.finish_activity(VERIFY, Duration::ZERO).await
        })
    }
}

/// A failed audit as the job records it; retry decided by the one policy.
fn failure(error: SyncError) -> RunError {
    let retryable = matches!(retry::decide(&error, 1), RetryDecision::RetryLater(_));
    let code = match &error {
        SyncError::Store(_) => "postgres",
        SyncError::Analytics(_) => "clickhouse",
        SyncError::Invalid(_) => "invalid",
    };
    let message = scorekeeper_domain::report::error_chain(&error);
    RunError::Failed(JobError { code: code.into(), message, retryable, details: serde_json::Value::Null })
}
