//! AutoscoreConversations: evaluates a template's rule criteria on
//! transcripts and keeps one AUTOQA scorecard per (conversation, template).
//! The scorecards reach ClickHouse through the outbox, like API writes:
//! this crate is an application service on Postgres and never touches
//! ClickHouse itself.

use futures::{StreamExt, TryStreamExt};
use scorekeeper_domain::autoqa::{RuleCriterion, score_transcript};
use scorekeeper_domain::scorecard::Score;
use scorekeeper_domain::scorecard_write::{AutoQaTemplate, autoqa_conversations_found, autoqa_template};
use scorekeeper_domain::{ConversationId, CustomerId, ScorecardId, TemplateId};
use scorekeeper_store::Store;

pub mod error;

pub use error::{AutoQaError, Result};

/// Scorecard writes in flight at once; results keep request order.
const WRITE_CONCURRENCY: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct AutoscoreResult {
    pub conversation_id: ConversationId,
    pub scorecard_id: ScorecardId,
    pub total_score: f64,
    /// False when the stored AUTOQA scorecard already had these scores.
    pub changed: bool,
}

/// Scores each conversation with the template's rule criteria. The template
/// must be a conversation template with at least one rule; unknown
/// conversations are invalid input, checked before anything is written.
pub async fn autoscore(
    store: &Store,
    customer_id: CustomerId,
    template_id: TemplateId,
    conversation_ids: &[ConversationId],
) -> Result<Vec<AutoscoreResult>> {
    let stored = store.get_template(customer_id, template_id).await?;
    let AutoQaTemplate { template, rules } = autoqa_template(stored.as_ref(), template_id)?;
    let conversations = store.conversations(customer_id, conversation_ids).await?;
    let found: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
    autoqa_conversations_found(conversation_ids, &found)?;
    let criteria: Vec<RuleCriterion<'_>> = rules
        .iter()
        .map(|(criterion, rule)| RuleCriterion { criterion_id: criterion.id, scale: criterion.scale, rule })
        .collect();
    let transcripts = store.transcripts(customer_id, conversation_ids).await?;
    // Scoring is pure and cheap; the writes are one short transaction per
    // conversation, on distinct rows, so they can overlap safely.
    let scored: Vec<(ConversationId, String, Vec<Score>)> = conversations
        .into_iter()
        .map(|conversation| {
            let messages = transcripts.get(&conversation.id).map(Vec::as_slice).unwrap_or_default();
            let scores = score_transcript(&criteria, messages)
                .into_iter()
                .map(|(criterion_id, value)| Score { criterion_id, value })
                .collect();
            (conversation.id, conversation.agent_id, scores)
        })
        .collect();
    futures::stream::iter(scored)
        .map(|(conversation_id, agent_id, scores)| async move {
            let (scorecard, changed) = store
                .upsert_autoqa_scorecard(customer_id, template, conversation_id, &agent_id, &scores)
                .await?;
            Ok(AutoscoreResult {
                conversation_id,
                scorecard_id: scorecard.id,
                total_score: scorecard.total_score,
                changed,
            })
        })
        .buffered(WRITE_CONCURRENCY)
        .try_collect()
        .await
}
