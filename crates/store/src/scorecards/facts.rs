//! The stored facts a scorecard create or update is decided on
//! (`scorekeeper_domain::scorecard_write`): the template with its criteria,
//! the named conversation's agent, which linked conversations are live,
//! and for an update the scorecard itself, locked.

use std::collections::HashSet;

use scorekeeper_domain::scorecard::Template;
use scorekeeper_domain::scorecard_write::{ChangeFacts, CreateFacts, NewScorecard, ScorecardChange};
use scorekeeper_domain::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};

use crate::codec;
use crate::error::{Result, StoreError};
use crate::templates::{criterion, load_templates};

/// Every read a create may need, sent at once on one connection (one round
/// trip), each as a statement prepared once per connection. They take no
/// locks (READ COMMITTED, as the transaction they replaced): a
/// conversation deleted meanwhile is caught by neither.
pub(super) async fn for_create(
    client: &deadpool_postgres::Client,
    customer_id: CustomerId,
    new: &NewScorecard,
) -> Result<CreateFacts> {
    let (template, conversation_agent, live_linked) = futures::try_join!(
        template_with_criteria(client, customer_id, new.template_id),
        async {
            match new.conversation_id {
                Some(id) => live_conversation_agent(client, customer_id, id).await,
                None => Ok(None),
            }
        },
        live_conversations(client, customer_id, &new.linked_conversation_ids),
    )?;
    Ok(CreateFacts { template, conversation_agent, live_linked })
}

/// The customer's live scorecard `id`, locked `FOR UPDATE` until `tx`
/// ends, with its template and which of the change's links are live (those
/// two read at once). `NotFound` when there is no such scorecard, also for
/// another customer's.
pub(super) async fn for_change(
    tx: &deadpool_postgres::Transaction<'_>,
    customer_id: CustomerId,
    id: ScorecardId,
    change: &ScorecardChange,
) -> Result<ChangeFacts> {
    let current = tx
        .query_opt(
            "SELECT template_id, template_type, version FROM scorecards
             WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL FOR UPDATE",
            &[&id.0, &customer_id.0],
        )
        .await?
        .ok_or(StoreError::NotFound { what: "scorecard", id: id.0 })?;
    let template_id = TemplateId(current.try_get("template_id")?);
    let template_ids = [template_id.0];
    let links = change.linked_conversation_ids.as_deref().unwrap_or_default();
    let (mut templates, live_linked) = futures::try_join!(
        load_templates(&**tx, customer_id, &template_ids),
        live_conversations(tx, customer_id, links),
    )?;
    Ok(ChangeFacts {
        template_type: codec::template_type(current.try_get("template_type")?)?,
        version: current.try_get("version")?,
        template_id,
        template: templates.pop(),
        live_linked,
    })
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
        template.criteria.push(criterion(row, CriterionId(criterion_id))?);
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

/// Which of `ids` are the customer's live conversations; no query for none.
async fn live_conversations(
    client: &impl deadpool_postgres::GenericClient,
    customer_id: CustomerId,
    ids: &[ConversationId],
) -> Result<HashSet<ConversationId>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<i64> = ids.iter().map(|c| c.0).collect();
    let statement = client
        .prepare_cached(
            "SELECT id FROM conversations WHERE customer_id = $1 AND id = ANY($2) AND deleted_at IS NULL",
        )
        .await?;
    let rows = client.query(&statement, &[&customer_id.0, &ids]).await?;
    rows.iter().map(|r| Ok(ConversationId(r.try_get(0)?))).collect()
}
