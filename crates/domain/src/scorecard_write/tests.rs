//! Table-driven tests of the create, update and AutoQA decisions: each rule,
//! the field it names, its message, and which rule wins when a request
//! breaks two.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::*;
use crate::ids::{CriterionId, CustomerId};
use crate::scorecard::Criterion;
use crate::scoring::CriterionScale;

const CONVERSATION_TEMPLATE: TemplateId = TemplateId(7);
const PROCESS_TEMPLATE: TemplateId = TemplateId(8);
/// Live conversations of the customer; 109 is not one.
const LIVE: [ConversationId; 3] = [ConversationId(100), ConversationId(101), ConversationId(102)];
const UNKNOWN: ConversationId = ConversationId(109);

fn criterion(id: i64, max_value: f64) -> Criterion {
    Criterion {
        id: CriterionId(id),
        name: format!("criterion {id}"),
        scale: CriterionScale { weight: 1.0, min_value: 0.0, max_value },
        rule: None,
    }
}

fn template(id: TemplateId, template_type: TemplateType, criteria: Vec<Criterion>) -> Template {
    Template {
        id,
        customer_id: CustomerId(1),
        name: format!("template {id}"),
        template_type,
        criteria,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

fn conversation_template() -> Template {
    template(CONVERSATION_TEMPLATE, TemplateType::Conversation, vec![criterion(70, 5.0), criterion(71, 10.0)])
}

fn process_template() -> Template {
    template(PROCESS_TEMPLATE, TemplateType::Process, vec![criterion(80, 4.0)])
}

fn score(criterion_id: i64, value: f64) -> Score {
    Score { criterion_id: CriterionId(criterion_id), value }
}

fn invalid(field: &str, reason: &str) -> Invalid {
    Invalid::new(field, reason)
}

/// What the store would read for `new`: its template if it is one of the
/// two above, its conversation's agent if live, the live ones of its links.
fn create_facts(new: &NewScorecard) -> CreateFacts {
    let template =
        [conversation_template(), process_template()].into_iter().find(|t| t.id == new.template_id);
    CreateFacts {
        template,
        conversation_agent: new.conversation_id.filter(|c| LIVE.contains(c)).map(|c| format!("agent-{c}")),
        live_linked: live(&new.linked_conversation_ids),
    }
}

fn live(ids: &[ConversationId]) -> HashSet<ConversationId> {
    ids.iter().copied().filter(|c| LIVE.contains(c)).collect()
}

/// A valid conversation scorecard on conversation 100, agent not given.
fn conversation_card() -> NewScorecard {
    NewScorecard {
        template_id: CONVERSATION_TEMPLATE,
        conversation_id: Some(LIVE[0]),
        linked_conversation_ids: Vec::new(),
        agent_id: String::new(),
        scores: vec![score(70, 5.0), score(71, 5.0)],
    }
}

/// A valid process scorecard linked to conversations 100 and 102.
fn process_card() -> NewScorecard {
    NewScorecard {
        template_id: PROCESS_TEMPLATE,
        conversation_id: None,
        linked_conversation_ids: vec![LIVE[0], LIVE[2]],
        agent_id: "agent-5".into(),
        scores: vec![score(80, 2.0)],
    }
}

#[test]
fn valid_creates_are_decided() {
    let decision = |new: NewScorecard| new.decide(&create_facts(&new)).unwrap();
    assert_eq!(
        decision(conversation_card()),
        CreateDecision {
            template_type: TemplateType::Conversation,
            agent_id: "agent-100".into(),
            total_score: 75.0,
        },
        "a conversation scorecard takes its conversation's agent",
    );
    assert_eq!(
        decision(NewScorecard { agent_id: "agent-4".into(), ..conversation_card() }).agent_id,
        "agent-4",
        "an agent given on a conversation scorecard is kept",
    );
    assert_eq!(
        decision(process_card()),
        CreateDecision {
            template_type: TemplateType::Process,
            agent_id: "agent-5".into(),
            total_score: 50.0
        },
    );
    assert_eq!(
        decision(NewScorecard { linked_conversation_ids: Vec::new(), ..process_card() }).agent_id,
        "agent-5",
        "a process scorecard may link nothing",
    );
    assert_eq!(decision(NewScorecard { scores: Vec::new(), ..conversation_card() }).total_score, 0.0);
}

#[test]
fn invalid_creates_name_the_field() {
    let cases: Vec<(&str, NewScorecard, Invalid)> = vec![
        (
            "unknown template",
            NewScorecard { template_id: TemplateId(9), ..conversation_card() },
            invalid("template_id", "unknown template 9"),
        ),
        (
            "unknown template before a bad score",
            NewScorecard { template_id: TemplateId(9), scores: vec![score(70, 6.0)], ..conversation_card() },
            invalid("template_id", "unknown template 9"),
        ),
        (
            "criterion of another template",
            NewScorecard { scores: vec![score(70, 1.0), score(80, 1.0)], ..conversation_card() },
            invalid("scores[1].criterion_id", "criterion 80 is not on template 7"),
        ),
        (
            "criterion scored twice",
            NewScorecard { scores: vec![score(71, 1.0), score(71, 2.0)], ..conversation_card() },
            invalid("scores[1].criterion_id", "criterion 71 is scored twice"),
        ),
        (
            "score above max",
            NewScorecard { scores: vec![score(70, 5.5)], ..conversation_card() },
            invalid("scores[0].value", "5.5 is outside [0, 5] of criterion 70"),
        ),
        (
            "a bad score before a missing conversation",
            NewScorecard { conversation_id: None, scores: vec![score(70, 5.5)], ..conversation_card() },
            invalid("scores[0].value", "5.5 is outside [0, 5] of criterion 70"),
        ),
        (
            "conversation template without conversation",
            NewScorecard { conversation_id: None, ..conversation_card() },
            invalid("conversation_id", "required for a conversation template"),
        ),
        (
            "missing conversation before links",
            NewScorecard {
                conversation_id: None,
                linked_conversation_ids: vec![LIVE[1]],
                ..conversation_card()
            },
            invalid("conversation_id", "required for a conversation template"),
        ),
        (
            "conversation template with links",
            NewScorecard { linked_conversation_ids: vec![LIVE[1]], ..conversation_card() },
            invalid("linked_conversation_ids", "only process scorecards link conversations"),
        ),
        (
            "links before an unknown conversation",
            NewScorecard {
                conversation_id: Some(UNKNOWN),
                linked_conversation_ids: vec![LIVE[1]],
                ..conversation_card()
            },
            invalid("linked_conversation_ids", "only process scorecards link conversations"),
        ),
        (
            "unknown conversation",
            NewScorecard { conversation_id: Some(UNKNOWN), ..conversation_card() },
            invalid("conversation_id", "unknown conversation 109"),
        ),
        (
            "unknown conversation although an agent is given",
            NewScorecard {
                conversation_id: Some(UNKNOWN),
                agent_id: "agent-4".into(),
                ..conversation_card()
            },
            invalid("conversation_id", "unknown conversation 109"),
        ),
        (
            "process template with a conversation",
            NewScorecard { conversation_id: Some(LIVE[0]), ..process_card() },
            invalid("conversation_id", "must be empty for a process template; use linked_conversation_ids"),
        ),
        (
            "conversation before the agent on a process template",
            NewScorecard { conversation_id: Some(LIVE[0]), agent_id: String::new(), ..process_card() },
            invalid("conversation_id", "must be empty for a process template; use linked_conversation_ids"),
        ),
        (
            "process template without agent",
            NewScorecard { agent_id: String::new(), ..process_card() },
            invalid("agent_id", "required for a process scorecard"),
        ),
        (
            "agent before the links",
            NewScorecard {
                agent_id: String::new(),
                linked_conversation_ids: vec![UNKNOWN],
                ..process_card()
            },
            invalid("agent_id", "required for a process scorecard"),
        ),
        (
            "unknown linked conversation, named by index",
            NewScorecard { linked_conversation_ids: vec![LIVE[0], UNKNOWN, LIVE[1]], ..process_card() },
            invalid("linked_conversation_ids[1]", "unknown conversation 109"),
        ),
        (
            "a conversation linked twice",
            NewScorecard { linked_conversation_ids: vec![LIVE[0], LIVE[1], LIVE[0]], ..process_card() },
            invalid("linked_conversation_ids", "a conversation is linked twice"),
        ),
        (
            "an unknown link before a link twice",
            NewScorecard { linked_conversation_ids: vec![LIVE[0], LIVE[0], UNKNOWN], ..process_card() },
            invalid("linked_conversation_ids[2]", "unknown conversation 109"),
        ),
    ];
    for (name, new, expected) in cases {
        assert_eq!(new.decide(&create_facts(&new)), Err(expected), "{name}");
    }
}

/// The stored conversation scorecard on template 7, at version 3.
fn conversation_facts() -> ChangeFacts {
    ChangeFacts {
        template_type: TemplateType::Conversation,
        version: 3,
        template_id: CONVERSATION_TEMPLATE,
        template: Some(conversation_template()),
        live_linked: HashSet::new(),
    }
}

/// The stored process scorecard on template 8, at version 5.
fn process_facts() -> ChangeFacts {
    ChangeFacts {
        template_type: TemplateType::Process,
        version: 5,
        template_id: PROCESS_TEMPLATE,
        template: Some(process_template()),
        live_linked: HashSet::new(),
    }
}

fn change(scores: Vec<Score>) -> ScorecardChange {
    ScorecardChange { scores, ..ScorecardChange::default() }
}

/// Decides `change` on `facts`, with the facts' live links as the store
/// would read them for this change.
fn decide_change(change: &ScorecardChange, facts: ChangeFacts) -> Result<ChangeDecision<'_>, ChangeRefused> {
    let live_linked = live(change.linked_conversation_ids.as_deref().unwrap_or_default());
    change.decide(&ChangeFacts { live_linked, ..facts })
}

#[test]
fn valid_changes_are_decided() {
    let scores_only = change(vec![score(71, 10.0)]);
    assert_eq!(
        decide_change(&scores_only, conversation_facts()),
        Ok(ChangeDecision { total_score: 100.0, links: None, agent_id: None }),
        "links and agent are kept",
    );
    let at_version = ScorecardChange { expected_version: Some(3), ..change(vec![score(70, 0.0)]) };
    assert_eq!(decide_change(&at_version, conversation_facts()).map(|d| d.total_score), Ok(0.0));
    let no_links = ScorecardChange { linked_conversation_ids: Some(Vec::new()), ..change(Vec::new()) };
    assert_eq!(
        decide_change(&no_links, conversation_facts()).map(|d| d.links),
        Ok(Some(&[][..])),
        "an empty list of links is not a link",
    );
    let relinked = ScorecardChange {
        linked_conversation_ids: Some(vec![LIVE[1]]),
        agent_id: Some("agent-6".into()),
        expected_version: Some(5),
        ..change(vec![score(80, 1.0)])
    };
    assert_eq!(
        decide_change(&relinked, process_facts()),
        Ok(ChangeDecision { total_score: 25.0, links: Some(&[LIVE[1]][..]), agent_id: Some("agent-6") }),
    );
    let unlinked = ScorecardChange { linked_conversation_ids: Some(Vec::new()), ..change(Vec::new()) };
    assert_eq!(decide_change(&unlinked, process_facts()).map(|d| d.links), Ok(Some(&[][..])));
}

#[test]
fn refused_changes_say_why() {
    let stale = |expected, actual| ChangeRefused::StaleVersion { expected, actual };
    let gone = ChangeFacts { template: None, ..conversation_facts() };
    let cases: Vec<(&str, ScorecardChange, ChangeFacts, ChangeRefused)> = vec![
        (
            "stale version",
            ScorecardChange { expected_version: Some(2), ..change(Vec::new()) },
            conversation_facts(),
            stale(2, 3),
        ),
        (
            "stale version before links on a conversation scorecard",
            ScorecardChange {
                expected_version: Some(4),
                linked_conversation_ids: Some(vec![LIVE[0]]),
                ..change(Vec::new())
            },
            conversation_facts(),
            stale(4, 3),
        ),
        (
            "links on a conversation scorecard",
            ScorecardChange { linked_conversation_ids: Some(vec![LIVE[0]]), ..change(Vec::new()) },
            conversation_facts(),
            invalid("linked_conversation_ids", "only process scorecards link conversations").into(),
        ),
        (
            "links before the agent on a conversation scorecard",
            ScorecardChange {
                linked_conversation_ids: Some(vec![UNKNOWN]),
                agent_id: Some("agent-4".into()),
                ..change(Vec::new())
            },
            conversation_facts(),
            invalid("linked_conversation_ids", "only process scorecards link conversations").into(),
        ),
        (
            "agent on a conversation scorecard",
            ScorecardChange { agent_id: Some("agent-4".into()), ..change(Vec::new()) },
            conversation_facts(),
            invalid("agent_id", "a conversation scorecard's agent is the conversation's").into(),
        ),
        (
            "the kind's rules before a bad score",
            ScorecardChange { agent_id: Some("agent-4".into()), ..change(vec![score(70, 9.0)]) },
            conversation_facts(),
            invalid("agent_id", "a conversation scorecard's agent is the conversation's").into(),
        ),
        ("template gone", change(Vec::new()), gone.clone(), invalid("id", "unknown template 7").into()),
        (
            "template gone before a bad score",
            change(vec![score(70, 9.0)]),
            gone,
            invalid("id", "unknown template 7").into(),
        ),
        (
            "score above max",
            change(vec![score(70, 1.0), score(71, 10.5)]),
            conversation_facts(),
            invalid("scores[1].value", "10.5 is outside [0, 10] of criterion 71").into(),
        ),
        (
            "NaN score",
            change(vec![score(70, f64::NAN)]),
            conversation_facts(),
            invalid("scores[0].value", "NaN is outside [0, 5] of criterion 70").into(),
        ),
        (
            "criterion of another template",
            change(vec![score(70, 1.0)]),
            process_facts(),
            invalid("scores[0].criterion_id", "criterion 70 is not on template 8").into(),
        ),
        (
            "criterion scored twice",
            change(vec![score(80, 1.0), score(80, 1.0)]),
            process_facts(),
            invalid("scores[1].criterion_id", "criterion 80 is scored twice").into(),
        ),
        (
            "a bad score before an unknown link",
            ScorecardChange { linked_conversation_ids: Some(vec![UNKNOWN]), ..change(vec![score(80, 4.5)]) },
            process_facts(),
            invalid("scores[0].value", "4.5 is outside [0, 4] of criterion 80").into(),
        ),
        (
            "unknown linked conversation",
            ScorecardChange { linked_conversation_ids: Some(vec![UNKNOWN]), ..change(Vec::new()) },
            process_facts(),
            invalid("linked_conversation_ids[0]", "unknown conversation 109").into(),
        ),
        (
            "a conversation linked twice",
            ScorecardChange { linked_conversation_ids: Some(vec![LIVE[2], LIVE[2]]), ..change(Vec::new()) },
            process_facts(),
            invalid("linked_conversation_ids", "a conversation is linked twice").into(),
        ),
    ];
    for (name, change, facts, expected) in cases {
        assert_eq!(decide_change(&change, facts), Err(expected), "{name}");
    }
}

#[test]
fn refusals_read_as_their_cause() {
    let refused = ChangeRefused::StaleVersion { expected: 2, actual: 3 };
    assert_eq!(refused.to_string(), "the scorecard is at version 3, not 2");
    let invalid: ChangeRefused = invalid("agent_id", "x").into();
    assert_eq!(invalid.to_string(), "agent_id: x", "an Invalid reads as itself");
}

#[test]
fn autoqa_writes_only_what_changed() {
    let stored = StoredAutoQa {
        agent_id: "agent-1".into(),
        deleted: false,
        scores: vec![score(70, 1.0), score(71, 0.0)],
    };
    let cases: Vec<(&str, StoredAutoQa, &str, Vec<Score>, bool)> = vec![
        ("same agent and scores", stored.clone(), "agent-1", vec![score(70, 1.0), score(71, 0.0)], true),
        ("scores in another order", stored.clone(), "agent-1", vec![score(71, 0.0), score(70, 1.0)], true),
        ("another agent", stored.clone(), "agent-2", vec![score(70, 1.0), score(71, 0.0)], false),
        ("another value", stored.clone(), "agent-1", vec![score(70, 0.0), score(71, 0.0)], false),
        ("a score fewer", stored.clone(), "agent-1", vec![score(70, 1.0)], false),
        (
            "a score more",
            stored.clone(),
            "agent-1",
            vec![score(70, 1.0), score(71, 0.0), score(72, 1.0)],
            false,
        ),
        (
            "deleted since",
            StoredAutoQa { deleted: true, ..stored.clone() },
            "agent-1",
            vec![score(70, 1.0), score(71, 0.0)],
            false,
        ),
        (
            "no scores, none stored",
            StoredAutoQa { scores: Vec::new(), ..stored.clone() },
            "agent-1",
            Vec::new(),
            true,
        ),
    ];
    for (name, stored, agent_id, scores, holds) in cases {
        assert_eq!(stored.holds(agent_id, &scores), holds, "{name}");
    }
}

fn rule(pattern_type: crate::autoqa::PatternType, pattern: &str) -> crate::autoqa::Rule {
    crate::autoqa::Rule {
        kind: crate::autoqa::RuleKind::Present,
        pattern_type,
        pattern: pattern.into(),
        speaker: None,
        within_first_messages: 0,
        within_first_seconds: 0,
    }
}

#[test]
fn autoqa_scores_with_the_rules_of_a_conversation_template() {
    use crate::autoqa::PatternType;
    let with_rules = |rules: Vec<Option<crate::autoqa::Rule>>| {
        let criteria = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| Criterion { rule, ..criterion(70 + i as i64, 1.0) })
            .collect();
        template(CONVERSATION_TEMPLATE, TemplateType::Conversation, criteria)
    };
    let rated = with_rules(vec![None, Some(rule(PatternType::Phrase, "hello")), None]);
    let chosen = autoqa_template(Some(&rated), CONVERSATION_TEMPLATE, Rule::compile).unwrap();
    assert_eq!(chosen.template, &rated);
    let scored: Vec<CriterionId> = chosen.rules.iter().map(|(c, _)| c.id).collect();
    assert_eq!(scored, [CriterionId(71)], "only criteria with a rule are scored");

    let broken = rule(PatternType::Regex, "(");
    let broken_reason = crate::report::error_chain(&broken.compile().unwrap_err());
    let process = template(
        PROCESS_TEMPLATE,
        TemplateType::Process,
        vec![Criterion { rule: Some(rule(PatternType::Phrase, "hello")), ..criterion(80, 1.0) }],
    );
    let cases: Vec<(&str, Option<Template>, Invalid)> = vec![
        ("unknown template", None, invalid("template_id", "unknown template 7")),
        (
            "process template",
            Some(process),
            invalid("template_id", "AutoQA scores conversations; this is a process template"),
        ),
        (
            "a rule that does not compile",
            Some(with_rules(vec![Some(rule(PatternType::Phrase, "hello")), None, Some(broken)])),
            invalid("criteria[2].autoqa_rule", &broken_reason),
        ),
        (
            "no rule at all",
            Some(with_rules(vec![None, None])),
            invalid("template_id", "the template has no criterion with an AutoQA rule"),
        ),
    ];
    for (name, template, expected) in cases {
        assert_eq!(
            autoqa_template(template.as_ref(), CONVERSATION_TEMPLATE, Rule::compile).unwrap_err(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn autoqa_names_the_first_conversation_not_found() {
    let found = [LIVE[0], LIVE[2]];
    assert_eq!(autoqa_conversations_found(&[LIVE[2], LIVE[0]], &found), Ok(()));
    assert_eq!(autoqa_conversations_found(&[], &found), Ok(()));
    assert_eq!(
        autoqa_conversations_found(&[LIVE[0], LIVE[1], UNKNOWN], &found),
        Err(invalid("conversation_ids[1]", "unknown conversation 101")),
    );
}
