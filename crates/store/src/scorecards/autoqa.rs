//! The AUTOQA scorecard of a (conversation, template): created, replaced or
//! left alone by a new scoring, with its outbox entry when it changed.

use scorekeeper_domain::scorecard::{Score, Scorecard, Template, check_scores};
use scorekeeper_domain::scorecard_write::StoredAutoQa;
use scorekeeper_domain::{ConversationId, CustomerId, ScorecardId, ScorecardSource};

use super::read::{live_scores, load_scorecard};
use super::write_scores;
use crate::Store;
use crate::error::{Result, StoreError};
use crate::outbox::{OutboxOrigin, enqueue};

impl Store {
    /// Creates or updates the one AUTOQA scorecard of (conversation,
    /// template) with these scores. Writes nothing, and returns `false`, when
    /// the live scorecard already holds exactly these scores and agent
    /// ([`StoredAutoQa::holds`]).
    pub async fn upsert_autoqa_scorecard(
        &self,
        customer_id: CustomerId,
        template: &Template,
        conversation_id: ConversationId,
        agent_id: &str,
        scores: &[Score],
    ) -> Result<(Scorecard, bool)> {
        let total = check_scores(template, scores, "scores")?;
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Insert, or find and lock the existing one: the unique index makes a
        // concurrent second insert wait, then skip, never duplicate.
        // The partial unique index's predicate is spelt out in the text: ON
        // CONFLICT cannot infer the index from a bound parameter.
        let insert = format!(
            "INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source, total_score)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (conversation_id, template_id) WHERE source = {autoqa} DO NOTHING
             RETURNING id",
            autoqa = ScorecardSource::AutoQa.number(),
        );
        let inserted = tx
            .query_opt(
                &insert,
                &[
                    &customer_id.0,
                    &template.id.0,
                    &template.template_type.number(),
                    &conversation_id.0,
                    &agent_id,
                    &ScorecardSource::AutoQa.number(),
                    &total,
                ],
            )
            .await?;
        let (id, changed) = match inserted {
            Some(row) => {
                let id = ScorecardId(row.try_get(0)?);
                write_scores(&tx, customer_id, id, scores).await?;
                (id, true)
            }
            None => {
                let row = tx
                    .query_one(
                        "SELECT id, agent_id, deleted_at IS NOT NULL AS is_deleted FROM scorecards
                         WHERE conversation_id = $1 AND template_id = $2 AND source = $3 FOR UPDATE",
                        &[&conversation_id.0, &template.id.0, &ScorecardSource::AutoQa.number()],
                    )
                    .await?;
                let id = ScorecardId(row.try_get("id")?);
                let stored = StoredAutoQa {
                    agent_id: row.try_get("agent_id")?,
                    deleted: row.try_get("is_deleted")?,
                    scores: live_scores(&*tx, id).await?,
                };
                if stored.holds(agent_id, scores) {
                    (id, false)
                } else {
                    tx.execute(
                        "UPDATE scorecards SET total_score = $2, agent_id = $3, deleted_at = NULL WHERE id = $1",
                        &[&id.0, &total, &agent_id],
                    )
                    .await?;
                    write_scores(&tx, customer_id, id, scores).await?;
                    (id, true)
                }
            }
        };
        if changed {
            enqueue(&tx, customer_id, id, OutboxOrigin::AutoQa).await?;
        }
        let scorecard = load_scorecard(&*tx, customer_id, id).await?;
        tx.commit().await?;
        Ok((scorecard.ok_or(StoreError::NotFound { what: "scorecard", id: id.0 })?, changed))
    }
}
