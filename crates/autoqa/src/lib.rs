//! AutoscoreConversations: evaluates a template's rule criteria on
//! transcripts and keeps one AUTOQA scorecard per (conversation, template).
//! The scorecards reach ClickHouse through the outbox, like API writes:
//! this crate is an application service on Postgres and never touches
//! ClickHouse itself.

use futures::{StreamExt, TryStreamExt};
use scorekeeper_domain::autoqa::{CompiledRule, RuleCriterion, score_transcript};
use scorekeeper_domain::scorecard::{Score, Template};
use scorekeeper_domain::{ConversationId, CustomerId, Invalid, ScorecardId, TemplateId};
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
    let template = store
        .get_template(customer_id, template_id)
        .await?
        .ok_or_else(|| Invalid::new("template_id", format!("unknown template {template_id}")))?;
    if template.template_type.is_process() {
        return Err(
            Invalid::new("template_id", "AutoQA scores conversations; this is a process template").into()
        );
    }
    let compiled = compile_rules(&template)?;
    if compiled.is_empty() {
        return Err(Invalid::new("template_id", "the template has no criterion with an AutoQA rule").into());
    }
    let conversations = store.conversations(customer_id, conversation_ids).await?;
    if let Some((index, missing)) = conversation_ids
        .iter()
        .enumerate()
        .find(|(_, id)| conversations.binary_search_by_key(*id, |c| c.id).is_err())
    {
        return Err(Invalid::new(
            format!("conversation_ids[{index}]"),
            format!("unknown conversation {missing}"),
        )
        .into());
    }
    let criteria: Vec<RuleCriterion<'_>> = compiled
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
        .map(|(conversation_id, agent_id, scores)| {
            let template = &template;
            async move {
                let (scorecard, changed) = store
                    .upsert_autoqa_scorecard(customer_id, template, conversation_id, &agent_id, &scores)
                    .await?;
                Ok(AutoscoreResult {
                    conversation_id,
                    scorecard_id: scorecard.id,
                    total_score: scorecard.total_score,
                    changed,
                })
            }
        })
        .buffered(WRITE_CONCURRENCY)
        .try_collect()
        .await
}

/// The template's criteria that carry a rule, with the rule compiled once.
fn compile_rules(
    template: &Template,
) -> Result<Vec<(&scorekeeper_domain::scorecard::Criterion, CompiledRule)>> {
    let mut compiled = Vec::new();
    for (index, criterion) in template.criteria.iter().enumerate() {
        if let Some(rule) = &criterion.rule {
            let rule = rule
                .compile()
                .map_err(|e| Invalid::new(format!("criteria[{index}].autoqa_rule"), e.to_string()))?;
            compiled.push((criterion, rule));
        }
    }
    Ok(compiled)
}
