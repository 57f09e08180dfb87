//! The ClickHouse row encodings (RowBinary), one struct per table, built
//! from the records Postgres gives. Field order and types match
//! `sql/schema/*.sql`; ClickHouse 18.16 cannot validate this for us.

use chrono::{DateTime, Utc};
use scorekeeper_domain::mirror::{ConversationRecord, ScoreRecord, ScorecardRecord};
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

/// ClickHouse `DateTime` is seconds since the epoch in a `UInt32`; times
/// outside its range are clamped to it.
pub fn seconds(time: DateTime<Utc>) -> u32 {
    time.timestamp().clamp(0, i64::from(u32::MAX)) as u32
}

/// Versions come from a Postgres sequence that starts at 1.
fn version(version: i64) -> u64 {
    u64::try_from(version).unwrap_or(0)
}

impl From<&ConversationRecord> for ConversationRow {
    fn from(r: &ConversationRecord) -> Self {
        ConversationRow {
            customer_id: r.customer_id.0,
            id: r.id.0,
            external_id: r.external_id.clone(),
            agent_id: r.agent_id.clone(),
            started_at: seconds(r.started_at),
            ended_at: seconds(r.ended_at),
            message_count: r.message_count,
            updated_at: seconds(r.updated_at),
            version: version(r.version),
            is_deleted: r.is_deleted.into(),
        }
    }
}

impl From<&ScorecardRecord> for ScorecardRow {
    fn from(r: &ScorecardRecord) -> Self {
        ScorecardRow {
            customer_id: r.customer_id.0,
            id: r.id.0,
            template_id: r.template_id.0,
            template_type: r.template_type.number() as u8,
            is_process_scorecard: r.template_type.is_process().into(),
            conversation_id: r.conversation_id.map_or(0, |c| c.0),
            agent_id: r.agent_id.to_string(),
            source: r.source.number() as u8,
            total_score: r.total_score,
            created_at: seconds(r.created_at),
            updated_at: seconds(r.updated_at),
            version: version(r.version),
            is_deleted: r.is_deleted.into(),
        }
    }
}

impl<'a> From<&'a ScoreRecord> for ScoreInsert<'a> {
    fn from(r: &'a ScoreRecord) -> Self {
        ScoreInsert {
            customer_id: r.customer_id.0,
            id: r.id,
            scorecard_id: r.scorecard_id.0,
            template_id: r.template_id.0,
            criterion_id: r.criterion_id.0,
            conversation_id: r.conversation_id.map_or(0, |c| c.0),
            agent_id: &r.agent_id,
            is_process_scorecard: r.template_type.is_process().into(),
            value: r.value,
            scorecard_created_at: seconds(r.scorecard_created_at),
            updated_at: seconds(r.updated_at),
            version: version(r.version),
            is_deleted: r.is_deleted.into(),
        }
    }
}

impl From<&ScoreRecord> for ScoreRow {
    fn from(r: &ScoreRecord) -> Self {
        let row = ScoreInsert::from(r);
        ScoreRow {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::Row;

    /// RowBinary has no names: the insert row must list the same columns
    /// in the same order as the row read back.
    #[test]
    fn score_insert_has_the_columns_of_score_row_in_order() {
        assert_eq!(ScoreInsert::COLUMN_NAMES, ScoreRow::COLUMN_NAMES);
    }
}
