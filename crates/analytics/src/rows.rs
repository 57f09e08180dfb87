//! The ClickHouse row encodings (RowBinary), one struct per table, built
//! from the records Postgres gives. Field order and types match
//! `sql/schema/*.sql`; ClickHouse 18.16 cannot validate this for us.
//!
//! A time outside what ClickHouse's `DateTime` holds
//! (`domain::time::MIRROR_SECONDS`) is an error, never clamped: a clamped
//! row would be a wrong row that the audit cannot tell from a right one.

use chrono::{DateTime, Utc};
use scorekeeper_domain::mirror::{ConversationRecord, ScoreRecord, ScorecardRecord};
use scorekeeper_domain::time::{MIRROR_SECONDS, mirror_seconds};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ConversationRow {
    pub customer_id: i64,
    pub id: i64,
    pub external_id: String,
    pub agent_id: String,
    pub started_at: u32,
    pub ended_at: u32,
    pub message_count: u32,
    pub updated_at: u32,
    pub version: u64,
    pub is_deleted: u8,
}

#[derive(Clone, Debug, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ScorecardRow {
    pub customer_id: i64,
    pub id: i64,
    pub template_id: i64,
    pub template_type: u8,
    pub is_process_scorecard: u8,
    pub conversation_id: i64,
    pub agent_id: String,
    pub source: u8,
    pub total_score: f64,
    pub created_at: u32,
    pub updated_at: u32,
    pub version: u64,
    pub is_deleted: u8,
}

#[derive(Clone, Debug, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ScoreRow {
    pub customer_id: i64,
    pub id: i64,
    pub scorecard_id: i64,
    pub template_id: i64,
    pub criterion_id: i64,
    pub conversation_id: i64,
    pub agent_id: String,
    pub is_process_scorecard: u8,
    pub value: f64,
    pub scorecard_created_at: u32,
    pub updated_at: u32,
    pub version: u64,
    pub is_deleted: u8,
}

/// A score row as inserted: [`ScoreRow`] with the agent id borrowed from
/// its record, so that writing millions of scores allocates nothing per
/// row. Same fields in the same order (a test checks), so it encodes as a
/// `ScoreRow` does.
#[derive(Debug, clickhouse::Row, Serialize)]
pub struct ScoreInsert<'a> {
    pub customer_id: i64,
    pub id: i64,
    pub scorecard_id: i64,
    pub template_id: i64,
    pub criterion_id: i64,
    pub conversation_id: i64,
    pub agent_id: &'a str,
    pub is_process_scorecard: u8,
    pub value: f64,
    pub scorecard_created_at: u32,
    pub updated_at: u32,
    pub version: u64,
    pub is_deleted: u8,
}

/// A row's time that ClickHouse's `DateTime` cannot hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{table} row {id}: {field} {time} is outside what ClickHouse's DateTime holds")]
pub struct OutOfMirrorRange {
    pub table: &'static str,
    pub id: i64,
    pub field: &'static str,
    pub time: DateTime<Utc>,
}

/// A row's time as its `DateTime` column holds it.
fn row_seconds(
    table: &'static str,
    id: i64,
    field: &'static str,
    time: DateTime<Utc>,
) -> Result<u32, OutOfMirrorRange> {
    mirror_seconds(time).ok_or(OutOfMirrorRange { table, id, field, time })
}

/// The ClickHouse rows of `records`, as a writer would insert them; the
/// first record with a time outside the range fails it.
pub fn encode_all<'r, R: 'r, T>(records: impl IntoIterator<Item = &'r R>) -> Result<Vec<T>, OutOfMirrorRange>
where
    T: TryFrom<&'r R, Error = OutOfMirrorRange>,
{
    records.into_iter().map(T::try_from).collect()
}

/// A bound of a query on a `DateTime` column (a window's start or end, the
/// time now), as seconds within its range. Clamping a bound is exact: the
/// mirror holds no row outside the range (rows refuse to encode there).
pub fn bound_seconds(time: DateTime<Utc>) -> u32 {
    time.timestamp().clamp(*MIRROR_SECONDS.start(), *MIRROR_SECONDS.end()) as u32
}

/// Versions come from a Postgres sequence that starts at 1.
fn version(version: i64) -> u64 {
    u64::try_from(version).unwrap_or(0)
}

impl TryFrom<&ConversationRecord> for ConversationRow {
    type Error = OutOfMirrorRange;

    fn try_from(r: &ConversationRecord) -> Result<Self, OutOfMirrorRange> {
        let time = |field, time| row_seconds("conversations", r.id.0, field, time);
        Ok(ConversationRow {
            customer_id: r.customer_id.0,
            id: r.id.0,
            external_id: r.external_id.clone(),
            agent_id: r.agent_id.clone(),
            started_at: time("started_at", r.started_at)?,
            ended_at: time("ended_at", r.ended_at)?,
            message_count: r.message_count,
            updated_at: time("updated_at", r.updated_at)?,
            version: version(r.version),
            is_deleted: r.is_deleted.into(),
        })
    }
}

impl TryFrom<&ScorecardRecord> for ScorecardRow {
    type Error = OutOfMirrorRange;

    fn try_from(r: &ScorecardRecord) -> Result<Self, OutOfMirrorRange> {
        let time = |field, time| row_seconds("scorecards", r.id.0, field, time);
        Ok(ScorecardRow {
            customer_id: r.customer_id.0,
            id: r.id.0,
            template_id: r.template_id.0,
            template_type: r.template_type.number() as u8,
            is_process_scorecard: r.template_type.is_process().into(),
            conversation_id: r.conversation_id.map_or(0, |c| c.0),
            agent_id: r.agent_id.to_string(),
            source: r.source.number() as u8,
            total_score: r.total_score,
            created_at: time("created_at", r.created_at)?,
            updated_at: time("updated_at", r.updated_at)?,
            version: version(r.version),
            is_deleted: r.is_deleted.into(),
        })
    }
}

impl<'a> TryFrom<&'a ScoreRecord> for ScoreInsert<'a> {
    type Error = OutOfMirrorRange;

    fn try_from(r: &'a ScoreRecord) -> Result<Self, OutOfMirrorRange> {
        let time = |field, time| row_seconds("scores", r.id, field, time);
        Ok(ScoreInsert {
            customer_id: r.customer_id.0,
            id: r.id,
            scorecard_id: r.scorecard_id.0,
            template_id: r.template_id.0,
            criterion_id: r.criterion_id.0,
            conversation_id: r.conversation_id.map_or(0, |c| c.0),
            agent_id: &r.agent_id,
            is_process_scorecard: r.template_type.is_process().into(),
            value: r.value,
            scorecard_created_at: time("scorecard_created_at", r.scorecard_created_at)?,
            updated_at: time("updated_at", r.updated_at)?,
            version: version(r.version),
            is_deleted: r.is_deleted.into(),
        })
    }
}

impl TryFrom<&ScoreRecord> for ScoreRow {
    type Error = OutOfMirrorRange;

    fn try_from(r: &ScoreRecord) -> Result<Self, OutOfMirrorRange> {
        let row = ScoreInsert::try_from(r)?;
        Ok(ScoreRow {
            customer_id: row.customer_id,
            id: row.id,
            scorecard_id: row.scorecard_id,
            template_id: row.template_id,
            criterion_id: row.criterion_id,
            conversation_id: row.conversation_id,
            agent_id: row.agent_id.to_owned(),
            is_process_scorecard: row.is_process_scorecard,
            value: row.value,
            scorecard_created_at: row.scorecard_created_at,
            updated_at: row.updated_at,
            version: row.version,
            is_deleted: row.is_deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::Row;

    /// RowBinary has no names: the insert row must list the same columns
    /// in the same order as the row read back.
    #[test]
    fn a_time_outside_datetime_s_range_is_refused_not_clamped() {
        let at = |seconds| DateTime::from_timestamp(seconds, 0).unwrap();
        let record = ConversationRecord {
            customer_id: scorekeeper_domain::CustomerId(1),
            id: scorekeeper_domain::ConversationId(7),
            external_id: "c".into(),
            agent_id: "a".into(),
            started_at: at(0),
            ended_at: at(i64::from(u32::MAX)),
            message_count: 0,
            updated_at: at(1_700_000_000),
            version: 1,
            is_deleted: false,
        };
        let row = ConversationRow::try_from(&record).expect("the range's own ends encode");
        assert_eq!((row.started_at, row.ended_at), (0, u32::MAX));
        let before = ConversationRecord { started_at: at(-2_208_988_800), ..record.clone() };
        let error = ConversationRow::try_from(&before).unwrap_err();
        assert_eq!((error.table, error.id, error.field), ("conversations", 7, "started_at"));
        let after = ConversationRecord { ended_at: at(i64::from(u32::MAX) + 1), ..record };
        assert_eq!(ConversationRow::try_from(&after).unwrap_err().field, "ended_at");
    }

    #[test]
    fn score_insert_has_the_columns_of_score_row_in_order() {
        assert_eq!(ScoreInsert::COLUMN_NAMES, ScoreRow::COLUMN_NAMES);
    }
}
