//! Readers of the rows ClickHouse mirrors, as they are in Postgres now,
//! deleted rows included (they become tombstones).

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use futures::TryStreamExt;

use scorekeeper_domain::mirror::{
    ConversationRecord, MirrorBatch, ScoreColumns, ScoreRecord, ScorecardRecord,
};
use scorekeeper_domain::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};

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

/// A score's own columns (`ScoreColumns`); its scorecard's are added in
/// Rust by `ScoreRecord::of`.
pub(crate) const SCORE_COLUMNS: &str = "s.customer_id, s.id, s.scorecard_id, s.criterion_id, s.value, s.updated_at, s.version, s.deleted_at IS NOT NULL";

/// A scorecard's columns, on a scorecard aliased `c` (`scorecard_record_at`).
macro_rules! scorecard_columns {
    () => {
        "c.customer_id, c.id, c.template_id, c.template_type, c.conversation_id, c.agent_id, c.source, \
         c.total_score, c.created_at, c.updated_at, c.version, c.deleted_at IS NOT NULL"
    };
}
pub(crate) const SCORECARD_COLUMNS: &str = scorecard_columns!();
pub(crate) const SCORECARD_SELECT: &str = concat!("SELECT ", scorecard_columns!(), " FROM scorecards c");

pub(crate) const CONVERSATION_SELECT: &str = "SELECT customer_id, id, external_id, agent_id, started_at, ended_at, \
     message_count, updated_at, version, deleted_at IS NOT NULL FROM conversations";

pub(crate) fn conversation_record(row: &tokio_postgres::Row) -> Result<ConversationRecord> {
    Ok(ConversationRecord {
        customer_id: CustomerId(row.try_get(0)?),
        id: ConversationId(row.try_get(1)?),
        external_id: row.try_get(2)?,
        agent_id: row.try_get(3)?,
        started_at: row.try_get(4)?,
        ended_at: row.try_get(5)?,
        message_count: codec::count(row.try_get(6)?)?,
        updated_at: row.try_get(7)?,
        version: row.try_get(8)?,
        is_deleted: row.try_get(9)?,
    })
}

pub(crate) fn scorecard_record(row: &tokio_postgres::Row) -> Result<ScorecardRecord> {
    scorecard_record_at(row, 0)
}

/// A scorecard from the 12 columns of `SCORECARD_COLUMNS` starting at `at`.
pub(crate) fn scorecard_record_at(row: &tokio_postgres::Row, at: usize) -> Result<ScorecardRecord> {
    Ok(ScorecardRecord {
        customer_id: CustomerId(row.try_get(at)?),
        id: ScorecardId(row.try_get(at + 1)?),
        template_id: TemplateId(row.try_get(at + 2)?),
        template_type: codec::template_type(row.try_get(at + 3)?)?,
        conversation_id: row.try_get::<_, Option<i64>>(at + 4)?.map(ConversationId),
        agent_id: row.try_get::<_, &str>(at + 5)?.into(),
        source: codec::source(row.try_get(at + 6)?)?,
        total_score: row.try_get(at + 7)?,
        created_at: row.try_get(at + 8)?,
        updated_at: row.try_get(at + 9)?,
        version: row.try_get(at + 10)?,
        is_deleted: row.try_get(at + 11)?,
    })
}

/// A score's own columns from the 8 columns of `SCORE_COLUMNS` at the start.
pub(crate) fn score_columns(row: &tokio_postgres::Row) -> Result<ScoreColumns> {
    Ok(ScoreColumns {
        customer_id: CustomerId(row.try_get(0)?),
        id: row.try_get(1)?,
        scorecard_id: ScorecardId(row.try_get(2)?),
        criterion_id: CriterionId(row.try_get(3)?),
        value: row.try_get(4)?,
        updated_at: row.try_get(5)?,
        version: row.try_get(6)?,
        is_deleted: row.try_get(7)?,
    })
}

impl Store {
    /// Scorecards by id, of any customer and deleted or not, with all their
    /// scores: what the outbox dispatcher sends.
    pub async fn scorecard_mirror(&self, ids: &[ScorecardId]) -> Result<MirrorBatch> {
        let ids: Vec<i64> = ids.iter().map(|s| s.0).collect();
        let client = self.pool().get().await?;
        let scorecards =
            client.query(&format!("{SCORECARD_SELECT} WHERE id = ANY($1) ORDER BY id"), &[&ids]).await?;
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
                    "{SCORECARD_SELECT} WHERE conversation_id = ANY($1) AND template_type = 1 ORDER BY id"
                ),
                &[&ids],
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
