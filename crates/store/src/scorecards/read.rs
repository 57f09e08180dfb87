//! Reading scorecards back with their live scores and links, as every
//! scorecard call returns them.

use scorekeeper_domain::scorecard::{Score, Scorecard};
use scorekeeper_domain::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};
use tokio_postgres::GenericClient;

use crate::codec;
use crate::error::Result;

const SCORECARD_COLUMNS: &str = "id, customer_id, template_id, template_type, conversation_id, agent_id, \
     source, total_score, version, created_at, updated_at";

/// The scorecard's live scores, in criterion id order.
pub(super) async fn live_scores(client: &impl GenericClient, id: ScorecardId) -> Result<Vec<Score>> {
    let rows = client
        .query(
            "SELECT criterion_id, value FROM scores WHERE scorecard_id = $1 AND deleted_at IS NULL ORDER BY criterion_id",
            &[&id.0],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Score { criterion_id: CriterionId(r.try_get("criterion_id")?), value: r.try_get("value")? })
        })
        .collect()
}

/// The customer's live scorecard `id`, or `None`.
pub(super) async fn load_scorecard(
    client: &impl GenericClient,
    customer_id: CustomerId,
    id: ScorecardId,
) -> Result<Option<Scorecard>> {
    Ok(load_scorecards(client, customer_id, &[id]).await?.pop())
}

/// Live scorecards with scores and links, in id order.
pub(super) async fn load_scorecards(
    client: &impl GenericClient,
    customer_id: CustomerId,
    ids: &[ScorecardId],
) -> Result<Vec<Scorecard>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = ids.iter().map(|s| s.0).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {SCORECARD_COLUMNS} FROM scorecards
                 WHERE customer_id = $1 AND id = ANY($2) AND deleted_at IS NULL ORDER BY id"
            ),
            &[&customer_id.0, &ids],
        )
        .await?;
    let mut scorecards = Vec::with_capacity(rows.len());
    for row in rows {
        scorecards.push(Scorecard {
            id: ScorecardId(row.try_get("id")?),
            customer_id: CustomerId(row.try_get("customer_id")?),
            template_id: TemplateId(row.try_get("template_id")?),
            template_type: codec::template_type(row.try_get("template_type")?)?,
            conversation_id: row.try_get::<_, Option<i64>>("conversation_id")?.map(ConversationId),
            linked_conversation_ids: Vec::new(),
            agent_id: row.try_get("agent_id")?,
            source: codec::source(row.try_get("source")?)?,
            scores: Vec::new(),
            total_score: row.try_get("total_score")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        });
    }
    let position = |id: i64, scorecards: &[Scorecard]| scorecards.binary_search_by_key(&id, |s| s.id.0).ok();
    let scores = client
        .query(
            "SELECT scorecard_id, criterion_id, value FROM scores
             WHERE scorecard_id = ANY($1) AND deleted_at IS NULL ORDER BY scorecard_id, criterion_id",
            &[&ids],
        )
        .await?;
    for row in scores {
        if let Some(i) = position(row.try_get("scorecard_id")?, &scorecards) {
            scorecards[i].scores.push(Score {
                criterion_id: CriterionId(row.try_get("criterion_id")?),
                value: row.try_get("value")?,
            });
        }
    }
    let links = client
        .query(
            "SELECT scorecard_id, conversation_id FROM process_scorecard_conversations
             WHERE scorecard_id = ANY($1) ORDER BY scorecard_id, conversation_id",
            &[&ids],
        )
        .await?;
    for row in links {
        if let Some(i) = position(row.try_get("scorecard_id")?, &scorecards) {
            scorecards[i].linked_conversation_ids.push(ConversationId(row.try_get("conversation_id")?));
        }
    }
    Ok(scorecards)
}
