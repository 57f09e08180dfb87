//! The rows ClickHouse mirrors, as read from Postgres. Every write path
//! produces these; `analytics` turns them into ClickHouse rows.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ids::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};
use crate::scoring::{ScorecardSource, TemplateType};

#[derive(Clone, Debug, PartialEq)]
pub struct ConversationRecord {
    pub customer_id: CustomerId,
    pub id: ConversationId,
    pub external_id: String,
    pub agent_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub message_count: u32,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub is_deleted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScorecardRecord {
    pub customer_id: CustomerId,
    pub id: ScorecardId,
    pub template_id: TemplateId,
    pub template_type: TemplateType,
    pub conversation_id: Option<ConversationId>,
    /// Shared with the scorecard's score records (`ScoreRecord::of`), so
    /// that millions of scores in a reindex do not each copy it.
    pub agent_id: Arc<str>,
    pub source: ScorecardSource,
    pub total_score: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub is_deleted: bool,
}

/// A score with what analytics groups by, taken from its scorecard. A score
/// of a deleted scorecard is deleted too.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRecord {
    pub customer_id: CustomerId,
    pub id: i64,
    pub scorecard_id: ScorecardId,
    pub template_id: TemplateId,
    pub criterion_id: CriterionId,
    pub conversation_id: Option<ConversationId>,
    pub agent_id: Arc<str>,
    pub template_type: TemplateType,
    pub value: f64,
    pub scorecard_created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub is_deleted: bool,
}

/// A score's own columns in Postgres, before its scorecard's are added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreColumns {
    pub customer_id: CustomerId,
    pub id: i64,
    pub scorecard_id: ScorecardId,
    pub criterion_id: CriterionId,
    pub value: f64,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub is_deleted: bool,
}

impl ScoreRecord {
    /// The mirrored score: what analytics groups by comes from its
    /// scorecard, and its version and update time are the later of its own
    /// and its scorecard's (deleted if either is), so that a change to the
    /// scorecard alone (a hand fix, a delete) makes newer score rows that
    /// replace the old ones. Joined here rather than in SQL: Postgres reads
    /// the two tables apart far faster than joined.
    pub fn of(scorecard: &ScorecardRecord, score: ScoreColumns) -> ScoreRecord {
        ScoreRecord {
            customer_id: score.customer_id,
            id: score.id,
            scorecard_id: score.scorecard_id,
            template_id: scorecard.template_id,
            criterion_id: score.criterion_id,
            conversation_id: scorecard.conversation_id,
            agent_id: scorecard.agent_id.clone(),
            template_type: scorecard.template_type,
            value: score.value,
            scorecard_created_at: scorecard.created_at,
            updated_at: score.updated_at.max(scorecard.updated_at),
            version: score.version.max(scorecard.version),
            is_deleted: score.is_deleted || scorecard.is_deleted,
        }
    }
}

/// A batch of mirror rows bound for ClickHouse together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MirrorBatch {
    pub conversations: Vec<ConversationRecord>,
    pub scorecards: Vec<ScorecardRecord>,
    pub scores: Vec<ScoreRecord>,
}

impl MirrorBatch {
    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty() && self.scorecards.is_empty() && self.scores.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.conversations.len() + self.scorecards.len() + self.scores.len()
    }
}
