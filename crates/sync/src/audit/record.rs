//! Audit reports kept in Postgres for the console (`Store::store_audit`):
//! each table's counts, the heat map's cells (a table's day, summed over
//! customers) and the first drifted rows named. Both an Audit call and an
//! audit job store theirs; a job that retries after storing may store the
//! same audit twice, which only shows it twice.

use chrono::NaiveDate;
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::audit::{AuditReport, AuditScope, AuditTable, DriftCounts, DriftKind};
use scorekeeper_store::Store;
use scorekeeper_store::console::StoredAudit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::error::Result;

/// Drifted rows a stored report names (the counts stay exact).
pub const ROWS_KEPT: usize = 1_000;

/// Which audit of a job: the first, or the one after a repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Audit,
    Verify,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Audit => "audit",
            Phase::Verify => "verify",
        }
    }
}

/// The stored report (`audit_reports.report`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    pub tables: Vec<TableCounts>,
    #[serde(default)]
    pub days: Vec<DayCell>,
    #[serde(default)]
    pub rows: Vec<NamedRow>,
    #[serde(default)]
    pub rows_truncated: bool,
}

/// One table over the whole audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableCounts {
    pub table: AuditTable,
    pub rows_checked: u64,
    pub drifted: u64,
    pub drift: DriftCounts,
}

/// One table's day (UTC), summed over the customers audited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayCell {
    pub table: AuditTable,
    pub day: NaiveDate,
    pub rows_checked: u64,
    pub clickhouse_rows: u64,
    pub drifted: u64,
}

/// One drifted row, named.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedRow {
    pub table: AuditTable,
    pub customer_id: CustomerId,
    pub id: i64,
    /// `None`: dated where ClickHouse cannot hold it.
    pub day: Option<NaiveDate>,
    pub kind: DriftKind,
    pub postgres_version: Option<i64>,
    pub clickhouse_version: Option<i64>,
}

impl StoredReport {
    pub fn of(report: &AuditReport) -> StoredReport {
        let tables = report
            .tables
            .iter()
            .map(|t| TableCounts {
                table: t.table,
                rows_checked: t.rows_checked,
                drifted: t.drift.total(),
                drift: t.drift,
            })
            .collect();
        let mut days: BTreeMap<(AuditTable, NaiveDate), DayCell> = BTreeMap::new();
        for bucket in &report.buckets {
            let day = bucket.start.date_naive();
            let cell = days.entry((bucket.table, day)).or_insert(DayCell {
                table: bucket.table,
                day,
                rows_checked: 0,
                clickhouse_rows: 0,
                drifted: 0,
            });
            cell.rows_checked += bucket.rows_checked;
            cell.clickhouse_rows += bucket.clickhouse_rows;
            cell.drifted += bucket.drift.total();
        }
        let rows = report
            .rows
            .iter()
            .take(ROWS_KEPT)
            .map(|r| NamedRow {
                table: r.table,
                customer_id: r.customer_id,
                id: r.id,
                day: r.day.map(|d| d.date_naive()),
                kind: r.kind,
                postgres_version: r.postgres_version,
                clickhouse_version: r.clickhouse_version,
            })
            .collect();
        StoredReport {
            tables,
            days: days.into_values().collect(),
            rows,
            rows_truncated: report.rows_truncated || report.rows.len() > ROWS_KEPT,
        }
    }
}

/// Stores `report` of `scope`, run by the audit job `job` (`None`: an Audit
/// call) as its `phase`; returns the stored id.
pub async fn record(
    store: &Store,
    scope: &AuditScope,
    report: &AuditReport,
    job: Option<Uuid>,
    phase: Phase,
) -> Result<i64> {
    let stored = StoredAudit {
        id: 0,
        customer_id: scope.customer_id,
        job_id: job,
        phase: phase.as_str().to_owned(),
        started_at: report.started_at,
        elapsed_ms: i64::try_from(report.elapsed_ms).unwrap_or(i64::MAX),
        span_start: scope.window.map(|w| w.start),
        span_end: scope.window.map(|w| w.end),
        drifted_rows: i64::try_from(report.drifted()).unwrap_or(i64::MAX),
        report: serde_json::to_value(StoredReport::of(report)).expect("a report serializes"),
    };
    Ok(store.store_audit(&stored).await?)
}
