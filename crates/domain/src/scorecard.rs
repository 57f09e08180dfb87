//! Templates and scorecards as the domain sees them, and the checks a
//! scorecard must pass against its template before anything is written.

use chrono::{DateTime, Utc};

use crate::autoqa::Rule;
use crate::ids::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};
use crate::scoring::{CriterionScale, ScorecardSource, TemplateType, total_score};

/// A request that cannot be carried out as given, naming the offending field
/// (as the API spells it) so clients can point at it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid { field: field.into(), reason: reason.into() }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    pub id: CriterionId,
    pub name: String,
    pub scale: CriterionScale,
    pub rule: Option<Rule>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub id: TemplateId,
    pub customer_id: CustomerId,
    pub name: String,
    pub template_type: TemplateType,
    /// In template order.
    pub criteria: Vec<Criterion>,
    pub created_at: DateTime<Utc>,
}

/// A template to create; criteria ids are assigned by the store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewTemplate {
    pub name: String,
    pub template_type: TemplateType,
    pub criteria: Vec<NewCriterion>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewCriterion {
    pub name: String,
    pub scale: CriterionScale,
    pub rule: Option<Rule>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub criterion_id: CriterionId,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scorecard {
    pub id: ScorecardId,
    pub customer_id: CustomerId,
    pub template_id: TemplateId,
    pub template_type: TemplateType,
    pub conversation_id: Option<ConversationId>,
    pub linked_conversation_ids: Vec<ConversationId>,
    pub agent_id: String,
    pub source: ScorecardSource,
    /// Live scores, in criterion id order.
    pub scores: Vec<Score>,
    pub total_score: f64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Checks `scores` against the template (each criterion known, scored once,
/// within its range) and returns the weighted total. `field` is the request
/// field the scores came in, for the error.
pub fn check_scores(template: &Template, scores: &[Score], field: &str) -> Result<f64, Invalid> {
    let mut seen = std::collections::HashSet::with_capacity(scores.len());
    let mut scored = Vec::with_capacity(scores.len());
    for (index, score) in scores.iter().enumerate() {
        let Some(criterion) = template.criteria.iter().find(|c| c.id == score.criterion_id) else {
            return Err(Invalid::new(
                format!("{field}[{index}].criterion_id"),
                format!("criterion {} is not on template {}", score.criterion_id, template.id),
            ));
        };
        if !seen.insert(score.criterion_id) {
            return Err(Invalid::new(
                format!("{field}[{index}].criterion_id"),
                format!("criterion {} is scored twice", score.criterion_id),
            ));
        }
        if !criterion.scale.accepts(score.value) {
            return Err(Invalid::new(
                format!("{field}[{index}].value"),
                format!(
                    "{} is outside [{}, {}] of criterion {}",
                    score.value, criterion.scale.min_value, criterion.scale.max_value, criterion.id
                ),
            ));
        }
        scored.push((criterion.scale, score.value));
    }
    Ok(total_score(scored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template {
            id: TemplateId(7),
            customer_id: CustomerId(1),
            name: "t".into(),
            template_type: TemplateType::Conversation,
            criteria: vec![Criterion {
                id: CriterionId(70),
                name: "greeting".into(),
                scale: CriterionScale { weight: 1.0, min_value: 0.0, max_value: 5.0 },
                rule: None,
            }],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn scores_are_checked_against_the_template() {
        let t = template();
        let ok = [Score { criterion_id: CriterionId(70), value: 5.0 }];
        assert_eq!(check_scores(&t, &ok, "scores"), Ok(100.0));

        let unknown = [Score { criterion_id: CriterionId(71), value: 1.0 }];
        assert_eq!(check_scores(&t, &unknown, "scores").unwrap_err().field, "scores[0].criterion_id");

        let out_of_range = [Score { criterion_id: CriterionId(70), value: 6.0 }];
        assert_eq!(check_scores(&t, &out_of_range, "scores").unwrap_err().field, "scores[0].value");

        let twice = [ok[0], ok[0]];
        assert_eq!(check_scores(&t, &twice, "scores").unwrap_err().field, "scores[1].criterion_id");
    }
}
