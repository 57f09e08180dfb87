//! The ClickHouse side of the drift audit (`sql/queries/audit_*.sql`):
//! per bucket the count and checksum of the live rows under `FINAL`, the
//! rows of a slice, rows by id, and tombstones built from what ClickHouse
//! holds for rows gone from Postgres.

use chrono::{DateTime, Utc};
use scorekeeper_domain::audit::{AuditRow, AuditSlice, AuditSpan, AuditTable, BucketCut, BucketSum, Cut};
use scorekeeper_domain::mirror::{ConversationRecord, MirrorBatch, ScoreRecord, ScorecardRecord};
use scorekeeper_domain::time::utc_at_second;
use scorekeeper_domain::{
    ConversationId, CriterionId, CustomerId, ScorecardId, ScorecardSource, TemplateId, TemplateType,
};
use serde::Deserialize;

use crate::Analytics;
use crate::error::{AnalyticsError, Result};
use crate::rows::{ConversationRow, ScoreRow, ScorecardRow};
use scorekeeper_domain::time::MIRROR_SECONDS;

/// One text for the three tables: `{table}` and `{time}` are filled in by
/// [`buckets_query`].
const BUCKETS: &str = include_str!("../sql/queries/audit_buckets.sql");
const ROWS: [&str; 3] = [
    include_str!("../sql/queries/audit_rows_conversations.sql"),
    include_str!("../sql/queries/audit_rows_scorecards.sql"),
    include_str!("../sql/queries/audit_rows_scores.sql"),
];
const BY_ID: [&str; 3] = [
    include_str!("../sql/queries/audit_by_id_conversations.sql"),
    include_str!("../sql/queries/audit_by_id_scorecards.sql"),
    include_str!("../sql/queries/audit_by_id_scores.sql"),
];

fn index(table: AuditTable) -> usize {
    match table {
        AuditTable::Conversations => 0,
        AuditTable::Scorecards => 1,
        AuditTable::Scores => 2,
    }
}

/// The bucket query of `table`: its name and its bucket time column.
fn buckets_query(table: AuditTable) -> String {
    let (name, time) = match table {
        AuditTable::Conversations => ("conversations", "started_at"),
        AuditTable::Scorecards => ("scorecards", "created_at"),
        AuditTable::Scores => ("scores", "scorecard_created_at"),
    };
    crate::schema::query_text(BUCKETS).replace("{table}", name).replace("{time}", time)
}

/// The query text without its comment lines: the clickhouse crate would
/// take a `?` in a comment for a placeholder.

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BucketSumRow {
    customer_id: i64,
    time_bucket: i64,
    id_bucket: i64,
    live_rows: u64,
    checksum: i64,
    min_id: i64,
    max_id: i64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct AuditRowRow {
    id: i64,
    version: u64,
    is_deleted: u8,
}

/// Versions are `UInt64` in ClickHouse and come from a Postgres bigint.
fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn time(seconds: u32) -> DateTime<Utc> {
    utc_at_second(i64::from(seconds))
}

/// A step wider than any time in seconds or id (both below 2^62 and not
/// negative): the `(base, step)` parameters that make a dimension one
/// bucket, key 0, in the bucket queries.
const WHOLE_STEP: i64 = 1 << 62;

/// The `(base, step)` parameters of one dimension's cut.
fn cut_parameters(cut: Cut) -> (i64, i64) {
    match cut {
        Cut::Whole => (0, WHOLE_STEP),
        Cut::Every { base, step } => (base, step),
    }
}

/// Inclusive customer and id ranges and `[start, end)` seconds of a bucket
/// query.
struct Bounds {
    customers: (i64, i64),
    seconds: (i64, i64),
    ids: (i64, i64),
}

/// Seconds as the `toDateTime(?)` parameters take them: a bound, clamped
/// to what `DateTime` holds (the mirror has no row outside it).
fn seconds(value: i64) -> u32 {
    value.clamp(*MIRROR_SECONDS.start(), *MIRROR_SECONDS.end()) as u32
}

impl Analytics {
    /// Count and checksum of the span's live rows (latest version, not a
    /// tombstone) by customer and hour: the one query per table and audit
    /// that reads the whole scope. Hours without live rows are left out.
    pub async fn audit_hours(&self, span: &AuditSpan) -> Result<Vec<BucketSum>> {
        let (low, high) = span.customer_id.map_or((i64::MIN, i64::MAX), |c| (c.0, c.0));
        let bounds = Bounds {
            customers: (low, high),
            seconds: (span.start_seconds, span.end_seconds),
            ids: (i64::MIN, i64::MAX),
        };
        self.buckets(span.table, &bounds, &BucketCut::HOURS).await
    }

    /// Count and checksum of the slice's live rows (latest version, not a
    /// tombstone), cut into buckets by `cut`. Buckets without live rows are
    /// left out.
    pub async fn audit_buckets(&self, slice: &AuditSlice, cut: &BucketCut) -> Result<Vec<BucketSum>> {
        let bounds = Bounds {
            customers: (slice.customer_id.0, slice.customer_id.0),
            seconds: (slice.start_seconds, slice.end_seconds),
            ids: (slice.id_low, slice.id_high),
        };
        self.buckets(slice.table, &bounds, cut).await
    }

    async fn buckets(&self, table: AuditTable, bounds: &Bounds, cut: &BucketCut) -> Result<Vec<BucketSum>> {
        let ((time_base, time_step), (id_base, id_step)) = (cut_parameters(cut.time), cut_parameters(cut.id));
        let rows: Vec<BucketSumRow> = self
            .client()
            .query(&buckets_query(table))
            .bind(time_base)
            .bind(time_step)
            .bind(id_base)
            .bind(id_step)
            .bind(bounds.customers.0)
            .bind(bounds.customers.1)
            .bind(seconds(bounds.seconds.0))
            .bind(seconds(bounds.seconds.1))
            .bind(bounds.ids.0)
            .bind(bounds.ids.1)
            .fetch_all()
            .await
            .map_err(AnalyticsError::from_query)?;
        Ok(rows
            .into_iter()
            .map(|r| BucketSum {
                customer_id: CustomerId(r.customer_id),
                time_bucket: r.time_bucket,
                id_bucket: r.id_bucket,
                rows: r.live_rows,
                checksum: r.checksum,
                min_id: r.min_id,
                max_id: r.max_id,
            })
            .collect())
    }

    /// Every row of the slice at its latest version, tombstones too.
    pub async fn audit_rows(&self, slice: &AuditSlice) -> Result<Vec<AuditRow>> {
        let rows: Vec<AuditRowRow> = self
            .client()
            .query(&crate::schema::query_text(ROWS[index(slice.table)]))
            .bind(slice.customer_id.0)
            .bind(seconds(slice.start_seconds))
            .bind(seconds(slice.end_seconds))
            .bind(slice.id_low)
            .bind(slice.id_high)
            .fetch_all()
            .await
            .map_err(AnalyticsError::from_query)?;
        Ok(rows
            .into_iter()
            .map(|r| AuditRow { id: r.id, version: version(r.version), is_deleted: r.is_deleted != 0 })
            .collect())
    }

    /// The customer's rows of `table` with these ids, at their latest
    /// version, whatever their time.
    pub async fn audit_rows_by_id(
        &self,
        table: AuditTable,
        customer: CustomerId,
        ids: &[i64],
    ) -> Result<Vec<AuditRow>> {
        let found = self.rows_by_id(table, customer, ids).await?;
        Ok(match found {
            Found::Conversations(rows) => rows
                .iter()
                .map(|r| AuditRow { id: r.id, version: version(r.version), is_deleted: r.is_deleted != 0 })
                .collect(),
            Found::Scorecards(rows) => rows
                .iter()
                .map(|r| AuditRow { id: r.id, version: version(r.version), is_deleted: r.is_deleted != 0 })
                .collect(),
            Found::Scores(rows) => rows
                .iter()
                .map(|r| AuditRow { id: r.id, version: version(r.version), is_deleted: r.is_deleted != 0 })
                .collect(),
        })
    }

    /// Tombstones for the customer's rows of `table` with these ids: what
    /// ClickHouse holds now, with `is_deleted` set and version 0. The
    /// caller gives them fresh versions from Postgres (so they win) and
    /// writes them with [`Analytics::write`], the one insert path. Ids
    /// ClickHouse does not hold are skipped.
    pub async fn audit_tombstones(
        &self,
        table: AuditTable,
        customer: CustomerId,
        ids: &[i64],
    ) -> Result<MirrorBatch> {
        let mut batch = MirrorBatch::default();
        match self.rows_by_id(table, customer, ids).await? {
            Found::Conversations(rows) => {
                for r in rows {
                    batch.conversations.push(ConversationRecord {
                        customer_id: CustomerId(r.customer_id),
                        id: ConversationId(r.id),
                        external_id: r.external_id,
                        agent_id: r.agent_id,
                        started_at: time(r.started_at),
                        ended_at: time(r.ended_at),
                        message_count: r.message_count,
                        updated_at: Utc::now(),
                        version: 0,
                        is_deleted: true,
                    });
                }
            }
            Found::Scorecards(rows) => {
                for r in rows {
                    batch.scorecards.push(ScorecardRecord {
                        customer_id: CustomerId(r.customer_id),
                        id: ScorecardId(r.id),
                        template_id: TemplateId(r.template_id),
                        template_type: template_type(r.is_process_scorecard),
                        conversation_id: (r.conversation_id != 0)
                            .then_some(ConversationId(r.conversation_id)),
                        agent_id: r.agent_id.into(),
                        source: ScorecardSource::from_stored(i16::from(r.source))
                            .unwrap_or(ScorecardSource::Manual),
                        total_score: r.total_score,
                        created_at: time(r.created_at),
                        updated_at: Utc::now(),
                        version: 0,
                        is_deleted: true,
                    });
                }
            }
            Found::Scores(rows) => {
                for r in rows {
                    batch.scores.push(ScoreRecord {
                        customer_id: CustomerId(r.customer_id),
                        id: r.id,
                        scorecard_id: ScorecardId(r.scorecard_id),
                        template_id: TemplateId(r.template_id),
                        criterion_id: CriterionId(r.criterion_id),
                        conversation_id: (r.conversation_id != 0)
                            .then_some(ConversationId(r.conversation_id)),
                        agent_id: r.agent_id.into(),
                        template_type: template_type(r.is_process_scorecard),
                        value: r.value,
                        scorecard_created_at: time(r.scorecard_created_at),
                        updated_at: Utc::now(),
                        version: 0,
                        is_deleted: true,
                    });
                }
            }
        }
        Ok(batch)
    }

    async fn rows_by_id(&self, table: AuditTable, customer: CustomerId, ids: &[i64]) -> Result<Found> {
        if ids.is_empty() {
            return Ok(match table {
                AuditTable::Conversations => Found::Conversations(Vec::new()),
                AuditTable::Scorecards => Found::Scorecards(Vec::new()),
                AuditTable::Scores => Found::Scores(Vec::new()),
            });
        }
        let query = self
            .client()
            .query(&crate::schema::query_text(BY_ID[index(table)]))
            .bind(customer.0)
            .bind(ids.to_vec());
        let found = match table {
            AuditTable::Conversations => Found::Conversations(query.fetch_all().await),
            AuditTable::Scorecards => Found::Scorecards(query.fetch_all().await),
            AuditTable::Scores => Found::Scores(query.fetch_all().await),
        };
        found.transpose()
    }
}

fn template_type(is_process: u8) -> TemplateType {
    if is_process != 0 { TemplateType::Process } else { TemplateType::Conversation }
}

/// Rows by id, typed by table.
enum Found<C = Vec<ConversationRow>, S = Vec<ScorecardRow>, R = Vec<ScoreRow>> {
    Conversations(C),
    Scorecards(S),
    Scores(R),
}

type Fetched<T> = std::result::Result<Vec<T>, clickhouse::error::Error>;

impl Found<Fetched<ConversationRow>, Fetched<ScorecardRow>, Fetched<ScoreRow>> {
    fn transpose(self) -> Result<Found> {
        Ok(match self {
            Found::Conversations(rows) => Found::Conversations(rows.map_err(AnalyticsError::from_query)?),
            Found::Scorecards(rows) => Found::Scorecards(rows.map_err(AnalyticsError::from_query)?),
            Found::Scores(rows) => Found::Scores(rows.map_err(AnalyticsError::from_query)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use clickhouse::Row;
    use scorekeeper_domain::audit::AuditTable;

    use crate::select_list::select_names;

    #[test]
    fn each_query_selects_the_columns_of_its_row_in_order() {
        for table in [AuditTable::Conversations, AuditTable::Scorecards, AuditTable::Scores] {
            let sql = super::buckets_query(table);
            assert_eq!(select_names(&sql), super::BucketSumRow::COLUMN_NAMES, "{sql}");
            assert!(!sql.contains('{'), "every name filled in: {sql}");
        }
        for sql in super::ROWS {
            assert_eq!(select_names(sql), super::AuditRowRow::COLUMN_NAMES, "{sql}");
        }
    }

    #[test]
    fn comment_lines_are_dropped_before_binding() {
        let text = crate::schema::query_text(super::BY_ID[0]);
        assert!(!text.contains("--"));
        assert_eq!(text.matches('?').count(), 3, "?fields, customer_id and ids: {text}");
    }
}
