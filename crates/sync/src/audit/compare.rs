//! Pure comparison: bucket sums side by side, and one row's drift kind from
//! what each side holds.

use std::collections::BTreeMap;

use scorekeeper_domain::CustomerId;
use scorekeeper_domain::audit::{AuditRow, BucketSum, DriftKind};

/// A bucket as both sides see it (`None`: no live rows on that side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub customer_id: CustomerId,
    /// (time bucket, id bucket).
    pub key: (i64, i64),
    pub postgres: Option<BucketSum>,
    pub clickhouse: Option<BucketSum>,
}

impl Pair {
    pub fn postgres_rows(&self) -> u64 {
        self.postgres.map_or(0, |b| b.rows)
    }

    pub fn clickhouse_rows(&self) -> u64 {
        self.clickhouse.map_or(0, |b| b.rows)
    }

    /// Same count and checksum (or no live rows on either side).
    pub fn in_sync(&self) -> bool {
        let sum = |b: Option<BucketSum>| b.map_or((0, 0), |b| (b.rows, b.checksum));
        sum(self.postgres) == sum(self.clickhouse)
    }

    /// This bucket and `other` (of the same customer) as one: counts and
    /// checksums add, id bounds widen. Sums hours into their day.
    pub fn absorb(&mut self, other: &Pair) {
        fn add(into: &mut Option<BucketSum>, from: Option<BucketSum>) {
            *into = match (*into, from) {
                (Some(a), Some(b)) => Some(BucketSum {
                    rows: a.rows + b.rows,
                    checksum: a.checksum + b.checksum,
                    min_id: a.min_id.min(b.min_id),
                    max_id: a.max_id.max(b.max_id),
                    ..a
                }),
                (a, b) => a.or(b),
            };
        }
        add(&mut self.postgres, other.postgres);
        add(&mut self.clickhouse, other.clickhouse);
    }

    /// Smallest and largest live id on either side.
    pub fn id_range(&self) -> Option<(i64, i64)> {
        let sides = [self.postgres, self.clickhouse];
        let low = sides.iter().flatten().map(|b| b.min_id).min()?;
        let high = sides.iter().flatten().map(|b| b.max_id).max()?;
        Some((low, high))
    }
}

/// Buckets of both sides by (customer, time bucket, id bucket), in that
/// order.
pub fn pair_up(postgres: Vec<BucketSum>, clickhouse: Vec<BucketSum>) -> Vec<Pair> {
    let mut pairs: BTreeMap<(i64, i64, i64), Pair> = BTreeMap::new();
    for (b, in_postgres) in
        postgres.into_iter().map(|b| (b, true)).chain(clickhouse.into_iter().map(|b| (b, false)))
    {
        let pair = pairs.entry((b.customer_id.0, b.time_bucket, b.id_bucket)).or_insert(Pair {
            customer_id: b.customer_id,
            key: (b.time_bucket, b.id_bucket),
            postgres: None,
            clickhouse: None,
        });
        if in_postgres {
            pair.postgres = Some(b);
        } else {
            pair.clickhouse = Some(b);
        }
    }
    pairs.into_values().collect()
}

/// The drift of one row, from its Postgres row and ClickHouse's latest
/// (`None`: that side has no such row). Only what readers see counts: a
/// deleted row and a tombstone agree, and so do a deleted row and no row.
pub fn classify(postgres: Option<AuditRow>, clickhouse: Option<AuditRow>) -> Option<DriftKind> {
    match (postgres, clickhouse) {
        (None, None) => None,
        (None, Some(c)) => (!c.is_deleted).then_some(DriftKind::OnlyInClickhouse),
        (Some(p), None) => (!p.is_deleted).then_some(DriftKind::Missing),
        (Some(p), Some(c)) if p.is_deleted && c.is_deleted => None,
        (Some(p), Some(c)) if p.version == c.version && p.is_deleted == c.is_deleted => None,
        (Some(p), Some(c)) if c.version > p.version => Some(DriftKind::Newer),
        // Older in ClickHouse, or the same version told apart by deletion
        // (which no path writes: the delete draws a new version).
        _ => Some(DriftKind::Stale),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i64, is_deleted: bool) -> Option<AuditRow> {
        Some(AuditRow { id: 1, version, is_deleted })
    }

    #[test]
    fn each_pair_of_states_has_one_kind() {
        use DriftKind::*;
        assert_eq!(classify(row(5, false), row(5, false)), None);
        assert_eq!(classify(row(5, false), None), Some(Missing));
        assert_eq!(classify(row(5, false), row(4, false)), Some(Stale));
        assert_eq!(classify(row(5, false), row(6, false)), Some(Newer));
        assert_eq!(classify(row(5, false), row(4, true)), Some(Stale), "an old tombstone of a live row");
        assert_eq!(classify(row(5, false), row(6, true)), Some(Newer), "a tombstone Postgres never made");
        assert_eq!(classify(row(5, true), row(4, false)), Some(Stale), "the delete did not arrive");
        assert_eq!(classify(row(5, true), row(5, true)), None);
        assert_eq!(
            classify(row(5, true), row(3, true)),
            None,
            "an older tombstone hides the row all the same"
        );
        assert_eq!(classify(row(5, true), None), None, "a deleted row never mirrored needs nothing");
        assert_eq!(classify(None, row(4, false)), Some(OnlyInClickhouse));
        assert_eq!(classify(None, row(4, true)), None, "the tombstone of a hard delete is in sync");
    }

    #[test]
    fn buckets_pair_up_by_key() {
        let sum = |t, rows, checksum| BucketSum {
            customer_id: CustomerId(1),
            time_bucket: t,
            id_bucket: 0,
            rows,
            checksum,
            min_id: t * 10,
            max_id: t * 10 + 5,
        };
        let pairs = pair_up(vec![sum(1, 3, 9), sum(2, 1, 1)], vec![sum(2, 1, 1), sum(3, 1, 4)]);
        assert_eq!(pairs.len(), 3);
        assert!(!pairs[0].in_sync() && pairs[1].in_sync() && !pairs[2].in_sync());
        assert_eq!(pairs[0].clickhouse_rows(), 0);
        assert_eq!(pairs[2].id_range(), Some((30, 35)));

        // Another customer's bucket of the same time is its own pair.
        let other = BucketSum { customer_id: CustomerId(2), ..sum(2, 1, 1) };
        let pairs = pair_up(vec![sum(2, 1, 1), other], vec![sum(2, 1, 1)]);
        assert_eq!(pairs.len(), 2);
        assert!(pairs[0].in_sync() && !pairs[1].in_sync());
        assert_eq!(pairs[1].customer_id, CustomerId(2));
    }

    #[test]
    fn hours_add_up_to_their_day() {
        let sum = |t, rows, checksum, min_id, max_id| BucketSum {
            customer_id: CustomerId(1),
            time_bucket: t,
            id_bucket: 0,
            rows,
            checksum,
            min_id,
            max_id,
        };
        let hours = pair_up(vec![sum(0, 2, 10, 5, 9), sum(1, 1, 4, 20, 20)], vec![sum(1, 1, 4, 20, 20)]);
        let mut day = Pair { key: (0, 0), ..hours[0] };
        day.absorb(&hours[1]);
        assert_eq!(day.postgres_rows(), 3);
        assert_eq!(day.postgres.unwrap().checksum, 14);
        assert_eq!(day.clickhouse_rows(), 1);
        assert_eq!(day.id_range(), Some((5, 20)));
        assert!(!day.in_sync());
        let mut synced = hours[1];
        synced.absorb(&Pair { postgres: None, clickhouse: None, ..hours[1] });
        assert!(synced.in_sync());
    }
}
