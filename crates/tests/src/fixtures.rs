//! Requests and small worlds the tests build again and again through the
//! API: templates, conversations, scorecards, timestamps from `T0`.

use crate::env::Customer;
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::v1;

/// A protobuf timestamp `seconds` after the epoch.
pub fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;

pub fn criterion(name: &str, weight: f64, max: f64) -> pb::Criterion {
    pb::Criterion { name: name.into(), weight, min_value: 0.0, max_value: max, ..Default::default() }
}

pub fn rule_criterion(name: &str, kind: auto_qa_rule::Kind, pattern: &str) -> pb::Criterion {
    pb::Criterion {
        autoqa_rule: Some(pb::AutoQaRule {
            kind: kind as i32,
            pattern_type: auto_qa_rule::PatternType::Phrase as i32,
            pattern: pattern.into(),
            speaker: auto_qa_rule::Speaker::Agent as i32,
            ..Default::default()
        }),
        ..criterion(name, 1.0, 1.0)
    }
}

/// A request for a valid conversation template named `name`: a manual
/// criterion `empathy` (0 to 5) and a rule criterion `greeting` (the
/// phrase "good morning" said by the agent).
pub fn manual_and_rule_template(name: &str) -> pb::CreateScorecardTemplateRequest {
    pb::CreateScorecardTemplateRequest {
        name: name.into(),
        template_type: pb::ScorecardTemplateType::Conversation as i32,
        criteria: vec![
            criterion("empathy", 1.0, 5.0),
            rule_criterion("greeting", auto_qa_rule::Kind::Present, "good morning"),
        ],
    }
}

pub async fn template(
    customer: &Customer,
    kind: pb::ScorecardTemplateType,
    criteria: Vec<pb::Criterion>,
) -> pb::ScorecardTemplate {
    customer
        .scorecards()
        .create_scorecard_template(pb::CreateScorecardTemplateRequest {
            name: format!("{kind:?} template"),
            template_type: kind as i32,
            criteria,
        })
        .await
        .expect("creating a template")
        .into_inner()
        .template
        .expect("a template")
}

pub async fn conversation_template(customer: &Customer) -> pb::ScorecardTemplate {
    template(
        customer,
        pb::ScorecardTemplateType::Conversation,
        vec![criterion("greeting", 1.0, 5.0), criterion("resolution", 3.0, 10.0)],
    )
    .await
}

pub async fn process_template(customer: &Customer) -> pb::ScorecardTemplate {
    template(customer, pb::ScorecardTemplateType::Process, vec![criterion("follow-up", 2.0, 4.0)]).await
}

pub fn conversation(
    external_id: &str,
    agent: &str,
    started: i64,
    lines: &[(v1::Speaker, &str)],
) -> v1::Conversation {
    v1::Conversation {
        external_id: external_id.into(),
        agent_id: agent.into(),
        started_at: ts(started),
        ended_at: ts(started + 600),
        messages: lines
            .iter()
            .enumerate()
            .map(|(i, (speaker, text))| v1::Message {
                speaker: *speaker as i32,
                text: (*text).into(),
                offset_ms: i as i64 * 5000,
            })
            .collect(),
        ..Default::default()
    }
}

/// Upserts `n` conversations `c0..cn` of `agent-k`, a minute apart from T0.
pub async fn conversations(customer: &Customer, n: usize) -> Vec<v1::Conversation> {
    let batch = (0..n)
        .map(|i| {
            conversation(
                &format!("c{i}"),
                &format!("agent-{}", i % 3),
                T0 + i as i64 * 60,
                &[
                    (v1::Speaker::Agent, "Thank you for calling, how can I help?"),
                    (v1::Speaker::Customer, "My order is late."),
                ],
            )
        })
        .collect();
    customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest { conversations: batch })
        .await
        .expect("upserting conversations")
        .into_inner()
        .conversations
}

pub fn scores(template: &pb::ScorecardTemplate, values: &[f64]) -> Vec<pb::Score> {
    template.criteria.iter().zip(values).map(|(c, v)| pb::Score { criterion_id: c.id, value: *v }).collect()
}

/// A request for a scorecard of the conversation template `template` on
/// `conversation_id`, scoring its criteria in order with `values`.
pub fn conversation_scorecard(
    template: &pb::ScorecardTemplate,
    conversation_id: i64,
    values: &[f64],
) -> pb::CreateScorecardRequest {
    pb::CreateScorecardRequest {
        template_id: template.id,
        conversation_id,
        scores: scores(template, values),
        ..Default::default()
    }
}

/// A request for a scorecard of the process template `template` for
/// `agent_id`, linked to `linked_conversation_ids`, scoring its criteria in
/// order with `values`.
pub fn process_scorecard(
    template: &pb::ScorecardTemplate,
    agent_id: impl Into<String>,
    linked_conversation_ids: Vec<i64>,
    values: &[f64],
) -> pb::CreateScorecardRequest {
    pb::CreateScorecardRequest {
        template_id: template.id,
        agent_id: agent_id.into(),
        linked_conversation_ids,
        scores: scores(template, values),
        ..Default::default()
    }
}

/// Creates a scorecard as `customer`; panics if the server refuses it.
pub async fn create_scorecard(customer: &Customer, request: pb::CreateScorecardRequest) -> pb::Scorecard {
    customer
        .scorecards()
        .create_scorecard(request)
        .await
        .expect("creating a scorecard")
        .into_inner()
        .scorecard
        .expect("a scorecard")
}

/// Updates a scorecard as `customer`; panics if the server refuses it.
pub async fn update_scorecard(customer: &Customer, request: pb::UpdateScorecardRequest) -> pb::Scorecard {
    customer
        .scorecards()
        .update_scorecard(request)
        .await
        .expect("updating a scorecard")
        .into_inner()
        .scorecard
        .expect("a scorecard")
}

/// Creates the scorecards concurrently (the server is the slow part);
/// returns their ids in request order.
/// The customer's conversation template and one conversation, with a
/// conversation scorecard of `values` on it: the smallest world a test of
/// one scorecard's writes needs.
pub async fn one_conversation_scorecard(
    customer: &Customer,
    values: &[f64],
) -> (pb::ScorecardTemplate, pb::Scorecard) {
    let template = conversation_template(customer).await;
    let conversation = conversations(customer, 1).await.remove(0);
    let scorecard =
        create_scorecard(customer, conversation_scorecard(&template, conversation.id, values)).await;
    (template, scorecard)
}

pub async fn create_scorecards(customer: &Customer, requests: Vec<pb::CreateScorecardRequest>) -> Vec<i64> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let mut api = customer.scorecards();
            tokio::spawn(async move { api.create_scorecard(request).await })
        })
        .collect();
    let mut ids = Vec::with_capacity(tasks.len());
    for task in tasks {
        let created = task.await.expect("a create task").expect("creating a scorecard").into_inner();
        ids.push(created.scorecard.expect("a scorecard").id);
    }
    ids
}
