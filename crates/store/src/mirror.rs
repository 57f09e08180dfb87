//! Readers of the rows ClickHouse mirrors, as they are in Postgres now,
//! deleted rows included (they become tombstones).

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use futures::TryStreamExt;

use scorekeeper_domain::mirror::{
    ConversationRecord, MirrorBatch, ScoreColumns, ScoreRecord, ScorecardRecord,
};
use scorekeeper_domain::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId, TemplateType};

use crate::Store;
use crate::codec;
use crate::error::Result;

/// Which conversations a batch index covers.
#[derive(Clone, Debug, PartialEq)]
pub enum ConversationSelector {
    Ids(Vec<ConversationId>),
    /// `started_at` in `[start, end)`.
    StartedBetween {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

// Rows are decoded by column name, never by position: reordering a column
// list cannot shift one field into another. Each list names every column
// it selects (`AS`) as its decoder reads it.

/// A score's own columns (`ScoreColumns`, decoded by `score_columns`) on a
/// score aliased `s`; its scorecard's are added in Rust by `ScoreRecord::of`.
pub(crate) const SCORE_COLUMNS: &str = "s.customer_id, s.id, s.scorecard_id, s.criterion_id, s.value, \
     s.updated_at, s.version, s.deleted_at IS NOT NULL AS is_deleted";

/// A scorecard's columns on a scorecard aliased `c`, each named
/// `<prefix><field>` as `scorecard_record` reads them with
/// [`ScorecardNames`] of the same prefix.
macro_rules! scorecard_columns {
    ($prefix:literal) => {
        concat!(
            "c.customer_id AS ",
            $prefix,
            "customer_id, c.id AS ",
            $prefix,
            "id, ",
            "c.template_id AS ",
            $prefix,
            "template_id, c.template_type AS ",
            $prefix,
            "template_type, ",
            "c.conversation_id AS ",
            $prefix,
            "conversation_id, c.agent_id AS ",
            $prefix,
            "agent_id, ",
            "c.source AS ",
            $prefix,
            "source, c.total_score AS ",
            $prefix,
            "total_score, ",
            "c.created_at AS ",
            $prefix,
            "created_at, c.updated_at AS ",
            $prefix,
            "updated_at, ",
            "c.version AS ",
            $prefix,
            "version, c.deleted_at IS NOT NULL AS ",
            $prefix,
            "is_deleted"
        )
    };
}

/// The names `scorecard_record` reads a scorecard's fields by.
pub(crate) struct ScorecardNames {
    customer_id: &'static str,
    id: &'static str,
    template_id: &'static str,
    template_type: &'static str,
    conversation_id: &'static str,
    agent_id: &'static str,
    source: &'static str,
    total_score: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
    version: &'static str,
    is_deleted: &'static str,
}

macro_rules! scorecard_names {
    ($prefix:literal) => {
        ScorecardNames {
            customer_id: concat!($prefix, "customer_id"),
            id: concat!($prefix, "id"),
            template_id: concat!($prefix, "template_id"),
            template_type: concat!($prefix, "template_type"),
            conversation_id: concat!($prefix, "conversation_id"),
            agent_id: concat!($prefix, "agent_id"),
            source: concat!($prefix, "source"),
            total_score: concat!($prefix, "total_score"),
            created_at: concat!($prefix, "created_at"),
            updated_at: concat!($prefix, "updated_at"),
            version: concat!($prefix, "version"),
            is_deleted: concat!($prefix, "is_deleted"),
        }
    };
}

impl ScorecardNames {
    /// A row of scorecards alone ([`SCORECARD_SELECT`]): the columns' own names.
    pub(crate) const ALONE: ScorecardNames = scorecard_names!("");
    /// A row a scorecard shares with its score ([`SCORE_COLUMNS`], whose
    /// names are partly the same), from [`SCORECARD_COLUMNS_BESIDE_SCORE`].
    pub(crate) const BESIDE_SCORE: ScorecardNames = scorecard_names!("card_");
}

/// A scorecard's columns where they share a row with a score's.
pub(crate) const SCORECARD_COLUMNS_BESIDE_SCORE: &str = scorecard_columns!("card_");
pub(crate) const SCORECARD_SELECT: &str = concat!("SELECT ", scorecard_columns!(""), " FROM scorecards c");

pub(crate) const CONVERSATION_SELECT: &str = "SELECT customer_id, id, external_id, agent_id, started_at, ended_at, \
     message_count, updated_at, version, deleted_at IS NOT NULL AS is_deleted FROM conversations";

/// A conversation from a row of [`CONVERSATION_SELECT`].
pub(crate) fn conversation_record(row: &tokio_postgres::Row) -> Result<ConversationRecord> {
    Ok(ConversationRecord {
        customer_id: CustomerId(row.try_get("customer_id")?),
        id: ConversationId(row.try_get("id")?),
        external_id: row.try_get("external_id")?,
        agent_id: row.try_get("agent_id")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        message_count: codec::count(row.try_get("message_count")?)?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        is_deleted: row.try_get("is_deleted")?,
    })
}

/// A scorecard from a row of [`SCORECARD_SELECT`].
pub(crate) fn scorecard_record(row: &tokio_postgres::Row) -> Result<ScorecardRecord> {
    scorecard_record_named(row, &ScorecardNames::ALONE)
}

/// A scorecard from the columns `names` names.
pub(crate) fn scorecard_record_named(
    row: &tokio_postgres::Row,
    names: &ScorecardNames,
) -> Result<ScorecardRecord> {
    Ok(ScorecardRecord {
        customer_id: CustomerId(row.try_get(names.customer_id)?),
        id: ScorecardId(row.try_get(names.id)?),
        template_id: TemplateId(row.try_get(names.template_id)?),
        template_type: codec::template_type(row.try_get(names.template_type)?)?,
        conversation_id: row.try_get::<_, Option<i64>>(names.conversation_id)?.map(ConversationId),
        agent_id: row.try_get::<_, &str>(names.agent_id)?.into(),
        source: codec::source(row.try_get(names.source)?)?,
        total_score: row.try_get(names.total_score)?,
        created_at: row.try_get(names.created_at)?,
        updated_at: row.try_get(names.updated_at)?,
        version: row.try_get(names.version)?,
        is_deleted: row.try_get(names.is_deleted)?,
    })
}

/// A score's own columns from a row holding [`SCORE_COLUMNS`].
pub(crate) fn score_columns(row: &tokio_postgres::Row) -> Result<ScoreColumns> {
    Ok(ScoreColumns {
        customer_id: CustomerId(row.try_get("customer_id")?),
        id: row.try_get("id")?,
        scorecard_id: ScorecardId(row.try_get("scorecard_id")?),
        criterion_id: CriterionId(row.try_get("criterion_id")?),
        value: row.try_get("value")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        is_deleted: row.try_get("is_deleted")?,
    })
}

impl Store {
    /// Scorecards by id, of any customer and deleted or not, with all their
    /// scores: what the outbox dispatcher sends.
    pub async fn scorecard_mirror(&self, ids: &[ScorecardId]) -> Result<MirrorBatch> {
        let ids: Vec<i64> = ids.iter().map(|s| s.0).collect();
        let client = self.pool().get().await?;
        let scorecards =
            client.query(&format!("{SCORECARD_SELECT} WHERE c.id = ANY($1) ORDER BY c.id"), &[&ids]).await?;
        let scorecards = scorecards.iter().map(scorecard_record).collect::<Result<Vec<_>>>()?;
        Ok(MirrorBatch { conversations: Vec::new(), scores: self.scores_of(&scorecards).await?, scorecards })
    }

    /// The conversation scorecards (never process ones) of these
    /// conversations, deleted or not, with all their scores.
    pub async fn conversation_scorecards_mirror(
        &self,
        conversation_ids: &[ConversationId],
    ) -> Result<MirrorBatch> {
        let ids: Vec<i64> = conversation_ids.iter().map(|c| c.0).collect();
        let client = self.pool().get().await?;
        let scorecards = client
            .query(
                &format!(
                    "{SCORECARD_SELECT} WHERE c.conversation_id = ANY($1) AND c.template_type = $2 ORDER BY c.id"
                ),
                &[&ids, &TemplateType::Conversation.number()],
            )
            .await?;
        let scorecards = scorecards.iter().map(scorecard_record).collect::<Result<Vec<_>>>()?;
        Ok(MirrorBatch { conversations: Vec::new(), scores: self.scores_of(&scorecards).await?, scorecards })
    }

    /// Every score (deleted too) of these scorecards, each joined with its
    /// scorecard in Rust (`ScoreRecord::of`).
    pub async fn scores_of(&self, scorecards: &[ScorecardRecord]) -> Result<Vec<ScoreRecord>> {
        if scorecards.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = scorecards.iter().map(|s| s.id.0).collect();
        let by_id: HashMap<ScorecardId, &ScorecardRecord> = scorecards.iter().map(|s| (s.id, s)).collect();
        let client = self.pool().get().await?;
        let sql = format!("SELECT {SCORE_COLUMNS} FROM scores s WHERE s.scorecard_id = ANY($1)");
        // Decoded as they arrive: a reindex page holds tens of thousands of
        // scores, and the raw rows need not all be held beside the records.
        let rows = client.query_raw(&sql, [&ids]).await?;
        let mut rows = std::pin::pin!(rows);
        let mut scores = Vec::with_capacity(scorecards.len() * 10);
        while let Some(row) = rows.try_next().await? {
            let score = score_columns(&row)?;
            scores.push(ScoreRecord::of(by_id[&score.scorecard_id], score));
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a select list gives its columns (`AS name`, else the
    /// column's own name); the lists here have no commas inside a column.
    fn output_names(list: &str) -> Vec<&str> {
        list.split(',')
            .map(|column| {
                let column = column.trim();
                let name = column.rsplit_once(" AS ").map_or(column, |(_, name)| name);
                name.rsplit_once('.').map_or(name, |(_, name)| name)
            })
            .collect()
    }

    fn names(n: &ScorecardNames) -> [&'static str; 12] {
        [
            n.customer_id,
            n.id,
            n.template_id,
            n.template_type,
            n.conversation_id,
            n.agent_id,
            n.source,
            n.total_score,
            n.created_at,
            n.updated_at,
            n.version,
            n.is_deleted,
        ]
    }

    #[test]
    fn a_scorecard_beside_its_score_shares_no_column_name_with_it() {
        let score = output_names(SCORE_COLUMNS);
        let scorecard = output_names(SCORECARD_COLUMNS_BESIDE_SCORE);
        assert_eq!(score.len(), 8);
        assert!(scorecard.iter().all(|name| !score.contains(name)), "{score:?} / {scorecard:?}");
        assert_eq!(scorecard, names(&ScorecardNames::BESIDE_SCORE));
    }

    #[test]
    fn a_scorecard_alone_is_read_by_the_names_it_is_selected_as() {
        let list = SCORECARD_SELECT.trim_start_matches("SELECT ").trim_end_matches(" FROM scorecards c");
        assert_eq!(output_names(list), names(&ScorecardNames::ALONE));
    }
}
