//! Scorecards and their scores. Every change is committed together with an
//! outbox entry, so ClickHouse learns of it even if this process dies right
//! after the commit.

use scorekeeper_domain::scorecard::{Invalid, Score, Scorecard, Template, check_scores};
use scorekeeper_domain::{
    ConversationId, CriterionId, CustomerId, ScorecardId, ScorecardSource, TemplateId, TemplateType,
};
use tokio_postgres::{GenericClient, Transaction};

use crate::Store;
use crate::codec;
use crate::error::{Result, StoreError};
use crate::outbox::{OutboxOrigin, enqueue};
use crate::templates::load_templates;

/// A scorecard to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewScorecard {
    pub template_id: TemplateId,
    /// Required for conversation templates, absent for process templates.
    pub conversation_id: Option<ConversationId>,
    /// Process templates only.
    pub linked_conversation_ids: Vec<ConversationId>,
    /// Required for process templates; defaults to the conversation's agent.
    pub agent_id: String,
    pub scores: Vec<Score>,
}

/// A change to a scorecard. Scores are replaced; criteria left out lose
/// their score.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ScorecardChange {
    pub scores: Vec<Score>,
    /// Process scorecards only; `None` keeps the links.
    pub linked_conversation_ids: Option<Vec<ConversationId>>,
    /// Process scorecards only; `None` keeps the agent.
    pub agent_id: Option<String>,
    /// Fail with `VersionMismatch` unless the scorecard is at this version.
    pub expected_version: Option<i64>,
}

/// Filters of `list_scorecards`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScorecardFilter {
    pub template_id: Option<TemplateId>,
    pub conversation_id: Option<ConversationId>,
}

const SCORECARD_COLUMNS: &str = "id, customer_id, template_id, template_type, conversation_id, agent_id, \
     source, total_score, version, created_at, updated_at";

impl Store {
    /// Validates the scorecard against its template and stored conversations,
    /// then writes it, its scores and an outbox entry in one transaction.
    /// A rejected request writes nothing.
    pub async fn create_scorecard(
        &self,
        customer_id: CustomerId,
        new: &NewScorecard,
        origin: OutboxOrigin,
    ) -> Result<Scorecard> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let template = template_of(&tx, customer_id, new.template_id, "template_id").await?;
        let total = check_scores(&template, &new.scores, "scores")?;
        let agent_id = match template.template_type {
            TemplateType::Conversation => {
                let Some(conversation_id) = new.conversation_id else {
                    return Err(
                        Invalid::new("conversation_id", "required for a conversation template").into()
                    );
                };
                if !new.linked_conversation_ids.is_empty() {
                    return Err(Invalid::new(
                        "linked_conversation_ids",
                        "only process scorecards link conversations",
                    )
                    .into());
                }
                let conversation_agent = conversation_agent(&tx, customer_id, conversation_id).await?;
                if new.agent_id.is_empty() { conversation_agent } else { new.agent_id.clone() }
            }
            TemplateType::Process => {
                if new.conversation_id.is_some() {
                    return Err(Invalid::new(
                        "conversation_id",
                        "must be empty for a process template; use linked_conversation_ids",
                    )
                    .into());
                }
                if new.agent_id.trim().is_empty() {
                    return Err(Invalid::new("agent_id", "required for a process scorecard").into());
                }
                check_linked(&tx, customer_id, &new.linked_conversation_ids).await?;
                new.agent_id.clone()
            }
        };
        let row = tx
            .query_one(
                "INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source, total_score)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &customer_id.0,
                    &template.id.0,
                    &template.template_type.number(),
                    &new.conversation_id.map(|c| c.0),
                    &agent_id,
                    &ScorecardSource::Manual.number(),
                    &total,
                ],
            )
            .await?;
        let id = ScorecardId(row.try_get(0)?);
        write_scores(&tx, customer_id, id, &new.scores).await?;
        write_links(&tx, id, &new.linked_conversation_ids).await?;
        enqueue(&tx, customer_id, id, origin).await?;
        let scorecard = load_scorecard(&*tx, customer_id, id).await?;
        tx.commit().await?;
        scorecard.ok_or(StoreError::NotFound { what: "scorecard", id: id.0 })
    }

    /// Replaces a live scorecard's scores (and, for process scorecards, its
    /// links and agent when given), with an outbox entry, in one transaction.
    pub async fn update_scorecard(
        &self,
        customer_id: CustomerId,
        id: ScorecardId,
        change: &ScorecardChange,
        origin: OutboxOrigin,
    ) -> Result<Scorecard> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let current = tx
            .query_opt(
                "SELECT template_id, template_type, version FROM scorecards
                 WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL FOR UPDATE",
                &[&id.0, &customer_id.0],
            )
            .await?
            .ok_or(StoreError::NotFound { what: "scorecard", id: id.0 })?;
        let template_id = TemplateId(current.try_get(0)?);
        let template_type = codec::template_type(current.try_get(1)?)?;
        let version: i64 = current.try_get(2)?;
        if let Some(expected) = change.expected_version
            && expected != version
        {
            return Err(StoreError::VersionMismatch {
                what: "scorecard",
                id: id.0,
                expected,
                actual: version,
            });
        }
        if !template_type.is_process() {
            if change.linked_conversation_ids.as_ref().is_some_and(|l| !l.is_empty()) {
                return Err(Invalid::new(
                    "linked_conversation_ids",
                    "only process scorecards link conversations",
                )
                .into());
            }
            if change.agent_id.is_some() {
                return Err(Invalid::new(
                    "agent_id",
                    "a conversation scorecard's agent is the conversation's",
                )
                .into());
            }
        }
        let template = template_of(&tx, customer_id, template_id, "id").await?;
        let total = check_scores(&template, &change.scores, "scores")?;
        if let Some(links) = &change.linked_conversation_ids {
            check_linked(&tx, customer_id, links).await?;
            tx.execute("DELETE FROM process_scorecard_conversations WHERE scorecard_id = $1", &[&id.0])
                .await?;
            write_links(&tx, id, links).await?;
        }
        tx.execute(
            "UPDATE scorecards SET total_score = $2, agent_id = coalesce($3, agent_id) WHERE id = $1",
            &[&id.0, &total, &change.agent_id],
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

    /// Creates or updates the one AUTOQA scorecard of (conversation,
    /// template) with these scores. Writes nothing, and returns `false`, when
    /// the live scorecard already holds exactly these scores and agent.
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
        let inserted = tx
            .query_opt(
                "INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source, total_score)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (conversation_id, template_id) WHERE source = 2 DO NOTHING
                 RETURNING id",
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
                        "SELECT id, agent_id, deleted_at IS NOT NULL FROM scorecards
                         WHERE conversation_id = $1 AND template_id = $2 AND source = 2 FOR UPDATE",
                        &[&conversation_id.0, &template.id.0],
                    )
                    .await?;
                let id = ScorecardId(row.try_get(0)?);
                let same_agent = row.try_get::<_, String>(1)? == agent_id;
                let deleted: bool = row.try_get(2)?;
                let mut wanted: Vec<(i64, f64)> =
                    scores.iter().map(|s| (s.criterion_id.0, s.value)).collect();
                wanted.sort_by_key(|s| s.0);
                let stored = live_scores(&*tx, id).await?;
                let same_scores = stored.len() == wanted.len()
                    && stored.iter().zip(&wanted).all(|(s, w)| s.criterion_id.0 == w.0 && s.value == w.1);
                if same_agent && !deleted && same_scores {
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

async fn template_of(
    tx: &Transaction<'_>,
    customer_id: CustomerId,
    id: TemplateId,
    field: &str,
) -> Result<Template> {
    load_templates(tx, customer_id, &[id.0])
        .await?
        .pop()
        .ok_or_else(|| Invalid::new(field, format!("unknown template {id}")).into())
}

/// The agent of the customer's live conversation; unknown is invalid input.
async fn conversation_agent(
    tx: &Transaction<'_>,
    customer_id: CustomerId,
    id: ConversationId,
) -> Result<String> {
    let row = tx
        .query_opt(
            "SELECT agent_id FROM conversations WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL",
            &[&id.0, &customer_id.0],
        )
        .await?
        .ok_or_else(|| Invalid::new("conversation_id", format!("unknown conversation {id}")))?;
    Ok(row.try_get(0)?)
}

async fn check_linked(tx: &Transaction<'_>, customer_id: CustomerId, ids: &[ConversationId]) -> Result<()> {
    let wanted: Vec<i64> = ids.iter().map(|c| c.0).collect();
    let rows = tx
        .query(
            "SELECT id FROM conversations WHERE customer_id = $1 AND id = ANY($2) AND deleted_at IS NULL",
            &[&customer_id.0, &wanted],
        )
        .await?;
    let found: std::collections::HashSet<i64> =
        rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    for (index, id) in ids.iter().enumerate() {
        if !found.contains(&id.0) {
            return Err(Invalid::new(
                format!("linked_conversation_ids[{index}]"),
                format!("unknown conversation {id}"),
            )
            .into());
        }
    }
    let mut unique = wanted.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != wanted.len() {
        return Err(Invalid::new("linked_conversation_ids", "a conversation is linked twice").into());
    }
    Ok(())
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

async fn live_scores(client: &impl GenericClient, id: ScorecardId) -> Result<Vec<Score>> {
    let rows = client
        .query(
            "SELECT criterion_id, value FROM scores WHERE scorecard_id = $1 AND deleted_at IS NULL ORDER BY criterion_id",
            &[&id.0],
        )
        .await?;
    rows.iter()
        .map(|r| Ok(Score { criterion_id: CriterionId(r.try_get(0)?), value: r.try_get(1)? }))
        .collect()
}

async fn load_scorecard(
    client: &impl GenericClient,
    customer_id: CustomerId,
    id: ScorecardId,
) -> Result<Option<Scorecard>> {
    Ok(load_scorecards(client, customer_id, &[id]).await?.pop())
}

/// Live scorecards with scores and links, in id order.
async fn load_scorecards(
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
            id: ScorecardId(row.try_get(0)?),
            customer_id: CustomerId(row.try_get(1)?),
            template_id: TemplateId(row.try_get(2)?),
            template_type: codec::template_type(row.try_get(3)?)?,
            conversation_id: row.try_get::<_, Option<i64>>(4)?.map(ConversationId),
            linked_conversation_ids: Vec::new(),
            agent_id: row.try_get(5)?,
            source: codec::source(row.try_get(6)?)?,
            scores: Vec::new(),
            total_score: row.try_get(7)?,
            version: row.try_get(8)?,
            created_at: row.try_get(9)?,
            updated_at: row.try_get(10)?,
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
        if let Some(i) = position(row.try_get(0)?, &scorecards) {
            scorecards[i]
                .scores
                .push(Score { criterion_id: CriterionId(row.try_get(1)?), value: row.try_get(2)? });
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
        if let Some(i) = position(row.try_get(0)?, &scorecards) {
            scorecards[i].linked_conversation_ids.push(ConversationId(row.try_get(1)?));
        }
    }
    Ok(scorecards)
}
