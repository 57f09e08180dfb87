//! Scorecards and their scores. Every change is committed together with an
//! outbox entry, so ClickHouse learns of it even if this process dies right
//! after the commit.
//!
//! The store loads the facts a create or update is decided on
//! (`facts`), lets the domain decide (`scorekeeper_domain::scorecard_write`:
//! the agent, the links, the total, or why not), and writes the decision.

mod autoqa;
mod facts;
mod read;

use scorekeeper_domain::scorecard::{Score, Scorecard};
use scorekeeper_domain::scorecard_write::{ChangeRefused, NewScorecard, ScorecardChange};
use scorekeeper_domain::{ConversationId, CustomerId, ScorecardId, ScorecardSource, TemplateId};
use tokio_postgres::Transaction;

use self::read::{load_scorecard, load_scorecards};
use crate::Store;
use crate::error::{Result, StoreError};
use crate::outbox::{OutboxOrigin, enqueue};

/// Filters of `list_scorecards`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScorecardFilter {
    pub template_id: Option<TemplateId>,
    pub conversation_id: Option<ConversationId>,
}

/// A new manual scorecard with its scores, links and outbox entry, as one
/// statement: the foreign keys are checked at its end, when every part is
/// in. Parameters: customer,
/// template, template type, conversation (NULL for process scorecards),
/// agent, source, total, criterion ids, values, linked conversation ids,
/// outbox origin.
const INSERT_SCORECARD: &str = "WITH card AS (
         INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source, total_score)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, version, created_at, updated_at
     ), scored AS (
         INSERT INTO scores (customer_id, scorecard_id, criterion_id, value)
         SELECT $1, card.id, s.criterion_id, s.value
         FROM card, unnest($8::bigint[], $9::float8[]) AS s(criterion_id, value)
     ), linked AS (
         INSERT INTO process_scorecard_conversations (scorecard_id, conversation_id)
         SELECT card.id, l.conversation_id FROM card, unnest($10::bigint[]) AS l(conversation_id)
     ), queued AS (
         INSERT INTO outbox (customer_id, scorecard_id, origin) SELECT $1, card.id, $11 FROM card
     )
     SELECT id, version, created_at, updated_at FROM card";

impl Store {
    /// Decides the scorecard on its template and the stored conversations
    /// ([`NewScorecard::decide`]), then writes it, its scores, its links
    /// and an outbox entry in one statement, which commits all of them or
    /// nothing. A rejected request writes nothing.
    ///
    /// This is the hot path of the API, so it costs two round trips on one
    /// connection: the reads (template, conversation or linked
    /// conversations) pipelined (`facts::for_create`), then the write,
    /// both as statements prepared once per connection. The reads take no
    /// locks, as the transaction they replace took none either (READ
    /// COMMITTED): a conversation deleted meanwhile is caught by neither.
    pub async fn create_scorecard(
        &self,
        customer_id: CustomerId,
        new: &NewScorecard,
        origin: OutboxOrigin,
    ) -> Result<Scorecard> {
        let client = self.pool().get().await?;
        let facts = facts::for_create(&client, customer_id, new).await?;
        let decision = new.decide(&facts)?;
        let criteria: Vec<i64> = new.scores.iter().map(|s| s.criterion_id.0).collect();
        let values: Vec<f64> = new.scores.iter().map(|s| s.value).collect();
        let linked_ids: Vec<i64> = new.linked_conversation_ids.iter().map(|c| c.0).collect();
        let insert = client.prepare_cached(INSERT_SCORECARD).await?;
        let row = client
            .query_one(
                &insert,
                &[
                    &customer_id.0,
                    &new.template_id.0,
                    &decision.template_type.number(),
                    &new.conversation_id.map(|c| c.0),
                    &decision.agent_id,
                    &ScorecardSource::Manual.number(),
                    &decision.total_score,
                    &criteria,
                    &values,
                    &linked_ids,
                    &origin.as_str(),
                ],
            )
            .await?;
        // What was just written, as `get_scorecard` would read it back.
        let mut scores = new.scores.clone();
        scores.sort_by_key(|s| s.criterion_id);
        let mut linked_conversation_ids = new.linked_conversation_ids.clone();
        linked_conversation_ids.sort_unstable();
        Ok(Scorecard {
            id: ScorecardId(row.try_get("id")?),
            customer_id,
            template_id: new.template_id,
            template_type: decision.template_type,
            conversation_id: new.conversation_id,
            linked_conversation_ids,
            agent_id: decision.agent_id,
            source: ScorecardSource::Manual,
            scores,
            total_score: decision.total_score,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// Replaces a live scorecard's scores (and, for process scorecards, its
    /// links and agent when given), with an outbox entry, in one
    /// transaction. The scorecard is locked while its facts are read
    /// (`facts::for_change`) and the change decided
    /// ([`ScorecardChange::decide`]); `NotFound` without a live scorecard,
    /// `VersionMismatch` for a stale `expected_version`.
    pub async fn update_scorecard(
        &self,
        customer_id: CustomerId,
        id: ScorecardId,
        change: &ScorecardChange,
        origin: OutboxOrigin,
    ) -> Result<Scorecard> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let facts = facts::for_change(&tx, customer_id, id, change).await?;
        let decision = change.decide(&facts).map_err(|refused| match refused {
            ChangeRefused::Invalid(invalid) => StoreError::Invalid(invalid),
            ChangeRefused::StaleVersion { expected, actual } => {
                StoreError::VersionMismatch { what: "scorecard", id: id.0, expected, actual }
            }
        })?;
        if let Some(links) = decision.links {
            tx.execute("DELETE FROM process_scorecard_conversations WHERE scorecard_id = $1", &[&id.0])
                .await?;
            write_links(&tx, id, links).await?;
        }
        tx.execute(
            "UPDATE scorecards SET total_score = $2, agent_id = coalesce($3, agent_id) WHERE id = $1",
            &[&id.0, &decision.total_score, &decision.agent_id],
        )
        .await?;
        write_scores(&tx, customer_id, id, &change.scores).await?;
        enqueue(&tx, customer_id, id, origin).await?;
        let scorecard = load_scorecard(&*tx, customer_id, id).await?;
        tx.commit().await?;
        scorecard.ok_or(StoreError::NotFound { what: "scorecard", id: id.0 })
    }

    /// Soft-deletes a live scorecard and its scores, with an outbox entry so
    /// ClickHouse gets tombstones.
    pub async fn delete_scorecard(
        &self,
        customer_id: CustomerId,
        id: ScorecardId,
        origin: OutboxOrigin,
    ) -> Result<()> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute(
                "UPDATE scorecards SET deleted_at = now()
                 WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL",
                &[&id.0, &customer_id.0],
            )
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound { what: "scorecard", id: id.0 });
        }
        tx.execute(
            "UPDATE scores SET deleted_at = now() WHERE scorecard_id = $1 AND deleted_at IS NULL",
            &[&id.0],
        )
        .await?;
        enqueue(&tx, customer_id, id, origin).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The customer's live scorecard, or `None` (also for another customer's).
    pub async fn get_scorecard(&self, customer_id: CustomerId, id: ScorecardId) -> Result<Option<Scorecard>> {
        let client = self.pool().get().await?;
        load_scorecard(&**client, customer_id, id).await
    }

    /// Live scorecards in id order, starting after `after`.
    pub async fn list_scorecards(
        &self,
        customer_id: CustomerId,
        filter: ScorecardFilter,
        after: Option<ScorecardId>,
        limit: usize,
    ) -> Result<Vec<Scorecard>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id FROM scorecards
                 WHERE customer_id = $1 AND deleted_at IS NULL AND id > $2
                   AND ($3::bigint IS NULL OR template_id = $3)
                   AND ($4::bigint IS NULL OR conversation_id = $4)
                 ORDER BY id LIMIT $5",
                &[
                    &customer_id.0,
                    &after.map_or(0, |s| s.0),
                    &filter.template_id.map(|t| t.0),
                    &filter.conversation_id.map(|c| c.0),
                    &(limit as i64),
                ],
            )
            .await?;
        let ids = rows.iter().map(|r| r.try_get(0).map(ScorecardId)).collect::<Result<Vec<_>, _>>()?;
        load_scorecards(&**client, customer_id, &ids).await
    }
}

/// Upserts the given scores and soft-deletes the scorecard's other live
/// scores. Every touched row gets a new version from the trigger.
async fn write_scores(
    tx: &Transaction<'_>,
    customer_id: CustomerId,
    id: ScorecardId,
    scores: &[Score],
) -> Result<()> {
    let criteria: Vec<i64> = scores.iter().map(|s| s.criterion_id.0).collect();
    let values: Vec<f64> = scores.iter().map(|s| s.value).collect();
    tx.execute(
        "INSERT INTO scores (customer_id, scorecard_id, criterion_id, value)
         SELECT $1, $2, criterion_id, value FROM unnest($3::bigint[], $4::float8[]) AS s(criterion_id, value)
         ON CONFLICT (scorecard_id, criterion_id) DO UPDATE SET value = EXCLUDED.value, deleted_at = NULL",
        &[&customer_id.0, &id.0, &criteria, &values],
    )
    .await?;
    tx.execute(
        "UPDATE scores SET deleted_at = now()
         WHERE scorecard_id = $1 AND deleted_at IS NULL AND criterion_id <> ALL($2)",
        &[&id.0, &criteria],
    )
    .await?;
    Ok(())
}

async fn write_links(tx: &Transaction<'_>, id: ScorecardId, links: &[ConversationId]) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = links.iter().map(|c| c.0).collect();
    tx.execute(
        "INSERT INTO process_scorecard_conversations (scorecard_id, conversation_id) SELECT $1, unnest($2::bigint[])",
        &[&id.0, &ids],
    )
    .await?;
    Ok(())
}
