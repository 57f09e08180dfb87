//! Drift audit reports as `scorekeeper audit` prints them.

use scorekeeper_proto::time::from_timestamp;
use scorekeeper_proto::v1::{AuditRepair, AuditReport, AuditTable, DriftCounts, DriftKind};
use serde::Serialize;

use super::rfc3339;

/// Rows drifted listed in text; the JSON view lists all the report names.
const ROWS_SHOWN: usize = 20;

fn table_word(table: i32) -> &'static str {
    match AuditTable::try_from(table) {
        Ok(AuditTable::Conversations) => "conversations",
        Ok(AuditTable::Scorecards) => "scorecards",
        Ok(AuditTable::Scores) => "scores",
        _ => "unknown",
    }
}

fn kind_word(kind: i32) -> &'static str {
    match DriftKind::try_from(kind) {
        Ok(DriftKind::Missing) => "missing",
        Ok(DriftKind::Stale) => "stale",
        Ok(DriftKind::Newer) => "newer",
        Ok(DriftKind::OnlyInClickhouse) => "only_in_clickhouse",
        Ok(DriftKind::OutOfRange) => "out_of_range",
        _ => "unknown",
    }
}

fn time_text(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| from_timestamp(t).ok())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn total(d: &DriftCounts) -> i64 {
    d.missing + d.stale + d.newer + d.only_in_clickhouse + d.out_of_range
}

/// The report as a table by table, the drifted buckets (days), the first
/// drifted rows, and the total.
pub fn report_text(report: &AuditReport) -> String {
    let mut out = format!(
        "{:14} {:>12} {:>8} {:>8} {:>9} {:>9} {:>7} {:>12} {:>12} {:>9}\n",
        "table",
        "rows",
        "buckets",
        "drifted",
        "missing",
        "stale",
        "newer",
        "only in CH",
        "out of range",
        "time"
    );
    for t in &report.tables {
        let d = t.drift.unwrap_or_default();
        out += &format!(
            "{:14} {:>12} {:>8} {:>8} {:>9} {:>9} {:>7} {:>12} {:>12} {:>7.1} s\n",
            table_word(t.table),
            t.rows_checked,
            t.buckets,
            t.drifted_buckets,
            d.missing,
            d.stale,
            d.newer,
            d.only_in_clickhouse,
            d.out_of_range,
            t.elapsed_ms as f64 / 1000.0
        );
    }
    let drifted: Vec<_> = report.buckets.iter().filter(|b| total(&b.drift.unwrap_or_default()) > 0).collect();
    if !drifted.is_empty() {
        out += "\ndrifted buckets (day, UTC):\n";
        for b in drifted {
            let d = b.drift.unwrap_or_default();
            out += &format!(
                "  {:13} customer {:>6}  {}  rows {} (ClickHouse {})  missing {} stale {} newer {} only in CH {}  {} ms\n",
                table_word(b.table),
                b.customer_id,
                time_text(&b.start_time),
                b.rows_checked,
                b.clickhouse_rows,
                d.missing,
                d.stale,
                d.newer,
                d.only_in_clickhouse,
                b.elapsed_ms
            );
        }
    }
    if !report.rows.is_empty() {
        out += &format!("\ndrifted rows ({} named):\n", report.rows.len());
        for r in report.rows.iter().take(ROWS_SHOWN) {
            let version = |v: i64| if v == 0 { "-".to_owned() } else { v.to_string() };
            out += &format!(
                "  {:13} {:>12}  {:18}  postgres v{}  clickhouse v{}\n",
                table_word(r.table),
                r.id,
                kind_word(r.kind),
                version(r.postgres_version),
                version(r.clickhouse_version)
            );
        }
        if report.rows.len() > ROWS_SHOWN || report.rows_truncated {
            out += "  … (--json lists every named row)\n";
        }
    }
    out += &format!(
        "\n{} drifted row(s); audit took {:.1} s",
        report.drifted_rows,
        report.elapsed_ms as f64 / 1000.0
    );
    out
}

/// The repair's outcome in one line.
pub fn repair_text(repair: &AuditRepair) -> String {
    format!(
        "repair: {} reindex job(s) queued, {} tombstone(s) written, {} version(s) bumped",
        repair.job_ids.len(),
        repair.tombstones,
        repair.versions_bumped
    )
}

/// An audit, the repair it queued and the audit after it, for `--json`.
#[derive(Debug, Serialize)]
pub struct OutcomeView {
    pub before: ReportView,
    pub repair: Option<RepairView>,
    pub after: Option<ReportView>,
}

impl OutcomeView {
    pub fn new(
        before: &AuditReport,
        repair: Option<&AuditRepair>,
        after: Option<&AuditReport>,
    ) -> OutcomeView {
        OutcomeView {
            before: ReportView::from(before),
            repair: repair.map(|r| RepairView {
                jobs: r.job_ids.clone(),
                tombstones: r.tombstones,
                versions_bumped: r.versions_bumped,
            }),
            after: after.map(ReportView::from),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RepairView {
    pub jobs: Vec<String>,
    pub tombstones: i64,
    pub versions_bumped: i64,
}

#[derive(Debug, Serialize)]
pub struct CountsView {
    pub missing: i64,
    pub stale: i64,
    pub newer: i64,
    pub only_in_clickhouse: i64,
    pub out_of_range: i64,
}

impl From<Option<DriftCounts>> for CountsView {
    fn from(d: Option<DriftCounts>) -> Self {
        let d = d.unwrap_or_default();
        CountsView {
            missing: d.missing,
            stale: d.stale,
            newer: d.newer,
            only_in_clickhouse: d.only_in_clickhouse,
            out_of_range: d.out_of_range,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TableView {
    pub table: &'static str,
    pub rows_checked: i64,
    pub buckets: i64,
    pub drifted_buckets: i64,
    pub drift: CountsView,
    pub elapsed_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct BucketView {
    pub table: &'static str,
    pub customer: i64,
    pub start: String,
    pub end: String,
    pub rows_checked: i64,
    pub clickhouse_rows: i64,
    pub drift: CountsView,
    pub elapsed_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct RowView {
    pub table: &'static str,
    pub customer: i64,
    pub id: i64,
    pub kind: &'static str,
    pub postgres_version: Option<i64>,
    pub clickhouse_version: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ReportView {
    pub drifted_rows: i64,
    pub elapsed_ms: i64,
    pub tables: Vec<TableView>,
    pub buckets: Vec<BucketView>,
    pub rows: Vec<RowView>,
    pub rows_truncated: bool,
}

impl From<&AuditReport> for ReportView {
    fn from(r: &AuditReport) -> Self {
        ReportView {
            drifted_rows: r.drifted_rows,
            elapsed_ms: r.elapsed_ms,
            tables: r
                .tables
                .iter()
                .map(|t| TableView {
                    table: table_word(t.table),
                    rows_checked: t.rows_checked,
                    buckets: t.buckets,
                    drifted_buckets: t.drifted_buckets,
                    drift: t.drift.into(),
                    elapsed_ms: t.elapsed_ms,
                })
                .collect(),
            buckets: r
                .buckets
                .iter()
                .map(|b| BucketView {
                    table: table_word(b.table),
                    customer: b.customer_id,
                    start: rfc3339(&b.start_time).unwrap_or_default(),
                    end: rfc3339(&b.end_time).unwrap_or_default(),
                    rows_checked: b.rows_checked,
                    clickhouse_rows: b.clickhouse_rows,
                    drift: b.drift.into(),
                    elapsed_ms: b.elapsed_ms,
                })
                .collect(),
            rows: r
                .rows
                .iter()
                .map(|row| RowView {
                    table: table_word(row.table),
                    customer: row.customer_id,
                    id: row.id,
                    kind: kind_word(row.kind),
                    postgres_version: (row.postgres_version != 0).then_some(row.postgres_version),
                    clickhouse_version: (row.clickhouse_version != 0).then_some(row.clickhouse_version),
                })
                .collect(),
            rows_truncated: r.rows_truncated,
        }
    }
}
