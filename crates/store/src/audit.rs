//! The Postgres side of the drift audit: per bucket, the count and checksum
//! of the live rows as ClickHouse mirrors them (`domain::audit::row_hash`,
//! here in SQL), the rows of a slice, and what a repair needs (which
//! conversation or process window a drifted row belongs to, version bumps,
//! fresh versions for tombstones).
//!
//! A score row's mirrored version is `GREATEST(score, scorecard)` and it is
//! deleted when either is, and its bucket time is its scorecard's
//! `created_at`, so every score query joins its scorecard. Over the whole
//! scope Postgres hashes the scorecards once for all customers
//! ([`Store::audit_hours`]: one scan of `scores` per audit, since `scores`
//! has no index by customer); a narrower slice finds its scorecards by
//! `(customer_id, created_at)` and its scores by id range (measured in
//! docs/operations.md).

use chrono::{DateTime, Utc};
use scorekeeper_domain::audit::{
    AuditRow, AuditSlice, AuditSpan, AuditTable, BucketCut, BucketSum, Cut, HASH_PRIME,
};
use scorekeeper_domain::time::{MIRROR_SECONDS, utc_at_second};
use scorekeeper_domain::{ConversationId, CustomerId, TemplateType};

use crate::Store;
use crate::codec;
use crate::error::Result;

/// Memory of the bucket queries' hash join (per process, times
/// `hash_mem_multiplier`): 4M scorecards hash into about 190 MB.
const BUCKETS_WORK_MEM: &str = "128MB";

/// Session settings of the narrower queries (a drifted day's slices and
/// rows): they read a few thousand rows by index, and their cost estimate
/// still passes `jit_above_cost`, so each would spend longer compiling
/// than running. The whole-scope query keeps JIT, which pays there.
const NARROW_SETTINGS: &str = "SET LOCAL jit = off";

/// How one mirrored table reads in SQL.
struct TableSql {
    from: &'static str,
    id: &'static str,
    customer: &'static str,
    /// The filter of one customer, `$1`: for scores on both tables, so
    /// that the scorecards of a slice come from `scorecards_customer_created`.
    one_customer: &'static str,
    time: &'static str,
    version: &'static str,
    deleted: &'static str,
    live: &'static str,
}

fn table_sql(table: AuditTable) -> TableSql {
    match table {
        AuditTable::Conversations => TableSql {
            from: "conversations",
            id: "id",
            customer: "customer_id",
            one_customer: "customer_id = $1",
            time: "started_at",
            version: "version",
            deleted: "deleted_at IS NOT NULL",
            live: "deleted_at IS NULL",
        },
        AuditTable::Scorecards => TableSql {
            from: "scorecards",
            id: "id",
            customer: "customer_id",
            one_customer: "customer_id = $1",
            time: "created_at",
            version: "version",
            deleted: "deleted_at IS NOT NULL",
            live: "deleted_at IS NULL",
        },
        AuditTable::Scores => TableSql {
            from: "scores s JOIN scorecards c ON c.id = s.scorecard_id",
            id: "s.id",
            customer: "s.customer_id",
            one_customer: "s.customer_id = $1 AND c.customer_id = $1",
            time: "c.created_at",
            version: "GREATEST(s.version, c.version)",
            deleted: "(s.deleted_at IS NOT NULL OR c.deleted_at IS NOT NULL)",
            live: "s.deleted_at IS NULL AND c.deleted_at IS NULL",
        },
    }
}

/// `domain::audit::row_hash` in SQL, on bigints: every intermediate value
/// stays below 2^62.
fn row_hash(id: &str, version: &str) -> String {
    let p = HASH_PRIME;
    format!(
        "(((({id} % {p}) * 48271 + ({version} % {p})) % {p}) \
         * ((({id} % {p}) * 69621 + ({version} % {p}) * 39373 + 12345) % {p}) % {p})"
    )
}

/// Seconds since the epoch as ClickHouse stores a `DateTime`: cut to whole
/// seconds, clamped to its range (`MIRROR_SECONDS`; rows outside it are
/// found by [`Store::audit_unmirrorable`], not bucketed here).
fn seconds(time: &str) -> String {
    let (low, high) = (MIRROR_SECONDS.start(), MIRROR_SECONDS.end());
    format!("LEAST(GREATEST(floor(date_part('epoch', {time}))::bigint, {low}), {high})")
}

/// The `WHERE` of a slice: `$1` customer, `$2`/`$3` time, `$4`/`$5` ids.
fn slice_filter(t: &TableSql) -> String {
    format!(
        "{customer} AND {time} >= $2 AND {time} < $3 AND {id} BETWEEN $4 AND $5",
        customer = t.one_customer,
        time = t.time,
        id = t.id
    )
}

/// `SELECT customer, time bucket, id bucket, count, checksum, min id, max
/// id` of the live rows matching `filter`, grouped, named as `bucket_sum`
/// reads them.
fn buckets_sql(t: &TableSql, filter: &str, cut: &BucketCut) -> String {
    // The steps are written into the text, not bound: the day and hour
    // buckets must read exactly as the statistics of migrations V6 and V7
    // so that Postgres expects few groups (and aggregates in parallel); an
    // uncut dimension is the constant 0 for the same reason.
    let time_bucket = match cut.time {
        Cut::Whole => "0::bigint".to_owned(),
        Cut::Every { base: 0, step } => format!("{} / {step}", seconds(t.time)),
        Cut::Every { base, step } => format!("({} - {base}) / {step}", seconds(t.time)),
    };
    let id_bucket = match cut.id {
        Cut::Whole => "0".to_owned(),
        Cut::Every { base, step } => format!("({} - {base}) / {step}", t.id),
    };
    format!(
        "SELECT {customer} AS customer_id, {time_bucket} AS time_bucket, {id_bucket}::bigint AS id_bucket,
                count(*) AS live_rows, sum({hash})::bigint AS checksum, min({id}) AS min_id, max({id}) AS max_id
         FROM {from} WHERE {filter} AND {live} GROUP BY 1, 2, 3",
        customer = t.customer,
        id = t.id,
        hash = row_hash(t.id, t.version),
        from = t.from,
        live = t.live,
    )
}

fn bucket_sum(r: &tokio_postgres::Row) -> Result<BucketSum> {
    Ok(BucketSum {
        customer_id: CustomerId(r.try_get("customer_id")?),
        time_bucket: r.try_get("time_bucket")?,
        id_bucket: r.try_get("id_bucket")?,
        rows: r.try_get::<_, i64>("live_rows")? as u64,
        checksum: r.try_get("checksum")?,
        min_id: r.try_get("min_id")?,
        max_id: r.try_get("max_id")?,
    })
}

/// A table's id, mirrored version and deletion, named as `audit_row` reads
/// them.
fn audit_row_columns(t: &TableSql) -> String {
    format!("{} AS id, {} AS version, {} AS is_deleted", t.id, t.version, t.deleted)
}

fn audit_row(row: &tokio_postgres::Row) -> Result<AuditRow> {
    Ok(AuditRow {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        is_deleted: row.try_get("is_deleted")?,
    })
}

/// Where a drifted scorecard (or a score, by its scorecard) is repaired
/// from: its conversation, or for a process scorecard its creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScorecardPlace {
    /// The scorecard's id, or the score's id for scores.
    pub id: i64,
    pub template_type: TemplateType,
    pub conversation_id: Option<ConversationId>,
    pub created_at: DateTime<Utc>,
}

/// A live row with a mirrored time that ClickHouse's `DateTime` cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRangeRow {
    pub customer_id: CustomerId,
    pub id: i64,
    /// Its mirrored version.
    pub version: i64,
    /// Its bucket time (conversation start, scorecard creation).
    pub bucket_time: DateTime<Utc>,
    /// Its bucket time itself lies outside the range, so no bucket of the
    /// audit's walk counted it.
    pub bucket_outside: bool,
}

/// `column` lies within `MIRROR_SECONDS`: `$1` its first instant, `$2` the
/// first instant after it.
fn in_mirror_range(column: &str) -> String {
    format!("({column} >= $1 AND {column} < $2)")
}

/// Any of `columns` lies outside `MIRROR_SECONDS` (`$1`, `$2` as above),
/// written as ranges an index on the column can serve.
fn outside_mirror_range(columns: &[&str]) -> String {
    let each: Vec<String> = columns.iter().map(|c| format!("{c} < $1 OR {c} >= $2")).collect();
    format!("({})", each.join(" OR "))
}

/// The live rows' filter of [`Store::audit_out_of_range`]: a mirrored time
/// of the row outside the range. Scores go by id: the ids of the few
/// scorecards out of range joined to their scores, and the scores whose
/// own time is (by `scores_updated`), so that `scores` is never scanned
/// whole (3.05 s → 0.30 s on 4M scores, docs/operations.md).
fn out_of_range_filter(table: AuditTable) -> String {
    match table {
        AuditTable::Conversations => outside_mirror_range(&["started_at", "ended_at", "updated_at"]),
        AuditTable::Scorecards => outside_mirror_range(&["created_at", "updated_at"]),
        AuditTable::Scores => format!(
            "s.id IN (SELECT o.id FROM scorecards oc JOIN scores o ON o.scorecard_id = oc.id WHERE {}
                      UNION ALL SELECT id FROM scores WHERE {})",
            outside_mirror_range(&["oc.created_at"]),
            outside_mirror_range(&["updated_at"])
        ),
    }
}

impl Store {
    /// The live rows of `table` whose bucket time lies in `[start, end)`
    /// (`None`: unbounded) and any of whose mirrored times ClickHouse's
    /// `DateTime` cannot hold (`domain::time::MIRROR_SECONDS`): rows the
    /// mirror cannot hold faithfully, which the API refuses today but
    /// earlier versions (or hand edits) wrote. One scan of the table.
    pub async fn audit_out_of_range(
        &self,
        table: AuditTable,
        customer: Option<CustomerId>,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Vec<OutOfRangeRow>> {
        let t = table_sql(table);
        let one_customer = t.one_customer.replace("$1", "$3");
        let sql = format!(
            "SELECT {customer} AS customer_id, {id} AS id, {version} AS version, {time} AS bucket_time,
                    NOT {bucket_inside} AS bucket_outside
             FROM {from}
             WHERE ($3::bigint IS NULL OR ({one_customer}))
               AND ($4::timestamptz IS NULL OR {time} >= $4) AND ($5::timestamptz IS NULL OR {time} < $5)
               AND {live} AND {outside}
             ORDER BY 1, 2",
            customer = t.customer,
            id = t.id,
            version = t.version,
            from = t.from,
            time = t.time,
            live = t.live,
            bucket_inside = in_mirror_range(t.time),
            outside = out_of_range_filter(table),
        );
        let (low, high) = (utc_at_second(*MIRROR_SECONDS.start()), utc_at_second(*MIRROR_SECONDS.end() + 1));
        let client = self.pool().get().await?;
        let rows = client.query(&sql, &[&low, &high, &customer.map(|c| c.0), &start, &end]).await?;
        rows.iter()
            .map(|r| {
                Ok(OutOfRangeRow {
                    customer_id: CustomerId(r.try_get("customer_id")?),
                    id: r.try_get("id")?,
                    version: r.try_get("version")?,
                    bucket_time: r.try_get("bucket_time")?,
                    bucket_outside: r.try_get("bucket_outside")?,
                })
            })
            .collect()
    }

    /// Count and checksum of the span's live rows by customer and hour: the
    /// one query per table and audit that reads the whole scope. Hours
    /// without live rows are left out.
    pub async fn audit_hours(&self, span: &AuditSpan) -> Result<Vec<BucketSum>> {
        let t = table_sql(span.table);
        let customer = if span.customer_id.is_some() { t.one_customer } else { "$1::bigint IS NULL" };
        let filter = format!("{customer} AND {time} >= $2 AND {time} < $3", time = t.time);
        let sql = buckets_sql(&t, &filter, &BucketCut::HOURS);
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Scores join their scorecards: with the default work_mem the hash
        // of a big customer's scorecards spills into batches on disk.
        tx.batch_execute(&format!("SET LOCAL work_mem = '{BUCKETS_WORK_MEM}'")).await?;
        let customer = span.customer_id.map(|c| c.0);
        let rows = tx
            .query(&sql, &[&customer, &utc_at_second(span.start_seconds), &utc_at_second(span.end_seconds)])
            .await?;
        tx.commit().await?;
        rows.iter().map(bucket_sum).collect()
    }

    /// Count and checksum of the slice's live rows, cut into buckets by
    /// `cut`. Buckets without live rows are left out.
    pub async fn audit_buckets(&self, slice: &AuditSlice, cut: &BucketCut) -> Result<Vec<BucketSum>> {
        let t = table_sql(slice.table);
        let rows = self.query_slice(&buckets_sql(&t, &slice_filter(&t), cut), slice).await?;
        rows.iter().map(bucket_sum).collect()
    }

    /// Every row of the slice, deleted ones too, with its mirrored version.
    pub async fn audit_rows(&self, slice: &AuditSlice) -> Result<Vec<AuditRow>> {
        let t = table_sql(slice.table);
        let sql = format!(
            "SELECT {columns} FROM {from} WHERE {filter}",
            columns = audit_row_columns(&t),
            from = t.from,
            filter = slice_filter(&t),
        );
        let rows = self.query_slice(&sql, slice).await?;
        rows.iter().map(audit_row).collect()
    }

    /// Runs `sql`, filtered by [`slice_filter`], on the slice's parameters
    /// with the narrow-slice settings.
    async fn query_slice(&self, sql: &str, slice: &AuditSlice) -> Result<Vec<tokio_postgres::Row>> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(NARROW_SETTINGS).await?;
        let (start, end) = (utc_at_second(slice.start_seconds), utc_at_second(slice.end_seconds));
        let rows =
            tx.query(sql, &[&slice.customer_id.0, &start, &end, &slice.id_low, &slice.id_high]).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The customer's rows of `table` with these ids, whatever their time.
    pub async fn audit_rows_by_id(
        &self,
        table: AuditTable,
        customer: CustomerId,
        ids: &[i64],
    ) -> Result<Vec<AuditRow>> {
        let t = table_sql(table);
        let sql = format!(
            "SELECT {columns} FROM {from} WHERE {customer} = $1 AND {id} = ANY($2)",
            columns = audit_row_columns(&t),
            id = t.id,
            from = t.from,
            customer = t.customer,
        );
        let client = self.pool().get().await?;
        let rows = client.query(&sql, &[&customer.0, &ids]).await?;
        rows.iter().map(audit_row).collect()
    }

    /// For scorecards (or scores) by id: their kind, conversation and
    /// creation time, which decide the reindex that repairs them.
    pub async fn audit_scorecard_places(
        &self,
        table: AuditTable,
        customer: CustomerId,
        ids: &[i64],
    ) -> Result<Vec<ScorecardPlace>> {
        let sql = match table {
            AuditTable::Scores => {
                "SELECT s.id AS id, c.template_type, c.conversation_id, c.created_at
                 FROM scores s JOIN scorecards c ON c.id = s.scorecard_id
                 WHERE s.customer_id = $1 AND s.id = ANY($2)"
            }
            _ => {
                "SELECT id, template_type, conversation_id, created_at FROM scorecards
                 WHERE customer_id = $1 AND id = ANY($2)"
            }
        };
        let client = self.pool().get().await?;
        let rows = client.query(sql, &[&customer.0, &ids]).await?;
        rows.iter()
            .map(|r| {
                Ok(ScorecardPlace {
                    id: r.try_get("id")?,
                    template_type: codec::template_type(r.try_get("template_type")?)?,
                    conversation_id: r.try_get::<_, Option<i64>>("conversation_id")?.map(ConversationId),
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The conversations of the customer's conversation scorecards created
    /// in `[start, end)` seconds, and whether process scorecards were
    /// created then too: what repairs a scorecard or score bucket that is
    /// missing from ClickHouse as a whole.
    pub async fn audit_scorecard_bucket(
        &self,
        customer: CustomerId,
        start_seconds: i64,
        end_seconds: i64,
    ) -> Result<(Vec<ConversationId>, bool)> {
        let client = self.pool().get().await?;
        let (start, end) = (utc_at_second(start_seconds), utc_at_second(end_seconds));
        let rows = client
            .query(
                "SELECT DISTINCT conversation_id FROM scorecards
                 WHERE customer_id = $1 AND created_at >= $2 AND created_at < $3 AND template_type = $4",
                &[&customer.0, &start, &end, &TemplateType::Conversation.number()],
            )
            .await?;
        let conversations =
            rows.iter().map(|r| Ok(ConversationId(r.try_get(0)?))).collect::<Result<Vec<_>>>()?;
        let process: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM scorecards
                 WHERE customer_id = $1 AND created_at >= $2 AND created_at < $3 AND template_type = $4)",
                &[&customer.0, &start, &end, &TemplateType::Process.number()],
            )
            .await?
            .try_get(0)?;
        Ok((conversations, process))
    }

    /// Bumps the version of these rows (the update trigger draws a new one)
    /// so that a reindex beats what ClickHouse holds. For scores, the score
    /// row itself: its mirrored version is the greater of its own and its
    /// scorecard's. Returns the rows bumped.
    pub async fn audit_bump_versions(
        &self,
        table: AuditTable,
        customer: CustomerId,
        ids: &[i64],
    ) -> Result<u64> {
        let sql =
            format!("UPDATE {} SET version = version WHERE customer_id = $1 AND id = ANY($2)", table.name());
        let client = self.pool().get().await?;
        Ok(client.execute(&sql, &[&customer.0, &ids]).await?)
    }

    /// `n` fresh versions from `mirror_version`, for tombstones of rows gone
    /// from Postgres: newer than anything any path has written.
    pub async fn next_mirror_versions(&self, n: usize) -> Result<Vec<i64>> {
        let client = self.pool().get().await?;
        let rows = client
            .query("SELECT nextval('mirror_version') FROM generate_series(1, $1::int)", &[&(n as i32)])
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_hash_is_the_domain_hash() {
        // The SQL text uses only +, *, % on the two inputs; evaluate it the
        // same way here to check the spelling matches domain::audit::row_hash.
        let sql = row_hash("ID", "V");
        assert_eq!(sql.matches("% 2147483647").count(), 7, "{sql}");
        let (id, v) = (123_456_789_012_i64, 98_765_i64);
        let p = HASH_PRIME;
        let by_sql =
            (((id % p) * 48271 + (v % p)) % p) * (((id % p) * 69621 + (v % p) * 39373 + 12345) % p) % p;
        assert_eq!(by_sql, scorekeeper_domain::audit::row_hash(id, v));
    }
}
