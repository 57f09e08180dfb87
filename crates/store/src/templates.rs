//! Scorecard templates and their criteria.

use std::collections::HashMap;

use scorekeeper_domain::scorecard::{Criterion, NewTemplate, Template};
use scorekeeper_domain::scoring::CriterionScale;
use scorekeeper_domain::{CriterionId, CustomerId, TemplateId};
use tokio_postgres::GenericClient;

use crate::Store;
use crate::codec;
use crate::error::Result;

impl Store {
    pub async fn create_template(&self, customer_id: CustomerId, new: &NewTemplate) -> Result<Template> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "INSERT INTO scorecard_templates (customer_id, name, template_type)
                 VALUES ($1, $2, $3) RETURNING id",
                &[&customer_id.0, &new.name, &new.template_type.number()],
            )
            .await?;
        let template_id: i64 = row.try_get(0)?;
        for (position, criterion) in new.criteria.iter().enumerate() {
            tx.execute(
                "INSERT INTO criteria (template_id, position, name, weight, min_value, max_value, autoqa_rule)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &template_id,
                    &(position as i32),
                    &criterion.name,
                    &criterion.scale.weight,
                    &criterion.scale.min_value,
                    &criterion.scale.max_value,
                    &codec::rule_json(&criterion.rule),
                ],
            )
            .await?;
        }
        let template = load_templates(&*tx, customer_id, &[template_id]).await?.pop();
        tx.commit().await?;
        Ok(template.expect("the template was inserted in this transaction"))
    }

    /// The customer's template, or `None` (also for another customer's).
    pub async fn get_template(&self, customer_id: CustomerId, id: TemplateId) -> Result<Option<Template>> {
        let client = self.pool().get().await?;
        Ok(load_templates(&**client, customer_id, &[id.0]).await?.pop())
    }

    /// Templates in id order, starting after `after`.
    pub async fn list_templates(
        &self,
        customer_id: CustomerId,
        after: Option<TemplateId>,
        limit: usize,
    ) -> Result<Vec<Template>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id FROM scorecard_templates WHERE customer_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&customer_id.0, &after.map_or(0, |t| t.0), &(limit as i64)],
            )
            .await?;
        let ids = rows.iter().map(|r| r.try_get(0)).collect::<Result<Vec<i64>, _>>()?;
        load_templates(&**client, customer_id, &ids).await
    }
}

/// Loads templates with their criteria, in id order; ids of other
/// customers are skipped.
pub(crate) async fn load_templates(
    client: &impl GenericClient,
    customer_id: CustomerId,
    ids: &[i64],
) -> Result<Vec<Template>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT id, name, template_type, created_at FROM scorecard_templates
             WHERE customer_id = $1 AND id = ANY($2) ORDER BY id",
            &[&customer_id.0, &ids],
        )
        .await?;
    let mut templates = Vec::with_capacity(rows.len());
    let mut index = HashMap::new();
    for row in rows {
        let id: i64 = row.try_get("id")?;
        index.insert(id, templates.len());
        templates.push(Template {
            id: TemplateId(id),
            customer_id,
            name: row.try_get("name")?,
            template_type: codec::template_type(row.try_get("template_type")?)?,
            criteria: Vec::new(),
            created_at: row.try_get("created_at")?,
        });
    }
    let found: Vec<i64> = index.keys().copied().collect();
    let criteria = client
        .query(
            "SELECT template_id, id, name, weight, min_value, max_value, autoqa_rule FROM criteria
             WHERE template_id = ANY($1) ORDER BY template_id, position",
            &[&found],
        )
        .await?;
    for row in criteria {
        let template_id: i64 = row.try_get("template_id")?;
        templates[index[&template_id]].criteria.push(criterion(&row, CriterionId(row.try_get("id")?))?);
    }
    Ok(templates)
}

/// The criterion `id` of a row with the `criteria` columns `name`,
/// `weight`, `min_value`, `max_value` and `autoqa_rule`.
pub(crate) fn criterion(row: &tokio_postgres::Row, id: CriterionId) -> Result<Criterion> {
    Ok(Criterion {
        id,
        name: row.try_get("name")?,
        scale: CriterionScale {
            weight: row.try_get("weight")?,
            min_value: row.try_get("min_value")?,
            max_value: row.try_get("max_value")?,
        },
        rule: codec::rule(row.try_get("autoqa_rule")?)?,
    })
}
