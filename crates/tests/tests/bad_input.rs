//! Bad input, table-driven: every malformed or inconsistent request is
//! refused with INVALID_ARGUMENT naming the offending field (or NOT_FOUND for
//! ids that do not exist), and writes nothing to Postgres or ClickHouse.

use std::time::Duration;

use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::v1;
use scorekeeper_tests::fixtures::*;
use scorekeeper_tests::rejection::{Call, Expect, assert_rejected};
use scorekeeper_tests::snapshot::Snapshot;
use scorekeeper_tests::{Customer, TestEnv};

const DRAIN: Duration = Duration::from_secs(20);
/// An id no row of a fresh database has.
const UNKNOWN: i64 = 999_999_999;

/// About 7500 BC: a valid chrono time that Postgres cannot store, and
/// outside the range `google.protobuf.Timestamp` documents (years 1..=9999).
const BEFORE_YEAR_1: i64 = -300_000_000_000;
/// 10000-01-01T00:00:00Z.
const AFTER_YEAR_9999: i64 = 253_402_300_800;
/// 1900-01-01T00:00:00Z and 2200-01-01T00:00:00Z: valid `Timestamp`s
/// outside what ClickHouse's `DateTime` (the mirror) holds.
const YEAR_1900: i64 = -2_208_988_800;
const YEAR_2200: i64 = 7_258_118_400;
/// The seconds just outside the mirror's range, each side.
const BEFORE_1970: i64 = -1;
const AFTER_2106_02_07_06_28_15: i64 = 4_294_967_296;

struct Case {
    name: String,
    request: Call,
    expected: Expect,
}

fn invalid(name: &str, field: &str, request: Call) -> Case {
    Case { name: name.to_owned(), request, expected: Expect::Invalid(field.to_owned()) }
}

fn not_found(name: String, request: Call) -> Case {
    Case { name, request, expected: Expect::NotFound }
}

/// One customer's data that the cases refer to.
struct World {
    customer: Customer,
    conv_template: pb::ScorecardTemplate,
    proc_template: pb::ScorecardTemplate,
    /// A conversation template whose second criterion carries a rule.
    rule_template: pb::ScorecardTemplate,
    conversations: Vec<v1::Conversation>,
    /// A conversation scorecard on `conversations[0]`.
    scorecard: pb::Scorecard,
    /// A process scorecard linked to `conversations[1]`.
    process_scorecard: pb::Scorecard,
    /// A scorecard that was created and then deleted.
    deleted_scorecard: i64,
}

impl World {
    async fn build(env: &TestEnv) -> World {
        let customer = env.customer("acme").await;
        let conv_template = conversation_template(&customer).await;
        let proc_template = process_template(&customer).await;
        let rule_template = template(
            &customer,
            pb::ScorecardTemplateType::Conversation,
            vec![
                criterion("manual", 1.0, 5.0),
                rule_criterion("thanks", auto_qa_rule::Kind::Present, "thank you"),
            ],
        )
        .await;
        let conversations = conversations(&customer, 3).await;
        let scorecard = create_scorecard(
            &customer,
            conversation_scorecard(&conv_template, conversations[0].id, &[4.0, 7.0]),
        )
        .await;
        let process_scorecard = create_scorecard(
            &customer,
            process_scorecard(&proc_template, "agent-7", vec![conversations[1].id], &[2.0]),
        )
        .await;
        let deleted =
            create_scorecard(&customer, conversation_scorecard(&conv_template, conversations[2].id, &[1.0]))
                .await;
        customer
            .scorecards()
            .delete_scorecard(pb::DeleteScorecardRequest { id: deleted.id })
            .await
            .expect("deleting a scorecard of the world");
        env.outbox_drained(DRAIN).await.expect("the world's scorecards reach ClickHouse");
        World {
            customer,
            conv_template,
            proc_template,
            rule_template,
            conversations,
            scorecard,
            process_scorecard,
            deleted_scorecard: deleted.id,
        }
    }

    fn criterion_id(&self, template: &pb::ScorecardTemplate, index: usize) -> i64 {
        template.criteria[index].id
    }

    /// A valid conversation scorecard on `conversations[1]`.
    fn conv_scorecard(&self) -> pb::CreateScorecardRequest {
        conversation_scorecard(&self.conv_template, self.conversations[1].id, &[3.0, 5.0])
    }

    /// A valid process scorecard linked to two conversations.
    fn proc_scorecard(&self) -> pb::CreateScorecardRequest {
        process_scorecard(
            &self.proc_template,
            "agent-5",
            vec![self.conversations[0].id, self.conversations[2].id],
            &[1.0],
        )
    }

    /// A valid update of the conversation scorecard.
    fn update(&self) -> pb::UpdateScorecardRequest {
        pb::UpdateScorecardRequest {
            id: self.scorecard.id,
            scores: scores(&self.conv_template, &[2.0, 2.0]),
            ..Default::default()
        }
    }

    fn conversation_ids(&self) -> Vec<i64> {
        self.conversations.iter().map(|c| c.id).collect()
    }
}

fn score(criterion_id: i64, value: f64) -> pb::Score {
    pb::Score { criterion_id, value }
}

/// A valid conversation template with a manual and a rule criterion.
fn new_template() -> pb::CreateScorecardTemplateRequest {
    manual_and_rule_template("new template")
}

/// [`new_template`] with its second criterion replaced.
fn template_with(second: pb::Criterion) -> Call {
    let mut request = new_template();
    request.criteria[1] = second;
    Call::CreateTemplate(request)
}

/// [`new_template`] with its rule changed by `change`.
fn template_with_rule(change: impl FnOnce(&mut pb::AutoQaRule)) -> Call {
    let mut request = new_template();
    change(request.criteria[1].autoqa_rule.as_mut().expect("new_template has a rule"));
    Call::CreateTemplate(request)
}

/// A valid new conversation.
fn new_conversation(external_id: &str) -> v1::Conversation {
    conversation(
        external_id,
        "agent-new",
        T0 + 3600,
        &[(v1::Speaker::Agent, "Good morning"), (v1::Speaker::Customer, "Hello")],
    )
}

/// An upsert of a valid conversation followed by one changed by `change`,
/// so a case also shows the valid first one is not written.
fn upsert_with(change: impl FnOnce(&mut v1::Conversation)) -> Call {
    let mut second = new_conversation("new-2");
    change(&mut second);
    Call::Upsert(v1::UpsertConversationsRequest { conversations: vec![new_conversation("new-1"), second] })
}

fn batch_index(conversation_ids: Vec<i64>, start: Option<i64>, end: Option<i64>) -> Call {
    Call::BatchIndex(v1::BatchIndexConversationsRequest {
        conversation_ids,
        start_time: start.and_then(ts),
        end_time: end.and_then(ts),
    })
}

fn autoscore(template_id: i64, conversation_ids: Vec<i64>) -> Call {
    Call::Autoscore(v1::AutoscoreConversationsRequest { template_id, conversation_ids })
}

fn stats(group_by: i32) -> Call {
    Call::Stats(v1::GetScoreStatsRequest { group_by, ..Default::default() })
}

fn cases(w: &World) -> Vec<Case> {
    let greeting = w.criterion_id(&w.conv_template, 0);
    let resolution = w.criterion_id(&w.conv_template, 1);
    let follow_up = w.criterion_id(&w.proc_template, 0);
    let c = w.conversation_ids();
    let long_name = "é".repeat(129); // 258 bytes, 129 characters
    let mut cases = vec![
        // CreateScorecard: template and kind.
        invalid(
            "create scorecard: unknown template",
            "template_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { template_id: UNKNOWN, ..w.conv_scorecard() }),
        ),
        invalid(
            "create scorecard: no template",
            "template_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { template_id: 0, ..w.conv_scorecard() }),
        ),
        invalid(
            "create scorecard: conversation template without conversation_id",
            "conversation_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { conversation_id: 0, ..w.conv_scorecard() }),
        ),
        invalid(
            "create scorecard: process template with conversation_id",
            "conversation_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { conversation_id: c[0], ..w.proc_scorecard() }),
        ),
        invalid(
            "create scorecard: conversation template with linked conversations",
            "linked_conversation_ids",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                linked_conversation_ids: vec![c[2]],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: process template without agent_id",
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: String::new(),
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: process template with a blank agent_id",
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: "   ".into(),
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: conversation template with a blank agent_id",
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: " \t ".into(),
                ..w.conv_scorecard()
            }),
        ),
        // CreateScorecard: scores.
        invalid(
            "create scorecard: score above max",
            "scores[1].value",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(greeting, 5.0), score(resolution, 10.5)],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: score below min",
            "scores[0].value",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(greeting, -0.5)],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: NaN score",
            "scores[0].value",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(greeting, f64::NAN)],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: infinite score",
            "scores[0].value",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(follow_up, f64::INFINITY)],
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: criterion of another template",
            "scores[1].criterion_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(greeting, 1.0), score(follow_up, 1.0)],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: no criterion id",
            "scores[0].criterion_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(0, 1.0)],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: the same criterion twice",
            "scores[1].criterion_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: vec![score(greeting, 1.0), score(greeting, 2.0)],
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: 101 scores",
            "scores",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                scores: (0..101).map(|_| score(greeting, 1.0)).collect(),
                ..w.conv_scorecard()
            }),
        ),
        // CreateScorecard: conversations and agent.
        invalid(
            "create scorecard: unknown conversation",
            "conversation_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                conversation_id: UNKNOWN,
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: negative conversation_id",
            "conversation_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { conversation_id: -3, ..w.conv_scorecard() }),
        ),
        invalid(
            "create scorecard: unknown linked conversation",
            "linked_conversation_ids[1]",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                linked_conversation_ids: vec![c[0], UNKNOWN, c[1]],
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: linked conversation id 0",
            "linked_conversation_ids[0]",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                linked_conversation_ids: vec![0],
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: a conversation linked twice",
            "linked_conversation_ids",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                linked_conversation_ids: vec![c[0], c[1], c[0]],
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: 1001 linked conversations",
            "linked_conversation_ids",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                linked_conversation_ids: (0..1001).map(|i| c[i % c.len()]).collect(),
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: agent_id over 256 bytes",
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: long_name.clone(),
                ..w.proc_scorecard()
            }),
        ),
        invalid(
            "create scorecard: agent_id over 256 bytes on a conversation template",
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: "a".repeat(257),
                ..w.conv_scorecard()
            }),
        ),
        invalid(
            "create scorecard: agent_id with NUL",
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: "agent\0-5".into(),
                ..w.proc_scorecard()
            }),
        ),
        // CreateScorecardTemplate.
        invalid(
            "create template: type UNSPECIFIED",
            "template_type",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                template_type: pb::ScorecardTemplateType::Unspecified as i32,
                ..new_template()
            }),
        ),
        invalid(
            "create template: unknown type 7",
            "template_type",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { template_type: 7, ..new_template() }),
        ),
        invalid(
            "create template: no criteria",
            "criteria",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { criteria: vec![], ..new_template() }),
        ),
        invalid(
            "create template: 101 criteria",
            "criteria",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                criteria: (0..101).map(|i| criterion(&format!("c{i}"), 1.0, 5.0)).collect(),
                ..new_template()
            }),
        ),
        invalid(
            "create template: empty name",
            "name",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                name: String::new(),
                ..new_template()
            }),
        ),
        invalid(
            "create template: blank name",
            "name",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                name: " \t ".into(),
                ..new_template()
            }),
        ),
        invalid(
            "create template: name over 256 bytes",
            "name",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                name: long_name.clone(),
                ..new_template()
            }),
        ),
        invalid(
            "create template: criterion without name",
            "criteria[1].name",
            template_with(criterion("", 1.0, 5.0)),
        ),
        invalid("create template: weight 0", "criteria[1].weight", template_with(criterion("w", 0.0, 5.0))),
        invalid(
            "create template: negative weight",
            "criteria[1].weight",
            template_with(criterion("w", -1.0, 5.0)),
        ),
        invalid(
            "create template: NaN weight",
            "criteria[1].weight",
            template_with(criterion("w", f64::NAN, 5.0)),
        ),
        invalid(
            "create template: weight so large the total would overflow",
            "criteria[1].weight",
            template_with(criterion("w", 1e308, 5.0)),
        ),
        invalid(
            "create template: range so wide the total would be NaN",
            "criteria[1].min_value",
            template_with(pb::Criterion { min_value: -1e308, ..criterion("w", 1.0, 1e308) }),
        ),
        invalid(
            "create template: max beyond the value bound",
            "criteria[1].max_value",
            template_with(criterion("w", 1.0, 1e10)),
        ),
        invalid(
            "create template: min == max",
            "criteria[1].max_value",
            template_with(criterion("w", 1.0, 0.0)),
        ),
        invalid(
            "create template: min > max",
            "criteria[1].max_value",
            template_with(pb::Criterion { min_value: 3.0, ..criterion("w", 1.0, 2.0) }),
        ),
        invalid(
            "create template: infinite max",
            "criteria[1].max_value",
            template_with(criterion("w", 1.0, f64::INFINITY)),
        ),
        invalid(
            "create template: rule kind UNSPECIFIED",
            "criteria[1].autoqa_rule.kind",
            template_with_rule(|r| r.kind = auto_qa_rule::Kind::Unspecified as i32),
        ),
        invalid(
            "create template: rule pattern_type UNSPECIFIED",
            "criteria[1].autoqa_rule.pattern_type",
            template_with_rule(|r| r.pattern_type = 0),
        ),
        invalid(
            "create template: rule pattern_type 9",
            "criteria[1].autoqa_rule.pattern_type",
            template_with_rule(|r| r.pattern_type = 9),
        ),
        invalid(
            "create template: rule speaker 4",
            "criteria[1].autoqa_rule.speaker",
            template_with_rule(|r| r.speaker = 4),
        ),
        invalid(
            "create template: invalid regex",
            "criteria[1].autoqa_rule.pattern",
            template_with_rule(|r| {
                r.pattern_type = auto_qa_rule::PatternType::Regex as i32;
                r.pattern = "thank(s| you".into();
            }),
        ),
        invalid(
            "create template: empty phrase",
            "criteria[1].autoqa_rule.pattern",
            template_with_rule(|r| r.pattern = String::new()),
        ),
        invalid(
            "create template: blank phrase",
            "criteria[1].autoqa_rule.pattern",
            template_with_rule(|r| r.pattern = "   ".into()),
        ),
        invalid(
            "create template: pattern over 1024 bytes",
            "criteria[1].autoqa_rule.pattern",
            template_with_rule(|r| r.pattern = "x".repeat(1025)),
        ),
        invalid(
            "create template: rule on a process template",
            "criteria",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                template_type: pb::ScorecardTemplateType::Process as i32,
                ..new_template()
            }),
        ),
        // UpsertConversations.
        invalid(
            "upsert: empty batch",
            "conversations",
            Call::Upsert(v1::UpsertConversationsRequest { conversations: vec![] }),
        ),
        invalid(
            "upsert: 501 conversations",
            "conversations",
            Call::Upsert(v1::UpsertConversationsRequest {
                conversations: (0..501).map(|i| new_conversation(&format!("bulk-{i}"))).collect(),
            }),
        ),
        invalid(
            "upsert: duplicate external_id",
            "conversations[1].external_id",
            upsert_with(|c| c.external_id = "new-1".into()),
        ),
        invalid(
            "upsert: empty external_id",
            "conversations[1].external_id",
            upsert_with(|c| c.external_id = String::new()),
        ),
        invalid(
            "upsert: external_id over 256 bytes",
            "conversations[1].external_id",
            upsert_with(|c| c.external_id = long_name.clone()),
        ),
        invalid(
            "upsert: empty agent_id",
            "conversations[1].agent_id",
            upsert_with(|c| c.agent_id = String::new()),
        ),
        invalid(
            "upsert: agent_id with NUL",
            "conversations[1].agent_id",
            upsert_with(|c| c.agent_id = "agent\0".into()),
        ),
        invalid(
            "upsert: missing started_at",
            "conversations[1].started_at",
            upsert_with(|c| c.started_at = None),
        ),
        invalid("upsert: missing ended_at", "conversations[1].ended_at", upsert_with(|c| c.ended_at = None)),
        invalid(
            "upsert: started_at nanos out of range",
            "conversations[1].started_at",
            upsert_with(|c| c.started_at = Some(prost_types::Timestamp { seconds: T0, nanos: -1 })),
        ),
        invalid(
            "upsert: started_at before year 1",
            "conversations[1].started_at",
            upsert_with(|c| c.started_at = ts(BEFORE_YEAR_1)),
        ),
        invalid(
            "upsert: ended_at after year 9999",
            "conversations[1].ended_at",
            upsert_with(|c| c.ended_at = ts(AFTER_YEAR_9999)),
        ),
        invalid(
            "upsert: started_at in 1900, before what the mirror holds",
            "conversations[1].started_at",
            upsert_with(|c| c.started_at = ts(YEAR_1900)),
        ),
        invalid(
            "upsert: started_at one second before 1970",
            "conversations[1].started_at",
            upsert_with(|c| c.started_at = ts(BEFORE_1970)),
        ),
        invalid(
            "upsert: ended_at in 2200, after what the mirror holds",
            "conversations[1].ended_at",
            upsert_with(|c| c.ended_at = ts(YEAR_2200)),
        ),
        invalid(
            "upsert: ended_at one second after the mirror's last",
            "conversations[1].ended_at",
            upsert_with(|c| c.ended_at = ts(AFTER_2106_02_07_06_28_15)),
        ),
        invalid(
            "upsert: ended_at before started_at",
            "conversations[1].ended_at",
            upsert_with(|c| c.ended_at = ts(T0)),
        ),
        invalid(
            "upsert: speaker UNSPECIFIED",
            "conversations[1].messages[0].speaker",
            upsert_with(|c| c.messages[0].speaker = v1::Speaker::Unspecified as i32),
        ),
        invalid(
            "upsert: unknown speaker 5",
            "conversations[1].messages[1].speaker",
            upsert_with(|c| c.messages[1].speaker = 5),
        ),
        invalid(
            "upsert: message text over 16 KiB",
            "conversations[1].messages[1].text",
            upsert_with(|c| c.messages[1].text = "x".repeat(16 * 1024 + 1)),
        ),
        invalid(
            "upsert: message text with NUL",
            "conversations[1].messages[0].text",
            upsert_with(|c| c.messages[0].text = "a\0b".into()),
        ),
        invalid(
            "upsert: negative offset_ms",
            "conversations[1].messages[1].offset_ms",
            upsert_with(|c| c.messages[1].offset_ms = -1),
        ),
        invalid(
            "upsert: 5001 messages",
            "conversations[1].messages",
            upsert_with(|c| c.messages = vec![c.messages[0].clone(); 5001]),
        ),
        // BatchIndexConversations.
        invalid("batch index: neither ids nor window", "conversation_ids", batch_index(vec![], None, None)),
        invalid(
            "batch index: ids and window",
            "conversation_ids",
            batch_index(vec![c[0]], Some(T0), Some(T0 + 86_400)),
        ),
        invalid(
            "batch index: ids and only start_time",
            "conversation_ids",
            batch_index(vec![c[0]], Some(T0), None),
        ),
        invalid("batch index: window without end", "end_time", batch_index(vec![], Some(T0), None)),
        invalid("batch index: window without start", "start_time", batch_index(vec![], None, Some(T0))),
        invalid(
            "batch index: start before year 1",
            "start_time",
            batch_index(vec![], Some(BEFORE_YEAR_1), Some(T0)),
        ),
        invalid("batch index: end before start", "end_time", batch_index(vec![], Some(T0 + 60), Some(T0))),
        invalid("batch index: empty window", "end_time", batch_index(vec![], Some(T0), Some(T0))),
        invalid(
            "batch index: 10001 ids",
            "conversation_ids",
            batch_index((0..10_001).map(|i| c[i % c.len()]).collect(), None, None),
        ),
        invalid("batch index: id 0", "conversation_ids[1]", batch_index(vec![c[0], 0], None, None)),
        // AutoscoreConversations.
        invalid("autoscore: no conversation ids", "conversation_ids", autoscore(w.rule_template.id, vec![])),
        invalid(
            "autoscore: 10001 conversation ids",
            "conversation_ids",
            autoscore(w.rule_template.id, (0..10_001).map(|i| c[i % c.len()]).collect()),
        ),
        invalid("autoscore: no template", "template_id", autoscore(0, vec![c[0]])),
        invalid("autoscore: unknown template", "template_id", autoscore(UNKNOWN, vec![c[0]])),
        invalid("autoscore: process template", "template_id", autoscore(w.proc_template.id, vec![c[0]])),
        invalid(
            "autoscore: template without rules",
            "template_id",
            autoscore(w.conv_template.id, vec![c[0]]),
        ),
        invalid(
            "autoscore: unknown conversation after known ones",
            "conversation_ids[2]",
            autoscore(w.rule_template.id, vec![c[0], c[1], UNKNOWN]),
        ),
        invalid(
            "autoscore: conversation id -1",
            "conversation_ids[0]",
            autoscore(w.rule_template.id, vec![-1]),
        ),
        // UpdateScorecard.
        invalid(
            "update scorecard: id 0",
            "id",
            Call::UpdateScorecard(pb::UpdateScorecardRequest { id: 0, ..w.update() }),
        ),
        invalid(
            "update scorecard: score above max",
            "scores[0].value",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                scores: vec![score(greeting, 6.0)],
                ..w.update()
            }),
        ),
        invalid(
            "update scorecard: NaN score",
            "scores[1].value",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                scores: vec![score(greeting, 1.0), score(resolution, f64::NAN)],
                ..w.update()
            }),
        ),
        invalid(
            "update scorecard: criterion of another template",
            "scores[0].criterion_id",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                scores: vec![score(follow_up, 1.0)],
                ..w.update()
            }),
        ),
        invalid(
            "update scorecard: the same criterion twice",
            "scores[1].criterion_id",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                scores: vec![score(resolution, 1.0), score(resolution, 1.0)],
                ..w.update()
            }),
        ),
        invalid(
            "update scorecard: links on a conversation scorecard",
            "linked_conversation_ids",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                linked_conversation_ids: vec![c[1]],
                ..w.update()
            }),
        ),
        invalid(
            "update scorecard: agent on a conversation scorecard",
            "agent_id",
            Call::UpdateScorecard(pb::UpdateScorecardRequest { agent_id: "agent-4".into(), ..w.update() }),
        ),
        invalid(
            "update scorecard: negative expected_version",
            "expected_version",
            Call::UpdateScorecard(pb::UpdateScorecardRequest { expected_version: -1, ..w.update() }),
        ),
        invalid(
            "update process scorecard: unknown linked conversation",
            "linked_conversation_ids[0]",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: w.process_scorecard.id,
                scores: vec![score(follow_up, 1.0)],
                linked_conversation_ids: vec![UNKNOWN],
                ..Default::default()
            }),
        ),
        invalid(
            "update process scorecard: 1001 linked conversations",
            "linked_conversation_ids",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: w.process_scorecard.id,
                scores: vec![score(follow_up, 1.0)],
                linked_conversation_ids: (0..1001).map(|i| c[i % c.len()]).collect(),
                ..Default::default()
            }),
        ),
        invalid(
            "update process scorecard: agent_id with NUL",
            "agent_id",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: w.process_scorecard.id,
                scores: vec![score(follow_up, 1.0)],
                agent_id: "\0".into(),
                ..Default::default()
            }),
        ),
        // Reads with bad arguments.
        invalid("get scorecard: id 0", "id", Call::GetScorecard(pb::GetScorecardRequest { id: 0 })),
        invalid(
            "delete scorecard: negative id",
            "id",
            Call::DeleteScorecard(pb::DeleteScorecardRequest { id: -7 }),
        ),
        invalid("get template: id 0", "id", Call::GetTemplate(pb::GetScorecardTemplateRequest { id: 0 })),
        invalid(
            "get conversation: id 0",
            "id",
            Call::GetConversation(v1::GetConversationRequest { id: 0, include_messages: true }),
        ),
        invalid(
            "list scorecards: page_size -1",
            "page_size",
            Call::ListScorecards(pb::ListScorecardsRequest { page_size: -1, ..Default::default() }),
        ),
        invalid(
            "list scorecards: page_size 501",
            "page_size",
            Call::ListScorecards(pb::ListScorecardsRequest { page_size: 501, ..Default::default() }),
        ),
        invalid(
            "list scorecards: garbage page_token",
            "page_token",
            Call::ListScorecards(pb::ListScorecardsRequest {
                page_token: "not-a-token!".into(),
                ..Default::default()
            }),
        ),
        invalid(
            "list templates: page_size 501",
            "page_size",
            Call::ListTemplates(pb::ListScorecardTemplatesRequest { page_size: 501, ..Default::default() }),
        ),
        invalid(
            "list templates: garbage page_token",
            "page_token",
            Call::ListTemplates(pb::ListScorecardTemplatesRequest {
                page_token: "%%%".into(),
                ..Default::default()
            }),
        ),
        invalid("score stats: group_by UNSPECIFIED", "group_by", stats(v1::StatsGroupBy::Unspecified as i32)),
        invalid("score stats: group_by 42", "group_by", stats(42)),
        invalid(
            "score stats: end before start",
            "end_time",
            Call::Stats(v1::GetScoreStatsRequest {
                group_by: v1::StatsGroupBy::Agent as i32,
                start_time: ts(T0),
                end_time: ts(T0 - 1),
            }),
        ),
        invalid(
            "score stats: start before year 1",
            "start_time",
            Call::Stats(v1::GetScoreStatsRequest {
                group_by: v1::StatsGroupBy::Day as i32,
                start_time: ts(BEFORE_YEAR_1),
                end_time: None,
            }),
        ),
    ];
    // Ids that do not exist, or no longer do.
    for (what, id) in [("unknown", UNKNOWN), ("deleted", w.deleted_scorecard)] {
        let name = |rpc: &str| format!("{rpc} of a {what} scorecard");
        cases.push(not_found(name("get"), Call::GetScorecard(pb::GetScorecardRequest { id })));
        cases.push(not_found(
            name("update"),
            Call::UpdateScorecard(pb::UpdateScorecardRequest { id, ..w.update() }),
        ));
        cases.push(not_found(name("delete"), Call::DeleteScorecard(pb::DeleteScorecardRequest { id })));
    }
    cases.push(not_found(
        "get of an unknown template".into(),
        Call::GetTemplate(pb::GetScorecardTemplateRequest { id: UNKNOWN }),
    ));
    cases.push(not_found(
        "get of an unknown conversation".into(),
        Call::GetConversation(v1::GetConversationRequest { id: UNKNOWN, include_messages: true }),
    ));
    cases
}

#[tokio::test]
async fn bad_input_is_rejected_by_field_and_writes_nothing() {
    let env = TestEnv::start().await;
    let world = World::build(&env).await;
    let cases = cases(&world);
    let count = cases.len();
    for case in cases {
        assert_rejected(&env, &world.customer, &case.name, case.request, &case.expected).await;
    }
    eprintln!("bad input: {count} cases rejected without writing");

    // Control: the requests the cases were derived from are valid, and the
    // snapshot sees what they write. Otherwise a case could pass for the
    // wrong reason, or the "nothing written" check see nothing at all.
    let controls = [
        ("a conversation scorecard", Call::CreateScorecard(world.conv_scorecard())),
        ("a process scorecard", Call::CreateScorecard(world.proc_scorecard())),
        (
            "a process scorecard with a 256-byte agent",
            Call::CreateScorecard(pb::CreateScorecardRequest {
                agent_id: "a".repeat(256),
                ..world.proc_scorecard()
            }),
        ),
        ("an update", Call::UpdateScorecard(world.update())),
        ("a template", Call::CreateTemplate(new_template())),
        (
            "a template with 100 criteria",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest {
                criteria: (0..100).map(|i| criterion(&format!("c{i}"), 1.0, 5.0)).collect(),
                ..new_template()
            }),
        ),
        ("an upsert", upsert_with(|_| {})),
        (
            "an upsert with a 16 KiB message",
            upsert_with(|c| {
                c.external_id = "new-3".into();
                c.messages[1].text = "x".repeat(16 * 1024);
            }),
        ),
        ("an autoscore", autoscore(world.rule_template.id, world.conversation_ids())),
    ];
    for (name, request) in controls {
        let before = Snapshot::take(&env).await;
        if let Err(status) = request.make(&world.customer).await {
            panic!("control {name} was refused: {status:?}");
        }
        env.outbox_drained(DRAIN).await.unwrap();
        assert!(
            Snapshot::take(&env).await != before,
            "control {name} was accepted but the snapshot did not change"
        );
    }
    env.assert_scorecards_mirrored().await;
}

/// `UpsertConversationsRequest` as a client with the wrong idea of the
/// contract encodes it: `Conversation.external_id` (field 3, a string) as
/// arbitrary bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawUpsert {
    #[prost(message, repeated, tag = "1")]
    conversations: Vec<RawConversation>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawConversation {
    #[prost(bytes = "vec", tag = "3")]
    external_id: Vec<u8>,
}

/// The same request with `conversations` (field 1, messages) as a varint.
#[derive(Clone, PartialEq, prost::Message)]
struct WrongWireType {
    #[prost(uint64, tag = "1")]
    conversations: u64,
}

/// Sends `message` as an `UpsertConversations` request, bytes as encoded.
async fn raw_upsert<M: prost::Message + Send + Sync + 'static>(
    env: &TestEnv,
    token: &str,
    message: M,
) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(env.channel());
    grpc.ready().await.expect("the server is up");
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/scorekeeper.v1.ConversationService/UpsertConversations",
    );
    let codec = scorekeeper_proto::codec::ProtoCodec::<M, v1::UpsertConversationsResponse>::default();
    grpc.unary(request, path, codec).await.expect_err("an undecodable request is refused")
}

/// A request body that does not decode (invalid UTF-8 in a string, a
/// wrong wire type) is INVALID_ARGUMENT naming what did not decode, not
/// INTERNAL, and writes nothing.
#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    let not_utf8 = RawUpsert { conversations: vec![RawConversation { external_id: vec![0xff, 0xfe, b'a'] }] };
    let status = raw_upsert(&env, &customer.token, not_utf8).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("Conversation.external_id"), "names the field: {status:?}");
    assert!(status.message().contains("UTF-8"), "{status:?}");
    let status = raw_upsert(&env, &customer.token, WrongWireType { conversations: 7 }).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("wire type"), "{status:?}");
    assert_eq!(env.postgres_count("conversations").await, 0, "nothing written");
}
