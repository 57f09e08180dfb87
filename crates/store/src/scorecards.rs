//! Scorecards and their scores. Every change is committed together with an
//! outbox entry, so ClickHouse learns of it even if this process dies right
//! after the commit.

use std::collections::HashSet;

use scorekeeper_domain::scorecard::{Criterion, Invalid, Score, Scorecard, Template, check_scores};
use scorekeeper_domain::scoring::CriterionScale;
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

const SCORECARD_COLUMNS: &str = "id, customer_id, template_id, template_type, conversation_id, agent_id, \
     source, total_score, version, created_at, updated_at";

impl Store {
    /// Validates the scorecard against its template and stored conversations,
    /// then writes it, its scores, its links and an outbox entry in one
    /// statement, which commits all of them or nothing. A rejected request
    /// writes nothing.
    ///
    /// This is the hot path of the API, so it costs two round trips on one
    /// connection: the reads (template, conversation or linked
    /// conversations) pipelined, then the write, both as statements prepared
    /// once per connection. The reads take no locks, as the transaction
    /// they replace took none either (READ COMMITTED): a conversation
    /// deleted meanwhile is caught by neither.
    pub async fn create_scorecard(
        &self,
        customer_id: CustomerId,
        new: &NewScorecard,
        origin: OutboxOrigin,
    ) -> Result<Scorecard> {
        let client = self.pool().get().await?;
        let linked_ids: Vec<i64> = new.linked_conversation_ids.iter().map(|c| c.0).collect();
        // Every read the checks below may need, sent at once; the checks then
        // run in the order that decides which error a bad request gets.
        let (template, conversation_agent, linked_found) = futures::try_join!(
            template_with_criteria(&client, customer_id, new.template_id),
            async {
                match new.conversation_id {
                    Some(id) => live_conversation_agent(&client, customer_id, id).await,
                    None => Ok(None),
                }
            },
            live_conversations(&client, customer_id, &linked_ids),
        )?;
        let template = template
            .ok_or_else(|| Invalid::new("template_id", format!("unknown template {}", new.template_id)))?;
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
                let conversation_agent = conversation_agent.ok_or_else(|| {
                    Invalid::new("conversation_id", format!("unknown conversation {conversation_id}"))
                })?;
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
                check_linked_found(&new.linked_conversation_ids, &linked_found)?;
                new.agent_id.clone()
            }
        };
        let criteria: Vec<i64> = new.scores.iter().map(|s| s.criterion_id.0).collect();
        let values: Vec<f64> = new.scores.iter().map(|s| s.value).collect();
        let insert = client.prepare_cached(INSERT_SCORECARD).await?;
        let row = client
            .query_one(
                &insert,
                &[
                    &customer_id.0,
                    &template.id.0,
                    &template.template_type.number(),
                    &new.conversation_id.map(|c| c.0),
                    &agent_id,
                    &ScorecardSource::Manual.number(),
                    &total,
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
            template_id: template.id,
            template_type: template.template_type,
            conversation_id: new.conversation_id,
            linked_conversation_ids,
            agent_id,
            source: ScorecardSource::Manual,
            scores,
            total_score: total,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
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
        let template_id = TemplateId(current.try_get("template_id")?);
        let template_type = codec::template_type(current.try_get("template_type")?)?;
        let version: i64 = current.try_get("version")?;
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
                let same_agent = row.try_get::<_, String>("agent_id")? == agent_id;
                let deleted: bool = row.try_get("is_deleted")?;
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

/// The customer's template `id` with its criteria, or `None` (also for
/// another customer's): one prepared statement.
async fn template_with_criteria(
    client: &deadpool_postgres::Client,
    customer_id: CustomerId,
    id: TemplateId,
) -> Result<Option<Template>> {
    let statement = client
        .prepare_cached(
            "SELECT t.name AS template_name, t.template_type, t.created_at AS template_created_at,
                    c.id, c.name, c.weight, c.min_value, c.max_value, c.autoqa_rule
             FROM scorecard_templates t LEFT JOIN criteria c ON c.template_id = t.id
             WHERE t.customer_id = $1 AND t.id = $2 ORDER BY c.position",
        )
        .await?;
    let rows = client.query(&statement, &[&customer_id.0, &id.0]).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let mut template = Template {
        id,
        customer_id,
        name: first.try_get("template_name")?,
        template_type: codec::template_type(first.try_get("template_type")?)?,
        criteria: Vec::with_capacity(rows.len()),
        created_at: first.try_get("template_created_at")?,
    };
    for row in &rows {
        // A template without criteria comes back as one row of NULLs.
        let Some(criterion_id) = row.try_get::<_, Option<i64>>("id")? else { continue };
        template.criteria.push(Criterion {
            id: CriterionId(criterion_id),
            name: row.try_get("name")?,
            scale: CriterionScale {
                weight: row.try_get("weight")?,
                min_value: row.try_get("min_value")?,
                max_value: row.try_get("max_value")?,
            },
            rule: codec::rule(row.try_get("autoqa_rule")?)?,
        });
    }
    Ok(Some(template))
}

/// The agent of the customer's live conversation, or `None`.
async fn live_conversation_agent(
    client: &deadpool_postgres::Client,
    customer_id: CustomerId,
    id: ConversationId,
) -> Result<Option<String>> {
    let statement = client
        .prepare_cached(
            "SELECT agent_id FROM conversations WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL",
        )
        .await?;
    let row = client.query_opt(&statement, &[&id.0, &customer_id.0]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Which of `ids` are the customer's live conversations.
async fn live_conversations(
    client: &impl deadpool_postgres::GenericClient,
    customer_id: CustomerId,
    ids: &[i64],
) -> Result<HashSet<i64>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let statement = client
        .prepare_cached(
            "SELECT id FROM conversations WHERE customer_id = $1 AND id = ANY($2) AND deleted_at IS NULL",
        )
        .await?;
    let rows = client.query(&statement, &[&customer_id.0, &ids]).await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
}

async fn check_linked(
    tx: &deadpool_postgres::Transaction<'_>,
    customer_id: CustomerId,
    ids: &[ConversationId],
) -> Result<()> {
    let wanted: Vec<i64> = ids.iter().map(|c| c.0).collect();
    let found = live_conversations(tx, customer_id, &wanted).await?;
    check_linked_found(ids, &found)
}

/// Every linked conversation is among the customer's live ones (`found`),
/// and none is linked twice.
fn check_linked_found(ids: &[ConversationId], found: &HashSet<i64>) -> Result<()> {
    for (index, id) in ids.iter().enumerate() {
        if !found.contains(&id.0) {
            return Err(Invalid::new(
                format!("linked_conversation_ids[{index}]"),
                format!("unknown conversation {id}"),
            )
            .into());
        }
    }
    let mut unique: Vec<i64> = ids.iter().map(|c| c.0).collect();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != ids.len() {
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
        .map(|r| {
            Ok(Score { criterion_id: CriterionId(r.try_get("criterion_id")?), value: r.try_get("value")? })
        })
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
