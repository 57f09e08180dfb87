//! The audit walk of one table: every customer's hours first (one query
//! per side for the whole scope, summed into days here), and only where a
//! day's count or checksum differ, its differing hours, then id ranges,
//! until a slice is small enough to read its rows and name each drifted one.
//!
//! Postgres and ClickHouse are always asked the same question at the same
//! time (`try_join`), so the walk costs the slower of the two, not the sum.
//! Drifted days are narrowed several at once (`Tuning::concurrent_days`):
//! each step is a short indexed query, and one at a time the walk would wait
//! on round trips, not work.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};

use scorekeeper_analytics::Analytics;
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::audit::{
    AuditRow, AuditSlice, AuditSpan, AuditTable, BucketCut, BucketReport, BucketSum, DAY_SECONDS,
    DriftCounts, DriftKind, DriftedRow, HOUR_SECONDS,
};
use scorekeeper_domain::time::utc_at_second;
use scorekeeper_store::Store;

use super::compare::{Pair, classify, pair_up};
use crate::error::{Result, SyncError};

/// How finely the walk cuts. The defaults suit production; tests make
/// slices tiny to walk every level on a few rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// A slice with at most this many live rows on each side is read row
    /// by row; a bigger one is cut further. A day or hour ClickHouse lacks
    /// entirely, with more rows than this, is counted and repaired as a
    /// range instead.
    pub rows_read_limit: u64,
    /// Id ranges a slice is cut into when time cannot cut it any finer.
    pub id_fanout: i64,
    /// Drifted days of one table narrowed at once. Each holds a Postgres
    /// connection while it queries (the three tables walk side by side).
    pub concurrent_days: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { rows_read_limit: 20_000, id_fanout: 16, concurrent_days: 4 }
    }
}
/// Ids per lookup of rows found on one side only.
const LOOKUP_CHUNK: usize = 10_000;

/// Bucket time `[start, end)` of one table and customer that ClickHouse
/// lacks entirely: counted, not read row by row (a bulk import, a lost
/// day), and repaired as a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingRange {
    pub table: AuditTable,
    pub customer_id: CustomerId,
    pub start_seconds: i64,
    pub end_seconds: i64,
    pub rows: u64,
}

/// Everything that drifted, uncapped: what a repair works from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Findings {
    pub rows: Vec<DriftedRow>,
    pub missing_ranges: Vec<MissingRange>,
}

impl Findings {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.missing_ranges.is_empty()
    }

    fn extend(&mut self, other: Findings) {
        self.rows.extend(other.rows);
        self.missing_ranges.extend(other.missing_ranges);
    }
}

/// One table, audited: its day buckets and what drifted.
#[derive(Debug, Default)]
pub struct TableWalk {
    pub buckets: Vec<BucketReport>,
    pub findings: Findings,
}

/// One customer's day of one table, audited.
struct DayWalk {
    report: BucketReport,
    findings: Findings,
}

pub struct Walker<'a> {
    pub store: &'a Store,
    pub analytics: &'a Analytics,
    pub tuning: Tuning,
}

impl Walker<'_> {
    async fn pairs(&self, slice: &AuditSlice, cut: &BucketCut) -> Result<Vec<Pair>> {
        let (postgres, clickhouse) = tokio::try_join!(
            async { self.store.audit_buckets(slice, cut).await.map_err(SyncError::from) },
            async { self.analytics.audit_buckets(slice, cut).await.map_err(SyncError::from) },
        )?;
        Ok(pair_up(postgres, clickhouse))
    }

    /// Audits `table` of `customer` (`None`: every customer) over bucket
    /// time `[start, end)` seconds. Buckets come in customer and time order.
    pub async fn table(
        &self,
        table: AuditTable,
        customer: Option<CustomerId>,
        start: i64,
        end: i64,
    ) -> Result<TableWalk> {
        let span = AuditSpan { table, customer_id: customer, start_seconds: start, end_seconds: end };
        let (postgres, clickhouse) = tokio::try_join!(
            async { self.store.audit_hours(&span).await.map_err(SyncError::from) },
            async { self.analytics.audit_hours(&span).await.map_err(SyncError::from) },
        )?;
        // Hours into days, per customer: a day is compared whole, and only
        // a differing day looks at its hours.
        let mut days: BTreeMap<(i64, i64), (Pair, Vec<Pair>)> = BTreeMap::new();
        for hour in pair_up(postgres, clickhouse) {
            let day = hour.key.0.div_euclid(DAY_SECONDS / HOUR_SECONDS);
            let (sum, hours) = days.entry((hour.customer_id.0, day)).or_insert_with(|| {
                (
                    Pair { customer_id: hour.customer_id, key: (day, 0), postgres: None, clickhouse: None },
                    Vec::new(),
                )
            });
            sum.absorb(&hour);
            hours.push(hour);
        }
        let days: Vec<DayWalk> = stream::iter(days.into_values())
            .map(|(day, hours)| self.day(table, start, end, day, hours))
            .buffered(self.tuning.concurrent_days.max(1))
            .try_collect()
            .await?;
        let mut walk = TableWalk::default();
        for day in days {
            walk.buckets.push(day.report);
            walk.findings.extend(day.findings);
        }
        Ok(walk)
    }

    /// One customer's day: nothing more when it is in sync, else its
    /// differing hours narrowed down.
    async fn day(
        &self,
        table: AuditTable,
        start: i64,
        end: i64,
        day: Pair,
        hours: Vec<Pair>,
    ) -> Result<DayWalk> {
        let started = Instant::now();
        let slice = AuditSlice {
            table,
            customer_id: day.customer_id,
            start_seconds: (day.key.0 * DAY_SECONDS).max(start),
            end_seconds: ((day.key.0 + 1) * DAY_SECONDS).min(end),
            id_low: 0,
            id_high: i64::MAX,
        };
        let mut drift = DriftCounts::default();
        let mut findings = Findings::default();
        if !day.in_sync() {
            // Every live row of the day (or hour), on either side, lies
            // between these ids; ClickHouse then reads only that part of its
            // primary key (customer_id, id) in each narrower query, and
            // Postgres only that range of `scores`, instead of every row to
            // filter by time.
            let within = |pair: &Pair, slice: AuditSlice| {
                let (low, high) = pair.id_range().unwrap_or((0, i64::MAX));
                AuditSlice { id_low: low, id_high: high, ..slice }
            };
            let limit = self.tuning.rows_read_limit;
            let (postgres_rows, clickhouse_rows) = (day.postgres_rows(), day.clickhouse_rows());
            let work = if (clickhouse_rows == 0 && postgres_rows > limit)
                || postgres_rows.max(clickhouse_rows) <= limit
            {
                // Lost whole (counted as a range), or small enough to read.
                vec![(within(&day, slice), day)]
            } else {
                hours
                    .into_iter()
                    .filter(|hour| !hour.in_sync())
                    .map(|hour| {
                        let hour_slice = AuditSlice {
                            start_seconds: (hour.key.0 * HOUR_SECONDS).max(slice.start_seconds),
                            end_seconds: ((hour.key.0 + 1) * HOUR_SECONDS).min(slice.end_seconds),
                            ..slice
                        };
                        (within(&hour, hour_slice), hour)
                    })
                    .collect()
            };
            findings = self.narrow(work, &mut drift).await?;
        }
        let report = BucketReport {
            table,
            customer_id: day.customer_id,
            start: utc_at_second(slice.start_seconds),
            end: utc_at_second(slice.end_seconds),
            rows_checked: day.postgres_rows(),
            clickhouse_rows: day.clickhouse_rows(),
            drift,
            elapsed_ms: if day.in_sync() { 0 } else { started.elapsed().as_millis() as u64 },
        };
        Ok(DayWalk { report, findings })
    }

    /// Cuts differing time slices (a day or its hours, whose id bounds only
    /// enclose their live rows) by id range until their rows can be read,
    /// counting what drifted into `drift`. A time slice that ClickHouse
    /// lacks whole, with more rows than can be read, is counted as one
    /// missing range. A work list rather than recursion.
    async fn narrow(&self, work: Vec<(AuditSlice, Pair)>, drift: &mut DriftCounts) -> Result<Findings> {
        let mut findings = Findings::default();
        // `by_time_only`: a time slice, not yet cut by id.
        let mut work: Vec<(AuditSlice, Pair, bool)> =
            work.into_iter().map(|(slice, pair)| (slice, pair, true)).collect();
        while let Some((slice, pair, by_time_only)) = work.pop() {
            let (postgres_rows, clickhouse_rows) = (pair.postgres_rows(), pair.clickhouse_rows());
            if clickhouse_rows == 0 && postgres_rows > self.tuning.rows_read_limit && by_time_only {
                drift.add(DriftKind::Missing, postgres_rows);
                findings.missing_ranges.push(MissingRange {
                    table: slice.table,
                    customer_id: slice.customer_id,
                    start_seconds: slice.start_seconds,
                    end_seconds: slice.end_seconds,
                    rows: postgres_rows,
                });
                continue;
            }
            if postgres_rows.max(clickhouse_rows) <= self.tuning.rows_read_limit {
                findings.rows.extend(self.compare_rows(&slice, &pair, drift).await?);
                continue;
            }
            let Some((low, high)) = pair.id_range() else { continue };
            let (low, high) = (low.max(slice.id_low), high.min(slice.id_high));
            let step = ((high - low) / self.tuning.id_fanout.max(2) + 1).max(1);
            let cut = BucketCut::ids(low, step);
            let within = AuditSlice { id_low: low, id_high: high, ..slice };
            for part in self.pairs(&within, &cut).await? {
                if part.in_sync() {
                    continue;
                }
                let (id_low, id_high) = cut.id.bucket_range(part.key.1, within.id_low, within.id_high);
                work.push((AuditSlice { id_low, id_high, ..within }, part, false));
            }
        }
        Ok(findings)
    }

    /// Reads the slice's rows on both sides and names each drifted one. A
    /// row found on one side only is looked up by id on the other, whatever
    /// its time there: a row whose time changed is stale, not missing, and
    /// a row is never called gone from Postgres (and so tombstoned) while
    /// Postgres still has it.
    ///
    /// Each side reads only the ids between its own smallest and largest
    /// live id in the slice (from `pair`), or nothing when it has no live
    /// row there: a row live on one side is then read there, and the other
    /// side's row, live or not, comes from the lookup by id. So a few rows
    /// with ids far from the rest of their hour (a bulk import of old
    /// conversations, rows copied by hand) cost a lookup each, not a read
    /// of every id between.
    async fn compare_rows(
        &self,
        slice: &AuditSlice,
        pair: &Pair,
        drift: &mut DriftCounts,
    ) -> Result<Vec<DriftedRow>> {
        // A slice lies within one day bucket: the day its rows are in.
        let day = utc_at_second(slice.start_seconds.div_euclid(DAY_SECONDS) * DAY_SECONDS);
        let own = |side: Option<BucketSum>| {
            side.map(|b| AuditSlice {
                id_low: b.min_id.max(slice.id_low),
                id_high: b.max_id.min(slice.id_high),
                ..*slice
            })
        };
        let (postgres_slice, clickhouse_slice) = (own(pair.postgres), own(pair.clickhouse));
        let (postgres, clickhouse) = tokio::try_join!(
            async {
                match &postgres_slice {
                    Some(slice) => self.store.audit_rows(slice).await.map_err(SyncError::from),
                    None => Ok(Vec::new()),
                }
            },
            async {
                match &clickhouse_slice {
                    Some(slice) => self.analytics.audit_rows(slice).await.map_err(SyncError::from),
                    None => Ok(Vec::new()),
                }
            },
        )?;
        let postgres: HashMap<i64, AuditRow> = postgres.into_iter().map(|r| (r.id, r)).collect();
        let clickhouse: HashMap<i64, AuditRow> = clickhouse.into_iter().map(|r| (r.id, r)).collect();
        let mut pairs: Vec<(Option<AuditRow>, Option<AuditRow>)> = Vec::new();
        let (mut only_postgres, mut only_clickhouse) = (Vec::new(), Vec::new());
        for p in postgres.values() {
            match clickhouse.get(&p.id) {
                Some(c) => pairs.push((Some(*p), Some(*c))),
                None if !p.is_deleted => only_postgres.push(*p),
                None => {}
            }
        }
        for c in clickhouse.values() {
            if !c.is_deleted && !postgres.contains_key(&c.id) {
                only_clickhouse.push(*c);
            }
        }
        let (table, customer) = (slice.table, slice.customer_id);
        for chunk in only_postgres.chunks(LOOKUP_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
            let found: HashMap<i64, AuditRow> = self
                .analytics
                .audit_rows_by_id(table, customer, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
            pairs.extend(chunk.iter().map(|p| (Some(*p), found.get(&p.id).copied())));
        }
        for chunk in only_clickhouse.chunks(LOOKUP_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
            let found: HashMap<i64, AuditRow> = self
                .store
                .audit_rows_by_id(table, customer, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
            pairs.extend(chunk.iter().map(|c| (found.get(&c.id).copied(), Some(*c))));
        }
        let mut drifted: Vec<DriftedRow> = pairs
            .into_iter()
            .filter_map(|(p, c)| {
                let kind = classify(p, c)?;
                let id = p.or(c).map(|r| r.id)?;
                Some(DriftedRow {
                    table,
                    customer_id: customer,
                    id,
                    kind,
                    postgres_version: p.map(|r| r.version),
                    clickhouse_version: c.map(|r| r.version),
                    day: Some(day),
                })
            })
            .collect();
        drifted.sort_by_key(|r| r.id);
        for row in &drifted {
            drift.add(row.kind, 1);
        }
        Ok(drifted)
    }
}
