//! `JOB_TYPE_AUDIT`: the audit as a durable job, so it can run on a
//! schedule (`AUDIT_SCHEDULE`) like the reindex.
//!
//! Activities: `audit`; with `repair` also `repair` (queue the reindex
//! jobs, keyed by this job's id so a retried attempt queues none twice) and
//! `verify` (wait for them, then audit again). The audits record each
//! table checked as progress (its rows) while they run, and their summary
//! as the last checkpoint, which `GetJob` shows.
//!
//! Pages, for the progress counters: the audit has no batch-size setting,
//! so a page is its natural unit of work, one table checked (of one
//! customer); each is also a checkpoint. The summary checkpoints cover no
//! page, and the repair, done in one go, is one page.
//!
//! `verify` waits for reindex jobs that other workers run: a process whose
//! workers are all busy with audits would wait until [`VERIFY_WAIT`]; keep
//! `WORKER_CONCURRENCY` at 2 or more (the default) where audits repair.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use scorekeeper_analytics::Analytics;
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::audit::{AuditReport, AuditScope, AuditSpec, AuditTable, RepairReport, TableReport};
use scorekeeper_jobs::handler::DEFAULT_RETRY_BACKOFF;
use scorekeeper_jobs::{Activity, Covered, JobContext, JobHandler, NewJob, RetryPolicy, RunError};
use scorekeeper_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::record::Phase;
use super::{Findings, Progress, audit_with_findings, repair, wait_for_jobs};

/// `JobType::JOB_TYPE_AUDIT` (proto `scorekeeper.v1.JobType`); a contract
/// test checks the two agree.
pub const JOB_TYPE: i16 = 2;

/// Longest wait of `verify` for the repair's reindex jobs.
pub const VERIFY_WAIT: Duration = Duration::from_secs(600);

/// Drifted rows named in a checkpoint (the counts stay exact).
const CHECKPOINT_ROWS: usize = 100;

/// The first audit: a checkpoint per table checked, then its summary.
pub const AUDIT: Activity<AuditCheckpoint> = Activity::new("audit");
/// The repair's report: the reindex jobs it queued, tombstones, bumps.
pub const REPAIR: Activity<RepairReport> = Activity::new("repair");
/// The audit after the repair, checkpointed as [`AUDIT`].
pub const VERIFY: Activity<AuditCheckpoint> = Activity::new("verify");

/// What a finished audit activity leaves as its checkpoint.
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

/// The checkpoint of an audit activity (`audit`, `verify`), stored as the
/// bare object of its case (`{"table_checked": …}` or the summary), which
/// `GetJob` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuditCheckpoint {
    /// While it runs: the table just checked.
    TableChecked { table_checked: String },
    /// When done.
    Summary(AuditSummary),
}

impl AuditCheckpoint {
    fn table(table: AuditTable) -> AuditCheckpoint {
        AuditCheckpoint::TableChecked { table_checked: table.name().to_owned() }
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

/// The audit job of `spec`, owned by `customer_id` (`None`: all
/// customers'). The one builder of audit jobs (the schedule uses it).
pub fn new_job(spec: &AuditSpec, customer_id: Option<CustomerId>) -> NewJob {
    NewJob::of::<AuditHandler>(spec, customer_id)
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
/// (its rows; a page and a checkpoint per table) when `record` is set, so that a retry does
/// not count the rows of a finished activity twice.
async fn audit_recording(
    ctx: &JobContext,
    store: &Store,
    analytics: &Analytics,
    scope: &AuditScope,
    activity: &Activity<AuditCheckpoint>,
    record: bool,
) -> Result<(AuditReport, Findings), RunError> {
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
                    let checkpoint = AuditCheckpoint::table(table);
                    let covered = Covered { pages: 1, rows: rows as usize };
                    ctx.record_checkpoint(activity, covered, &checkpoint, started.elapsed()).await?;
                }
            }
        }
    };
    let (report, findings) = outcome?;
    while let Ok((table, rows)) = receiver.try_recv() {
        if record {
            let covered = Covered { pages: 1, rows: rows as usize };
            ctx.record_checkpoint(activity, covered, &AuditCheckpoint::table(table), Duration::ZERO).await?;
        }
    }
    Ok((report, findings))
}

impl JobHandler for AuditHandler {
    const JOB_TYPE: i16 = JOB_TYPE;
    const NAME: &'static str = "audit";
    const RETRY_POLICY: RetryPolicy = RetryPolicy { max_attempts: 5, backoff: DEFAULT_RETRY_BACKOFF };
    type Payload = AuditSpec;
    /// An audit runs in one piece.
    type Partition = ();

    fn activities(spec: &AuditSpec) -> Vec<&'static str> {
        if spec.repair { vec![AUDIT.name(), REPAIR.name(), VERIFY.name()] } else { vec![AUDIT.name()] }
    }

    fn run<'a>(&'a self, ctx: &'a JobContext, spec: AuditSpec) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let (store, analytics) = (&self.store, &self.analytics);
            let mut repaired = if ctx.finished(&REPAIR) { ctx.checkpoint(&REPAIR)? } else { None };
            if repaired.is_none() {
                let record = !ctx.finished(&AUDIT);
                let (report, findings) =
                    audit_recording(ctx, store, analytics, &spec.scope, &AUDIT, record).await?;
                if record {
                    super::record::record(store, &spec.scope, &report, Some(ctx.job().id), Phase::Audit)
                        .await?;
                    let summary = AuditCheckpoint::Summary(AuditSummary::from(&report));
                    ctx.record_checkpoint(&AUDIT, Covered::default(), &summary, Duration::ZERO).await?;
                    ctx.finish_activity(&AUDIT, Duration::ZERO).await?;
                }
                if !spec.repair {
                    return Ok(());
                }
                let started = Instant::now();
                let dedupe = format!("audit:{}", ctx.job().id);
                let report = repair(store, analytics, &findings, Some(&dedupe)).await?;
                let rows = report.jobs.len() + report.tombstones as usize + report.versions_bumped as usize;
                ctx.record_checkpoint(&REPAIR, Covered { pages: 1, rows }, &report, started.elapsed())
                    .await?;
                ctx.finish_activity(&REPAIR, Duration::ZERO).await?;
                repaired = Some(report);
            }
            let jobs = repaired.map(|r| r.jobs).unwrap_or_default();
            let started = Instant::now();
            tokio::select! {
                outcome = wait_for_jobs(store, &jobs, VERIFY_WAIT) => outcome?,
                _ = ctx.stopping().cancelled() => {}
            }
            let (after, _) = audit_recording(ctx, store, analytics, &spec.scope, &VERIFY, true).await?;
            super::record::record(store, &spec.scope, &after, Some(ctx.job().id), Phase::Verify).await?;
            let summary = AuditCheckpoint::Summary(AuditSummary::from(&after));
            ctx.record_checkpoint(&VERIFY, Covered::default(), &summary, started.elapsed()).await?;
            ctx.finish_activity(&VERIFY, Duration::ZERO).await
        })
    }
}
