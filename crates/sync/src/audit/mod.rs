//! The drift audit: finds which rows differ between Postgres and ClickHouse
//! and repairs only those.
//!
//! Per table (conversations, scorecards, scores), both engines compute in
//! one query for every customer in scope and every hour the count and an
//! order-independent checksum of their live rows (`domain::audit::row_hash`
//! of id and version, summed; ClickHouse under `FINAL`), summed into days
//! here. Days that agree cost nothing more. In a day that differs, its
//! differing hours are read, or cut into id ranges ([`walk`]), until a slice
//! is small enough to read and name each drifted row: missing from
//! ClickHouse, stale there, newer there (a bug), or only there (deleted
//! from Postgres by hand). [`repair`] turns that into reindex jobs for the
//! drifted conversations and time ranges, and tombstones for rows gone
//! from Postgres; [`job`] runs all of it as a durable job.
//!
//! Only what readers see is compared: a live row in Postgres against the
//! latest version in ClickHouse unless that is a tombstone. So a row
//! deleted in Postgres that ClickHouse never had, or a tombstone for a row
//! deleted from Postgres outright, is in sync, and a repair converges.
//!
//! Rows that change while the audit runs may be reported once (the outbox
//! delivers within seconds); a repair of them is harmless, since every
//! write is idempotent by version.

pub mod compare;
pub mod job;
pub mod out_of_range;
pub mod record;
pub mod repair;
pub mod schedule;
pub mod walk;

use std::time::{Duration, Instant};

use chrono::Utc;
use scorekeeper_analytics::Analytics;
use scorekeeper_domain::audit::{
    AuditReport, AuditScope, AuditTable, DriftKind, MAX_NAMED_ROWS, RepairReport, TableReport,
};
use scorekeeper_store::Store;

pub use repair::{RepairPlan, repair, wait_for_jobs};
pub use walk::{Findings, MissingRange, Tuning};

use crate::error::Result;
use walk::Walker;

/// Told after each table: the table, and the live rows of Postgres checked
/// in it (over every customer in scope).
pub trait Progress: Send + Sync {
    fn table_done(&self, table: AuditTable, rows_checked: u64);
}

/// No progress reporting.
pub struct Quiet;

impl Progress for Quiet {
    fn table_done(&self, _: AuditTable, _: u64) {}
}

/// Audits `scope` and returns the report. The library entry point (the
/// RPC, the job and `scorekeeper-bench` call it); read-only.
pub async fn audit(store: &Store, analytics: &Analytics, scope: &AuditScope) -> Result<AuditReport> {
    Ok(audit_with_findings(store, analytics, scope, &Quiet).await?.0)
}

/// As [`audit`], also returning every drifted row and range uncapped, which
/// [`repair`] works from. Publishes the drift metrics when done.
pub async fn audit_with_findings(
    store: &Store,
    analytics: &Analytics,
    scope: &AuditScope,
    progress: &dyn Progress,
) -> Result<(AuditReport, Findings)> {
    audit_tuned(store, analytics, scope, progress, Tuning::default()).await
}

/// As [`audit_with_findings`], cutting slices as `tuning` says.
pub async fn audit_tuned(
    store: &Store,
    analytics: &Analytics,
    scope: &AuditScope,
    progress: &dyn Progress,
    tuning: Tuning,
) -> Result<(AuditReport, Findings)> {
    let started_at = Utc::now();
    let started = Instant::now();
    let (start, end) = scope.seconds();
    let walker = Walker { store, analytics, tuning };
    // The three tables at once, every customer in scope in one walk per
    // table: each side then works on several queries, each table is read
    // once, and the audit costs the slowest table, not the sum.
    let walks = futures::future::try_join_all(AuditTable::ALL.iter().map(|&table| {
        let walker = &walker;
        async move {
            let started = Instant::now();
            let (walk, outside) = futures::try_join!(
                walker.table(table, scope.customer_id, start, end),
                out_of_range::find(store, analytics, table, scope),
            )?;
            let rows: u64 = walk.buckets.iter().map(|b| b.rows_checked).sum();
            progress.table_done(table, rows);
            Ok::<_, crate::SyncError>((table, walk, outside, started.elapsed()))
        }
    }))
    .await?;
    let mut tables = Vec::new();
    let mut buckets = Vec::new();
    let mut findings = Findings::default();
    for (table, mut walk, outside, elapsed) in walks {
        let unbucketed = out_of_range::fold(table, &mut walk.buckets, &mut walk.findings, outside);
        let mut report = TableReport {
            table,
            rows_checked: unbucketed.rows_checked,
            buckets: 0,
            drifted_buckets: 0,
            drift: unbucketed.drift,
            elapsed_ms: elapsed.as_millis() as u64,
        };
        for bucket in &walk.buckets {
            report.rows_checked += bucket.rows_checked;
            report.buckets += 1;
            report.drifted_buckets += u64::from(bucket.drift.total() > 0);
            report.drift.merge(&bucket.drift);
        }
        tables.push(report);
        buckets.extend(walk.buckets);
        findings.rows.extend(walk.findings.rows);
        findings.missing_ranges.extend(walk.findings.missing_ranges);
    }
    let rows_truncated = findings.rows.len() > MAX_NAMED_ROWS;
    let report = AuditReport {
        scope: scope.clone(),
        started_at,
        elapsed_ms: started.elapsed().as_millis() as u64,
        tables,
        buckets,
        rows: findings.rows.iter().take(MAX_NAMED_ROWS).cloned().collect(),
        rows_truncated,
    };
    publish_metrics(&report, started.elapsed());
    Ok((report, findings))
}

/// An audit, its repair, and the audit after the repair.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditOutcome {
    pub before: AuditReport,
    pub repair: Option<RepairReport>,
    pub after: Option<AuditReport>,
}

/// Audits `scope`; when anything drifted, repairs it ([`repair`]: reindex
/// jobs, version bumps, tombstones), waits up to `wait` for the reindex
/// jobs (run by whatever workers share this Postgres), and audits again.
/// `dedupe` makes the queued jobs' keys unique to one caller (a job's id),
/// so a retried attempt queues nothing twice.
pub async fn audit_and_repair(
    store: &Store,
    analytics: &Analytics,
    scope: &AuditScope,
    progress: &dyn Progress,
    dedupe: Option<&str>,
    wait: Duration,
) -> Result<AuditOutcome> {
    let (before, findings) = audit_with_findings(store, analytics, scope, progress).await?;
    if findings.is_empty() {
        return Ok(AuditOutcome { before, repair: None, after: None });
    }
    let repaired = repair(store, analytics, &findings, dedupe).await?;
    wait_for_jobs(store, &repaired.jobs, wait).await?;
    let after = audit(store, analytics, scope).await?;
    Ok(AuditOutcome { before, repair: Some(repaired), after: Some(after) })
}

/// `scorekeeper_audit_drifted_rows{table, kind}` and friends, of the last
/// audit this process ran.
fn publish_metrics(report: &AuditReport, elapsed: Duration) {
    for table in &report.tables {
        let name = table.table.name();
        for kind in DriftKind::ALL {
            metrics::gauge!(crate::metrics::AUDIT_DRIFTED_ROWS, "table" => name, "kind" => kind.name())
                .set(table.drift.get(kind) as f64);
        }
        metrics::gauge!(crate::metrics::AUDIT_ROWS_CHECKED, "table" => name).set(table.rows_checked as f64);
    }
    metrics::gauge!(crate::metrics::AUDIT_LAST_RUN_TIMESTAMP_SECONDS).set(Utc::now().timestamp() as f64);
    metrics::histogram!(crate::metrics::AUDIT_SECONDS).record(elapsed);
}
