//! The drift audit: what it covers, what it found, and the payload of its
//! job. Pure: `store` and `analytics` compute the checksums, `sync` compares
//! them and repairs; these are the shapes they share.
//!
//! A *bucket* is a range of the time each table mirrors (conversations:
//! `started_at`; scorecards: `created_at`; scores: their scorecard's
//! `created_at`) in whole seconds since the Unix epoch, so both engines cut
//! it the same way whatever their time zone. Day buckets are
//! `[86400·k, 86400·(k+1))`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::CustomerId;
use crate::time::MIRROR_SECONDS;

/// Seconds per top-level bucket (a UTC day) and per second-level bucket.
pub const DAY_SECONDS: i64 = 86_400;
pub const HOUR_SECONDS: i64 = 3_600;

/// A mirrored table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditTable {
    Conversations,
    Scorecards,
    Scores,
}

impl AuditTable {
    pub const ALL: [AuditTable; 3] = [AuditTable::Conversations, AuditTable::Scorecards, AuditTable::Scores];

    pub fn name(self) -> &'static str {
        match self {
            AuditTable::Conversations => "conversations",
            AuditTable::Scorecards => "scorecards",
            AuditTable::Scores => "scores",
        }
    }
}

/// How a row differs between Postgres and ClickHouse. Only rows visible to
/// readers count: a live row in Postgres against ClickHouse's latest
/// version (`FINAL`). A tombstone in ClickHouse for a row Postgres deleted,
/// or no row at all, is in sync either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Live in Postgres, absent from ClickHouse.
    Missing,
    /// ClickHouse holds an older version than Postgres (including a live
    /// row Postgres has deleted since, and a tombstone for a live row).
    Stale,
    /// ClickHouse holds a *newer* version than Postgres. Versions only grow
    /// in Postgres, so only a bug makes this; a reindex cannot fix it (the
    /// higher version wins), so repair bumps the Postgres row's version first.
    Newer,
    /// Live in ClickHouse, gone from Postgres (deleted by hand): repaired
    /// with a tombstone.
    OnlyInClickhouse,
    /// Live in Postgres with a mirrored time ClickHouse's `DateTime` cannot
    /// hold (`time::MIRROR_SECONDS`; written before the API refused such
    /// times). It cannot be mirrored faithfully, so repair leaves it and it
    /// stays reported until an operator corrects its time in Postgres.
    OutOfRange,
}

impl DriftKind {
    pub const ALL: [DriftKind; 5] = [
        DriftKind::Missing,
        DriftKind::Stale,
        DriftKind::Newer,
        DriftKind::OnlyInClickhouse,
        DriftKind::OutOfRange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DriftKind::Missing => "missing",
            DriftKind::Stale => "stale",
            DriftKind::Newer => "newer",
            DriftKind::OnlyInClickhouse => "only_in_clickhouse",
            DriftKind::OutOfRange => "out_of_range",
        }
    }
}

/// Drifted rows by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCounts {
    pub missing: u64,
    pub stale: u64,
    pub newer: u64,
    pub only_in_clickhouse: u64,
    /// Missing from reports written before the kind existed.
    #[serde(default)]
    pub out_of_range: u64,
}

impl DriftCounts {
    pub fn total(&self) -> u64 {
        self.missing + self.stale + self.newer + self.only_in_clickhouse + self.out_of_range
    }

    pub fn get(&self, kind: DriftKind) -> u64 {
        match kind {
            DriftKind::Missing => self.missing,
            DriftKind::Stale => self.stale,
            DriftKind::Newer => self.newer,
            DriftKind::OnlyInClickhouse => self.only_in_clickhouse,
            DriftKind::OutOfRange => self.out_of_range,
        }
    }

    pub fn add(&mut self, kind: DriftKind, rows: u64) {
        match kind {
            DriftKind::Missing => self.missing += rows,
            DriftKind::Stale => self.stale += rows,
            DriftKind::Newer => self.newer += rows,
            DriftKind::OnlyInClickhouse => self.only_in_clickhouse += rows,
            DriftKind::OutOfRange => self.out_of_range += rows,
        }
    }

    /// Takes `rows` back from `kind` (rows the audit later found to be of
    /// another kind); never below zero.
    pub fn remove(&mut self, kind: DriftKind, rows: u64) {
        let field = match kind {
            DriftKind::Missing => &mut self.missing,
            DriftKind::Stale => &mut self.stale,
            DriftKind::Newer => &mut self.newer,
            DriftKind::OnlyInClickhouse => &mut self.only_in_clickhouse,
            DriftKind::OutOfRange => &mut self.out_of_range,
        };
        *field = field.saturating_sub(rows);
    }

    pub fn merge(&mut self, other: &DriftCounts) {
        for kind in DriftKind::ALL {
            self.add(kind, other.get(kind));
        }
    }
}

/// `[start, end)` of the bucket time, whole seconds (sub-seconds are cut:
/// ClickHouse keeps whole seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What an audit covers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditScope {
    /// `None`: every customer (admin only), audited one after another.
    pub customer_id: Option<CustomerId>,
    /// `None`: all time.
    pub window: Option<AuditWindow>,
}

impl AuditScope {
    /// The window as whole seconds `[start, end)`, clamped to what
    /// ClickHouse's `DateTime` holds; all of it when there is no window.
    /// Rows outside that range are audited apart (`DriftKind::OutOfRange`).
    pub fn seconds(&self) -> (i64, i64) {
        let (min, max) = (*MIRROR_SECONDS.start(), *MIRROR_SECONDS.end());
        match self.window {
            Some(w) => (w.start.timestamp().clamp(min, max), w.end.timestamp().clamp(min, max)),
            None => (min, max),
        }
    }

    /// The window as whole seconds `[start, end)`, unclamped: where the
    /// audit looks for rows outside the mirror's range. All time when
    /// there is no window.
    pub fn unclamped_seconds(&self) -> (i64, i64) {
        match self.window {
            Some(w) => (w.start.timestamp(), w.end.timestamp()),
            None => (i64::MIN, i64::MAX),
        }
    }
}

/// The whole of one table that an audit covers: one customer or all of
/// them, bucket time in `[start_seconds, end_seconds)`. Both engines
/// summarise it by customer and hour in one query each
/// (`Store::audit_hours`, `Analytics::audit_hours`): a table is read once
/// per audit, not once per customer, and a drifted day's hours are known
/// without asking again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditSpan {
    pub table: AuditTable,
    /// `None`: every customer.
    pub customer_id: Option<CustomerId>,
    pub start_seconds: i64,
    pub end_seconds: i64,
}

/// A part of one table of one customer that both engines summarise the
/// same way: bucket time in `[start_seconds, end_seconds)` and id in
/// `[id_low, id_high]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditSlice {
    pub table: AuditTable,
    pub customer_id: CustomerId,
    pub start_seconds: i64,
    pub end_seconds: i64,
    pub id_low: i64,
    pub id_high: i64,
}

/// How one dimension (bucket time or id) of a slice is cut into buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Not cut: the whole dimension is bucket 0.
    Whole,
    /// Bucket `k` holds the values in `[base + k·step, base + (k+1)·step)`:
    /// the key is `(value - base) / step`, rounded down. `step` ≥ 1.
    Every { base: i64, step: i64 },
}

impl Cut {
    /// The inclusive range of values in bucket `key`, within `[low, high]`;
    /// for [`Cut::Whole`], `[low, high]` itself.
    pub fn bucket_range(self, key: i64, low: i64, high: i64) -> (i64, i64) {
        match self {
            Cut::Whole => (low, high),
            Cut::Every { base, step } => {
                let first = base.saturating_add(key.saturating_mul(step));
                (first.max(low), first.saturating_add(step - 1).min(high))
            }
        }
    }
}

/// How a slice is cut into buckets, by bucket time and by id. Both engines
/// key a bucket by `(time key, id key)` as [`Cut`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketCut {
    pub time: Cut,
    pub id: Cut,
}

impl BucketCut {
    /// By hour of bucket time, ids uncut: the one scan of a whole table.
    pub const HOURS: BucketCut =
        BucketCut { time: Cut::Every { base: 0, step: HOUR_SECONDS }, id: Cut::Whole };

    /// By id, in steps of `step` from `base`, time uncut: how a drifted
    /// slice is narrowed down.
    pub fn ids(base: i64, step: i64) -> BucketCut {
        BucketCut { time: Cut::Whole, id: Cut::Every { base, step: step.max(1) } }
    }
}

/// Count and checksum of the live rows of one bucket, as one engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketSum {
    pub customer_id: CustomerId,
    pub time_bucket: i64,
    pub id_bucket: i64,
    pub rows: u64,
    /// Sum of [`row_hash`] over the bucket's live rows.
    pub checksum: i64,
    pub min_id: i64,
    pub max_id: i64,
}

/// A row as the audit compares it: id, mirrored version, tombstone or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub version: i64,
    pub is_deleted: bool,
}

/// The prime modulus of the row hash: below 2^31, so the product of two
/// residues stays below 2^62 and fits a signed 64-bit integer in both
/// engines (Postgres raises on bigint overflow, ClickHouse wraps silently).
pub const HASH_PRIME: i64 = 2_147_483_647;

/// The per-row hash both engines compute in SQL (`store::audit` and
/// `sql/queries/audit_buckets.sql` spell out the same formula):
/// `x = (a·48271 + b) mod p`, `y = (a·69621 + b·39373 + 12345) mod p`,
/// `h = x·y mod p`, with `a = id mod p`, `b = version mod p`. Summed over a
/// bucket (below 2^31 per row, so 2^32 rows fit an Int64) it is independent
/// of row order. The product of two different affine forms makes it
/// non-linear, so two rows' changes rarely cancel out; with the row count
/// beside it, a change slips through with a chance of about 1/p per bucket.
pub fn row_hash(id: i64, version: i64) -> i64 {
    let p = HASH_PRIME;
    let (a, b) = (id.rem_euclid(p), version.rem_euclid(p));
    let x = (a * 48_271 + b) % p;
    let y = (a * 69_621 + b * 39_373 + 12_345) % p;
    x * y % p
}

/// One drifted row, named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftedRow {
    pub table: AuditTable,
    pub customer_id: CustomerId,
    pub id: i64,
    pub kind: DriftKind,
    /// The mirrored version in Postgres (`None`: no such row).
    pub postgres_version: Option<i64>,
    /// The latest version in ClickHouse (`None`: no such row).
    pub clickhouse_version: Option<i64>,
    /// The start of the UTC day the row's bucket time lies in (`None`: a
    /// time ClickHouse cannot hold, and reports written before this field).
    #[serde(default)]
    pub day: Option<DateTime<Utc>>,
}

/// A top-level (day) bucket of one table and customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketReport {
    pub table: AuditTable,
    pub customer_id: CustomerId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Live rows in Postgres.
    pub rows_checked: u64,
    /// Live rows in ClickHouse.
    pub clickhouse_rows: u64,
    pub drift: DriftCounts,
    /// Time spent narrowing this bucket down (0 when its checksum matched:
    /// the checksums of all buckets come from one query per table).
    pub elapsed_ms: u64,
}

/// One table, all buckets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    pub table: AuditTable,
    pub rows_checked: u64,
    pub buckets: u64,
    pub drifted_buckets: u64,
    pub drift: DriftCounts,
    pub elapsed_ms: u64,
}

/// Most rows named in a report; the counts stay exact beyond it.
pub const MAX_NAMED_ROWS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub scope: AuditScope,
    pub started_at: DateTime<Utc>,
    pub elapsed_ms: u64,
    /// Conversations, scorecards, scores (summed over customers).
    pub tables: Vec<TableReport>,
    /// Every day bucket with rows on either side, by table, customer, time.
    pub buckets: Vec<BucketReport>,
    /// Drifted rows by table and id, at most [`MAX_NAMED_ROWS`].
    pub rows: Vec<DriftedRow>,
    /// More rows drifted than are named in `rows`.
    pub rows_truncated: bool,
}

impl AuditReport {
    /// Drifted rows over all tables.
    pub fn drifted(&self) -> u64 {
        self.tables.iter().map(|t| t.drift.total()).sum()
    }

    pub fn table(&self, table: AuditTable) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == table)
    }
}

/// What a repair did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Reindex jobs queued (their ids), for the missing and stale rows.
    pub jobs: Vec<String>,
    /// Tombstones written for rows gone from Postgres.
    pub tombstones: u64,
    /// Postgres rows whose version was bumped because ClickHouse held a
    /// newer one (so the reindex wins).
    pub versions_bumped: u64,
}

/// The payload of a `JOB_TYPE_AUDIT` job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditSpec {
    pub scope: AuditScope,
    /// Queue reindex jobs and write tombstones for what drifted, wait for
    /// them, and audit again.
    pub repair: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_hash_stays_in_range_and_tells_versions_apart() {
        let big = i64::MAX;
        for (id, version) in [(1, 1), (big, big), (HASH_PRIME, HASH_PRIME - 1), (7, 0)] {
            let h = row_hash(id, version);
            assert!((0..HASH_PRIME).contains(&h), "{id} {version} -> {h}");
        }
        assert_ne!(row_hash(10, 5), row_hash(10, 6));
        assert_ne!(row_hash(10, 5) + row_hash(11, 6), row_hash(10, 6) + row_hash(11, 5), "swaps show");
    }

    #[test]
    fn counts_add_up_by_kind() {
        let mut counts = DriftCounts::default();
        counts.add(DriftKind::Missing, 3);
        counts.add(DriftKind::OnlyInClickhouse, 1);
        let mut total = DriftCounts { stale: 2, ..DriftCounts::default() };
        total.merge(&counts);
        counts.add(DriftKind::OutOfRange, 0);
        assert_eq!(
            total,
            DriftCounts { missing: 3, stale: 2, newer: 0, only_in_clickhouse: 1, out_of_range: 0 }
        );
        total.add(DriftKind::OutOfRange, 2);
        assert_eq!(total.total(), 8);
        total.remove(DriftKind::Missing, 1);
        total.remove(DriftKind::Newer, 1);
        assert_eq!((total.missing, total.newer, total.total()), (2, 0, 7));
    }

    #[test]
    fn a_bucket_range_is_its_step_clipped_to_the_slice() {
        let cut = BucketCut::ids(100, 10);
        assert_eq!(cut.id.bucket_range(0, 100, 125), (100, 109));
        assert_eq!(cut.id.bucket_range(2, 100, 125), (120, 125));
        assert_eq!(cut.time.bucket_range(0, 5, 9), (5, 9));
        assert_eq!(BucketCut::ids(0, 0).id, Cut::Every { base: 0, step: 1 });
    }

    #[test]
    fn the_window_is_whole_seconds_within_clickhouse_range() {
        let scope = AuditScope::default();
        assert_eq!(scope.seconds(), (0, i64::from(u32::MAX)));
        let start = DateTime::from_timestamp(1_000, 500_000_000).unwrap();
        let end = DateTime::from_timestamp(2_000, 0).unwrap();
        let scope = AuditScope { customer_id: None, window: Some(AuditWindow { start, end }) };
        assert_eq!(scope.seconds(), (1_000, 2_000));
    }
}
