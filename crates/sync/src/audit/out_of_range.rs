//! Rows the mirror cannot hold: live in Postgres with a time outside what
//! ClickHouse's `DateTime` holds (`domain::time::MIRROR_SECONDS`), written
//! before the API refused such times, or by hand. The walk cannot see
//! most of them (ClickHouse has no bucket for 1900 or 2200, and the walk
//! cuts both sides to its range), so they are found apart, by one query
//! per table, and reported as [`DriftKind::OutOfRange`] whatever the walk
//! thought of them: never as in sync, and never as a drift that a
//! reindex would repair (the row encoder refuses them).

use std::collections::{BTreeMap, HashMap};

use scorekeeper_analytics::Analytics;
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::audit::{AuditScope, AuditTable, BucketReport, DriftCounts, DriftKind, DriftedRow};
use scorekeeper_store::Store;
use scorekeeper_store::audit::OutOfRangeRow;

use super::walk::Findings;
use crate::error::{Result, SyncError};

/// The out-of-range rows of `table` in `scope`, each with the version
/// ClickHouse holds of it (a clamped copy written before the encoder
/// refused such rows), if any.
pub async fn find(
    store: &Store,
    analytics: &Analytics,
    table: AuditTable,
    scope: &AuditScope,
) -> Result<Vec<(OutOfRangeRow, Option<i64>)>> {
    let (start, end) = scope.unclamped_seconds();
    let bound = |seconds| chrono::DateTime::from_timestamp(seconds, 0);
    let rows = store.audit_out_of_range(table, scope.customer_id, bound(start), bound(end)).await?;
    let mut by_customer: BTreeMap<CustomerId, Vec<i64>> = BTreeMap::new();
    for row in &rows {
        by_customer.entry(row.customer_id).or_default().push(row.id);
    }
    let mut clickhouse: HashMap<(CustomerId, i64), i64> = HashMap::new();
    for (customer, ids) in by_customer {
        for found in analytics.audit_rows_by_id(table, customer, &ids).await.map_err(SyncError::from)? {
            if !found.is_deleted {
                clickhouse.insert((customer, found.id), found.version);
            }
        }
    }
    Ok(rows.into_iter().map(|row| (row, clickhouse.get(&(row.customer_id, row.id)).copied())).collect())
}

/// What [`fold`] adds outside the walk's buckets: rows whose bucket time
/// no bucket covers (1900, 2200).
#[derive(Debug, Default)]
pub struct Unbucketed {
    pub rows_checked: u64,
    pub drift: DriftCounts,
}

/// Folds the out-of-range rows of `table` into the walk's day buckets and
/// findings: each is named as [`DriftKind::OutOfRange`] and counted in its
/// day bucket, or in what is returned when no bucket covers it; what the
/// walk had said of the same row is taken back, so no row counts twice and
/// repair never reindexes one.
pub fn fold(
    table: AuditTable,
    buckets: &mut [BucketReport],
    findings: &mut Findings,
    rows: Vec<(OutOfRangeRow, Option<i64>)>,
) -> Unbucketed {
    let mut unbucketed = Unbucketed::default();
    for (row, clickhouse_version) in rows {
        let bucket = buckets.iter_mut().find(|b| {
            b.table == table
                && b.customer_id == row.customer_id
                && b.start <= row.bucket_time
                && row.bucket_time < b.end
        });
        let drift = match bucket {
            Some(bucket) => &mut bucket.drift,
            None => {
                unbucketed.rows_checked += 1;
                &mut unbucketed.drift
            }
        };
        let walked = findings
            .rows
            .iter()
            .position(|r| r.table == table && r.customer_id == row.customer_id && r.id == row.id);
        if let Some(at) = walked {
            drift.remove(findings.rows.remove(at).kind, 1);
        }
        drift.add(DriftKind::OutOfRange, 1);
        findings.rows.push(DriftedRow {
            table,
            customer_id: row.customer_id,
            id: row.id,
            kind: DriftKind::OutOfRange,
            postgres_version: Some(row.version),
            clickhouse_version,
            day: None,
        });
    }
    unbucketed
}
