//! Conversions between the wire types and the domain, with validation. The
//! rest of the code never sees a prost type.

use scorekeeper_domain::autoqa::{PatternType, Rule, RuleKind};
use scorekeeper_domain::limits::{
    MAX_CRITERIA_PER_TEMPLATE, MAX_CRITERION_VALUE_MAGNITUDE, MAX_CRITERION_WEIGHT, MAX_MESSAGE_TEXT_BYTES,
    MAX_MESSAGES_PER_CONVERSATION, MAX_NAME_BYTES, MAX_PATTERN_BYTES, MAX_TRANSCRIPT_TEXT_BYTES,
};
use scorekeeper_domain::scorecard::{Criterion, NewCriterion, NewTemplate, Score, Scorecard, Template};
use scorekeeper_domain::scoring::CriterionScale;
use scorekeeper_domain::transcript::{Message, Speaker};
use scorekeeper_domain::{CriterionId, Invalid, ScorecardSource, TemplateType};
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1;
use scorekeeper_store::conversations::{Conversation, NewConversation};

use crate::validate::{self, Checked};

pub fn template_type_from_wire(field: &str, value: i32) -> Checked<TemplateType> {
    match validate::known_enum::<pb::ScorecardTemplateType>(field, value, false)? {
        pb::ScorecardTemplateType::Conversation => Ok(TemplateType::Conversation),
        pb::ScorecardTemplateType::Process => Ok(TemplateType::Process),
        pb::ScorecardTemplateType::Unspecified => Err(Invalid::new(field, "required")),
    }
}

pub fn template_type_to_wire(value: TemplateType) -> i32 {
    match value {
        TemplateType::Conversation => pb::ScorecardTemplateType::Conversation as i32,
        TemplateType::Process => pb::ScorecardTemplateType::Process as i32,
    }
}

pub fn new_template(request: &pb::CreateScorecardTemplateRequest) -> Checked<NewTemplate> {
    validate::required_text("name", &request.name, MAX_NAME_BYTES)?;
    let template_type = template_type_from_wire("template_type", request.template_type)?;
    validate::between("criteria", &request.criteria, MAX_CRITERIA_PER_TEMPLATE)?;
    let criteria = request
        .criteria
        .iter()
        .enumerate()
        .map(|(i, c)| new_criterion(&format!("criteria[{i}]"), c))
        .collect::<Checked<Vec<_>>>()?;
    if template_type.is_process() && criteria.iter().any(|c| c.rule.is_some()) {
        return Err(Invalid::new(
            "criteria",
            "AutoQA rules score transcripts; a process template cannot have them",
        ));
    }
    Ok(NewTemplate { name: request.name.clone(), template_type, criteria })
}

fn new_criterion(field: &str, c: &pb::Criterion) -> Checked<NewCriterion> {
    validate::required_text(&format!("{field}.name"), &c.name, MAX_NAME_BYTES)?;
    let weight = validate::finite(&format!("{field}.weight"), c.weight)?;
    if weight <= 0.0 || weight > MAX_CRITERION_WEIGHT {
        return Err(Invalid::new(
            format!("{field}.weight"),
            format!("must be in (0, {MAX_CRITERION_WEIGHT}]"),
        ));
    }
    let min_value = bounded_value(&format!("{field}.min_value"), c.min_value)?;
    let max_value = bounded_value(&format!("{field}.max_value"), c.max_value)?;
    if min_value >= max_value {
        return Err(Invalid::new(format!("{field}.max_value"), "must be greater than min_value"));
    }
    let rule =
        c.autoqa_rule.as_ref().map(|r| rule_from_wire(&format!("{field}.autoqa_rule"), r)).transpose()?;
    Ok(NewCriterion { name: c.name.clone(), scale: CriterionScale { weight, min_value, max_value }, rule })
}

fn bounded_value(field: &str, value: f64) -> Checked<f64> {
    let value = validate::finite(field, value)?;
    if value.abs() > MAX_CRITERION_VALUE_MAGNITUDE {
        return Err(Invalid::new(field, format!("must be within ±{MAX_CRITERION_VALUE_MAGNITUDE:e}")));
    }
    Ok(value)
}

fn rule_from_wire(field: &str, r: &pb::AutoQaRule) -> Checked<Rule> {
    let kind = match validate::known_enum::<auto_qa_rule::Kind>(&format!("{field}.kind"), r.kind, false)? {
        auto_qa_rule::Kind::Present => RuleKind::Present,
        auto_qa_rule::Kind::Absent => RuleKind::Absent,
        auto_qa_rule::Kind::Unspecified => {
            return Err(Invalid::new(format!("{field}.kind"), "required"));
        }
    };
    let pattern_type = match validate::known_enum::<auto_qa_rule::PatternType>(
        &format!("{field}.pattern_type"),
        r.pattern_type,
        false,
    )? {
        auto_qa_rule::PatternType::Phrase => PatternType::Phrase,
        auto_qa_rule::PatternType::Regex => PatternType::Regex,
        auto_qa_rule::PatternType::Unspecified => {
            return Err(Invalid::new(format!("{field}.pattern_type"), "required"));
        }
    };
    let speaker =
        match validate::known_enum::<auto_qa_rule::Speaker>(&format!("{field}.speaker"), r.speaker, true)? {
            auto_qa_rule::Speaker::Unspecified => None,
            auto_qa_rule::Speaker::Agent => Some(Speaker::Agent),
            auto_qa_rule::Speaker::Customer => Some(Speaker::Customer),
        };
    validate::optional_text(&format!("{field}.pattern"), &r.pattern, MAX_PATTERN_BYTES)?;
    let rule = Rule {
        kind,
        pattern_type,
        pattern: r.pattern.clone(),
        speaker,
        within_first_messages: r.within_first_messages,
        within_first_seconds: r.within_first_seconds,
    };
    rule.validate()
        .map_err(|e| Invalid::new(format!("{field}.pattern"), scorekeeper_domain::report::error_chain(&e)))?;
    Ok(rule)
}

pub fn template_to_wire(t: &Template) -> pb::ScorecardTemplate {
    pb::ScorecardTemplate {
        id: t.id.0,
        customer_id: t.customer_id.0,
        name: t.name.clone(),
        template_type: template_type_to_wire(t.template_type),
        criteria: t.criteria.iter().map(criterion_to_wire).collect(),
        created_at: Some(to_timestamp(t.created_at)),
    }
}

fn criterion_to_wire(c: &Criterion) -> pb::Criterion {
    pb::Criterion {
        id: c.id.0,
        name: c.name.clone(),
        weight: c.scale.weight,
        min_value: c.scale.min_value,
        max_value: c.scale.max_value,
        autoqa_rule: c.rule.as_ref().map(|r| pb::AutoQaRule {
            kind: match r.kind {
                RuleKind::Present => auto_qa_rule::Kind::Present as i32,
                RuleKind::Absent => auto_qa_rule::Kind::Absent as i32,
            },
            pattern_type: match r.pattern_type {
                PatternType::Phrase => auto_qa_rule::PatternType::Phrase as i32,
                PatternType::Regex => auto_qa_rule::PatternType::Regex as i32,
            },
            pattern: r.pattern.clone(),
            speaker: match r.speaker {
                None => auto_qa_rule::Speaker::Unspecified as i32,
                Some(Speaker::Agent) => auto_qa_rule::Speaker::Agent as i32,
                Some(Speaker::Customer) => auto_qa_rule::Speaker::Customer as i32,
            },
            within_first_messages: r.within_first_messages,
            within_first_seconds: r.within_first_seconds,
        }),
    }
}

pub fn scores_from_wire(field: &str, scores: &[pb::Score]) -> Checked<Vec<Score>> {
    validate::at_most(field, scores, scorekeeper_domain::limits::MAX_SCORES_PER_SCORECARD)?;
    scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(Score {
                criterion_id: CriterionId(validate::id(
                    &format!("{field}[{i}].criterion_id"),
                    s.criterion_id,
                )?),
                value: validate::finite(&format!("{field}[{i}].value"), s.value)?,
            })
        })
        .collect()
}

pub fn scorecard_to_wire(s: &Scorecard) -> pb::Scorecard {
    pb::Scorecard {
        id: s.id.0,
        customer_id: s.customer_id.0,
        template_id: s.template_id.0,
        template_type: template_type_to_wire(s.template_type),
        conversation_id: s.conversation_id.map_or(0, |c| c.0),
        linked_conversation_ids: s.linked_conversation_ids.iter().map(|c| c.0).collect(),
        agent_id: s.agent_id.clone(),
        source: match s.source {
            ScorecardSource::Manual => pb::ScorecardSource::Manual as i32,
            ScorecardSource::AutoQa => pb::ScorecardSource::Autoqa as i32,
        },
        scores: s
            .scores
            .iter()
            .map(|x| pb::Score { criterion_id: x.criterion_id.0, value: x.value })
            .collect(),
        total_score: s.total_score,
        version: s.version,
        created_at: Some(to_timestamp(s.created_at)),
        updated_at: Some(to_timestamp(s.updated_at)),
    }
}

pub fn new_conversation(field: &str, c: &v1::Conversation) -> Checked<NewConversation> {
    validate::required_text(&format!("{field}.external_id"), &c.external_id, MAX_NAME_BYTES)?;
    validate::required_text(&format!("{field}.agent_id"), &c.agent_id, MAX_NAME_BYTES)?;
    let started_at = validate::required_mirrored_timestamp(&format!("{field}.started_at"), &c.started_at)?;
    let ended_at = validate::required_mirrored_timestamp(&format!("{field}.ended_at"), &c.ended_at)?;
    if ended_at < started_at {
        return Err(Invalid::new(format!("{field}.ended_at"), "before started_at"));
    }
    validate::at_most(&format!("{field}.messages"), &c.messages, MAX_MESSAGES_PER_CONVERSATION)?;
    let text_bytes: usize = c.messages.iter().map(|m| m.text.len()).sum();
    if text_bytes > MAX_TRANSCRIPT_TEXT_BYTES {
        return Err(Invalid::new(
            format!("{field}.messages"),
            format!("{text_bytes} bytes of text; at most {MAX_TRANSCRIPT_TEXT_BYTES} per conversation"),
        ));
    }
    let messages = c
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let f = format!("{field}.messages[{i}]");
            let speaker =
                match validate::known_enum::<v1::Speaker>(&format!("{f}.speaker"), m.speaker, false)? {
                    v1::Speaker::Agent => Speaker::Agent,
                    v1::Speaker::Customer => Speaker::Customer,
                    v1::Speaker::Unspecified => {
                        return Err(Invalid::new(format!("{f}.speaker"), "required"));
                    }
                };
            validate::optional_text(&format!("{f}.text"), &m.text, MAX_MESSAGE_TEXT_BYTES)?;
            if m.offset_ms < 0 {
                return Err(Invalid::new(format!("{f}.offset_ms"), "must not be negative"));
            }
            Ok(Message { speaker, text: m.text.clone(), offset_ms: m.offset_ms })
        })
        .collect::<Checked<Vec<_>>>()?;
    Ok(NewConversation {
        external_id: c.external_id.clone(),
        agent_id: c.agent_id.clone(),
        started_at,
        ended_at,
        messages,
    })
}

pub fn conversation_to_wire(c: &Conversation) -> v1::Conversation {
    v1::Conversation {
        id: c.id.0,
        customer_id: c.customer_id.0,
        external_id: c.external_id.clone(),
        agent_id: c.agent_id.clone(),
        started_at: Some(to_timestamp(c.started_at)),
        ended_at: Some(to_timestamp(c.ended_at)),
        messages: c
            .messages
            .iter()
            .map(|m| v1::Message {
                speaker: match m.speaker {
                    Speaker::Agent => v1::Speaker::Agent as i32,
                    Speaker::Customer => v1::Speaker::Customer as i32,
                },
                text: m.text.clone(),
                offset_ms: m.offset_ms,
            })
            .collect(),
        version: c.version,
        updated_at: Some(to_timestamp(c.updated_at)),
    }
}

#[cfg(test)]
mod props;
