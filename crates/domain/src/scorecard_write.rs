//! What a scorecard create, update or AutoQA scoring writes, decided from
//! the request and the facts the store loaded for it: the business rules
//! of conversation and process scorecards (agent, links, total) and of
//! which templates and conversations AutoQA scores, each written once. Pure: the store reads the facts before and writes the
//! decision after; nothing here touches a database.
//!
//! The checks of one decision run in a fixed order, and that order decides
//! which error a request with several faults gets. The API's end-to-end
//! tests (`bad_input`, `tenancy`, `hostile_strings`, `fuzz_validation`)
//! hold the codes, fields and messages; change them together.

use std::collections::HashSet;

use crate::autoqa::{CompiledRule, Rule};
use crate::ids::{ConversationId, TemplateId};
use crate::scorecard::{Criterion, Invalid, Score, Template, check_scores};
use crate::scoring::TemplateType;

/// A scorecard to create, as the API received it: the shape of each field
/// is already checked (positive ids, sizes, finite values, no NUL, a given
/// agent not blank); [`NewScorecard::decide`] checks it against what is
/// stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NewScorecard {
    pub template_id: TemplateId,
    /// Required for conversation templates, absent for process templates.
    pub conversation_id: Option<ConversationId>,
    /// Process templates only.
    pub linked_conversation_ids: Vec<ConversationId>,
    /// Required for process templates; empty on a conversation template
    /// means the conversation's agent.
    pub agent_id: String,
    pub scores: Vec<Score>,
}

/// What the store read for a create, all of it before deciding (it is
/// read in one pipelined round trip).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateFacts {
    /// The customer's template `template_id` with its criteria, or `None`
    /// (also for another customer's).
    pub template: Option<Template>,
    /// The agent of `conversation_id` when that is a live conversation of
    /// the customer; `None` otherwise, or when no conversation was named.
    pub conversation_agent: Option<String>,
    /// Those of `linked_conversation_ids` that are live conversations of
    /// the customer.
    pub live_linked: HashSet<ConversationId>,
}

/// What a valid create writes besides the request's own fields.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateDecision {
    /// The template's kind, stored on the scorecard.
    pub template_type: TemplateType,
    /// The agent given, or for a conversation scorecard without one, the
    /// conversation's.
    pub agent_id: String,
    /// The weighted total of the scores ([`crate::scoring::total_score`]).
    pub total_score: f64,
}

impl NewScorecard {
    /// Decides the agent and the total, or names the field that makes the
    /// request invalid. Order of the checks: the template is known; the
    /// scores fit it; then by the template's kind, for a conversation
    /// template: a conversation is named, nothing is linked, the
    /// conversation is live; for a process template: no conversation is
    /// named, an agent is, every linked conversation is live and linked
    /// once.
    pub fn decide(&self, facts: &CreateFacts) -> Result<CreateDecision, Invalid> {
        let template = known_template(facts.template.as_ref(), self.template_id, "template_id")?;
        let total_score = check_scores(template, &self.scores, "scores")?;
        let agent_id = match template.template_type {
            TemplateType::Conversation => {
                let Some(conversation_id) = self.conversation_id else {
                    return Err(Invalid::new("conversation_id", "required for a conversation template"));
                };
                links_fit(template.template_type, &self.linked_conversation_ids)?;
                let Some(conversation_agent) = &facts.conversation_agent else {
                    return Err(Invalid::new(
                        "conversation_id",
                        format!("unknown conversation {conversation_id}"),
                    ));
                };
                if self.agent_id.is_empty() { conversation_agent.clone() } else { self.agent_id.clone() }
            }
            TemplateType::Process => {
                if self.conversation_id.is_some() {
                    return Err(Invalid::new(
                        "conversation_id",
                        "must be empty for a process template; use linked_conversation_ids",
                    ));
                }
                // Empty, not blank: a blank agent is a malformed field, which
                // the API refuses before anything is read.
                if self.agent_id.is_empty() {
                    return Err(Invalid::new("agent_id", "required for a process scorecard"));
                }
                links_live(&self.linked_conversation_ids, &facts.live_linked)?;
                self.agent_id.clone()
            }
        };
        Ok(CreateDecision { template_type: template.template_type, agent_id, total_score })
    }
}

/// A change to a scorecard, as the API received it (shapes checked as for
/// [`NewScorecard`]). Scores are replaced; criteria left out lose their
/// score.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ScorecardChange {
    pub scores: Vec<Score>,
    /// Process scorecards only; `None` keeps the links.
    pub linked_conversation_ids: Option<Vec<ConversationId>>,
    /// Process scorecards only; `None` keeps the agent.
    pub agent_id: Option<String>,
    /// Refuse the change unless the scorecard is at this version.
    pub expected_version: Option<i64>,
}

/// What the store read for an update: the live scorecard (locked until
/// the write commits), its template and the linked conversations.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeFacts {
    /// The kind of the scorecard being changed.
    pub template_type: TemplateType,
    /// Its version now.
    pub version: i64,
    /// Its template's id.
    pub template_id: TemplateId,
    /// That template with its criteria, `None` if it is gone.
    pub template: Option<Template>,
    /// Those of the change's `linked_conversation_ids` that are live
    /// conversations of the customer.
    pub live_linked: HashSet<ConversationId>,
}

/// What a valid change writes besides its scores.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeDecision<'a> {
    /// The weighted total of the new scores.
    pub total_score: f64,
    /// The links that replace the stored ones; `None` keeps them.
    pub links: Option<&'a [ConversationId]>,
    /// The agent that replaces the stored one; `None` keeps it.
    pub agent_id: Option<&'a str>,
}

/// Why a change is refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ChangeRefused {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Optimistic concurrency: the scorecard changed since the caller read
    /// it.
    #[error("the scorecard is at version {actual}, not {expected}")]
    StaleVersion { expected: i64, actual: i64 },
}

impl ScorecardChange {
    /// Decides the total and what replaces the links and agent, or refuses.
    /// Order of the checks: the expected version; on a conversation
    /// scorecard, nothing linked and no agent given; the template is
    /// known; the scores fit it; every linked conversation is live and
    /// linked once.
    pub fn decide(&self, facts: &ChangeFacts) -> Result<ChangeDecision<'_>, ChangeRefused> {
        if let Some(expected) = self.expected_version
            && expected != facts.version
        {
            return Err(ChangeRefused::StaleVersion { expected, actual: facts.version });
        }
        links_fit(facts.template_type, self.linked_conversation_ids.as_deref().unwrap_or_default())?;
        if !facts.template_type.is_process() && self.agent_id.is_some() {
            return Err(
                Invalid::new("agent_id", "a conversation scorecard's agent is the conversation's").into()
            );
        }
        let template = known_template(facts.template.as_ref(), facts.template_id, "id")?;
        let total_score = check_scores(template, &self.scores, "scores")?;
        if let Some(links) = &self.linked_conversation_ids {
            links_live(links, &facts.live_linked)?;
        }
        Ok(ChangeDecision {
            total_score,
            links: self.linked_conversation_ids.as_deref(),
            agent_id: self.agent_id.as_deref(),
        })
    }
}

/// A template AutoQA can score with, and its criteria that carry a rule,
/// each rule prepared once (compiled, or compiled and admitted by a cost
/// model: `R` is what the caller's `prepare` makes of a rule).
#[derive(Debug)]
pub struct AutoQaTemplate<'t, R = CompiledRule> {
    pub template: &'t Template,
    /// In template order.
    pub rules: Vec<(&'t Criterion, R)>,
}

/// The template AutoQA scores with, or why `template` (what the store found
/// for `template_id`) cannot be autoscored. Order of the checks: the
/// template is known; it is a conversation template; every rule is
/// prepared by `prepare` (e.g. [`Rule::compile`]), whose error is the
/// reason given for `criteria[i].autoqa_rule`; at least one criterion has
/// a rule.
pub fn autoqa_template<R, E: std::error::Error>(
    template: Option<&Template>,
    template_id: TemplateId,
    mut prepare: impl FnMut(&Rule) -> Result<R, E>,
) -> Result<AutoQaTemplate<'_, R>, Invalid> {
    let template = known_template(template, template_id, "template_id")?;
    if template.template_type.is_process() {
        return Err(Invalid::new("template_id", "AutoQA scores conversations; this is a process template"));
    }
    let mut prepared = Vec::new();
    for (index, criterion) in template.criteria.iter().enumerate() {
        if let Some(rule) = &criterion.rule {
            let rule = prepare(rule).map_err(|e| {
                Invalid::new(format!("criteria[{index}].autoqa_rule"), crate::report::error_chain(&e))
            })?;
            prepared.push((criterion, rule));
        }
    }
    if prepared.is_empty() {
        return Err(Invalid::new("template_id", "the template has no criterion with an AutoQA rule"));
    }
    Ok(AutoQaTemplate { template, rules: prepared })
}

/// Every conversation asked to be autoscored is among those the store
/// found (`found`, in id order); the first one that is not is named by its
/// index in `requested`.
pub fn autoqa_conversations_found(
    requested: &[ConversationId],
    found: &[ConversationId],
) -> Result<(), Invalid> {
    match requested.iter().enumerate().find(|(_, id)| found.binary_search(id).is_err()) {
        Some((index, missing)) => {
            Err(Invalid::new(format!("conversation_ids[{index}]"), format!("unknown conversation {missing}")))
        }
        None => Ok(()),
    }
}

/// The AUTOQA scorecard of a (conversation, template) as stored, for
/// [`StoredAutoQa::holds`].
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAutoQa {
    pub agent_id: String,
    pub deleted: bool,
    /// Its live scores, in criterion id order.
    pub scores: Vec<Score>,
}

impl StoredAutoQa {
    /// Whether the stored scorecard already is what a new scoring with
    /// `agent_id` and `scores` (in any order) would write: live, the same
    /// agent, exactly the same scores. Then the scoring writes nothing, so
    /// re-running AutoQA on unchanged transcripts sends nothing to
    /// ClickHouse.
    pub fn holds(&self, agent_id: &str, scores: &[Score]) -> bool {
        let mut wanted = scores.to_vec();
        wanted.sort_by_key(|s| s.criterion_id);
        !self.deleted && self.agent_id == agent_id && self.scores == wanted
    }
}

/// The template the store found for `id`, or "unknown template" on `field`.
fn known_template<'t>(
    template: Option<&'t Template>,
    id: TemplateId,
    field: &str,
) -> Result<&'t Template, Invalid> {
    template.ok_or_else(|| Invalid::new(field, format!("unknown template {id}")))
}

/// Only process scorecards link conversations: the one rule of create and
/// update on the kind of a scorecard with links.
fn links_fit(template_type: TemplateType, links: &[ConversationId]) -> Result<(), Invalid> {
    if !template_type.is_process() && !links.is_empty() {
        return Err(Invalid::new("linked_conversation_ids", "only process scorecards link conversations"));
    }
    Ok(())
}

/// Every linked conversation is among the customer's live ones (`live`),
/// and none is linked twice. The first unknown one is named by index.
fn links_live(links: &[ConversationId], live: &HashSet<ConversationId>) -> Result<(), Invalid> {
    if let Some((index, id)) = links.iter().enumerate().find(|(_, id)| !live.contains(id)) {
        return Err(Invalid::new(
            format!("linked_conversation_ids[{index}]"),
            format!("unknown conversation {id}"),
        ));
    }
    let unique: HashSet<&ConversationId> = links.iter().collect();
    if unique.len() != links.len() {
        return Err(Invalid::new("linked_conversation_ids", "a conversation is linked twice"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
