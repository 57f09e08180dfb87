//! AutoQA cannot be made to cost what the server cannot afford: rules are
//! admitted by a cost model, a call stops at its client's deadline and at
//! the server's ceiling with nothing written, and a customer beyond its
//! call slots is refused while others are served.

use std::time::{Duration, Instant};

use scorekeeper_domain::autoqa::{PatternType, Rule, RuleKind};
use scorekeeper_domain::scorecard::{NewCriterion, NewTemplate};
use scorekeeper_domain::scoring::{CriterionScale, TemplateType};
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule::Kind};
use scorekeeper_proto::v1;
use scorekeeper_service::AutoQaSettings;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::costly_autoqa::*;
use scorekeeper_tests::env::{Customer, Options};
use scorekeeper_tests::fixtures::*;
use tonic::Code;

async fn autoscore(
    customer: &Customer,
    template_id: i64,
    ids: &[i64],
    timeout: Option<Duration>,
) -> Result<Vec<v1::AutoscoreResult>, tonic::Status> {
    let mut request = tonic::Request::new(v1::AutoscoreConversationsRequest {
        template_id,
        conversation_ids: ids.to_vec(),
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    customer.autoqa().autoscore_conversations(request).await.map(|r| r.into_inner().results)
}

/// How many scorecards the customer has (AutoQA writes one per conversation).
async fn scorecard_count(customer: &Customer) -> usize {
    customer
        .scorecards()
        .list_scorecards(pb::ListScorecardsRequest { page_size: 500, ..Default::default() })
        .await
        .expect("listing scorecards")
        .into_inner()
        .scorecards
        .len()
}

/// A customer with a cheap AutoQA template and one conversation to score.
async fn cheap_work(env: &TestEnv, name: &str) -> (Customer, i64, Vec<i64>) {
    let customer = env.customer(name).await;
    let template = template(
        &customer,
        pb::ScorecardTemplateType::Conversation,
        vec![rule_criterion("greets", Kind::Present, "thank you for calling")],
    )
    .await;
    let ids = conversations(&customer, 1).await.iter().map(|c| c.id).collect();
    (customer, template.id, ids)
}

/// A customer with a template of `rules` costly admitted rules and
/// `conversations` conversations of 20 slow messages: seconds of scoring.
async fn costly_work(
    env: &TestEnv,
    name: &str,
    rules: usize,
    conversations: usize,
) -> (Customer, i64, Vec<i64>) {
    let customer = env.customer(name).await;
    let template = customer
        .scorecards()
        .create_scorecard_template(template_request(rules, COSTLY_ADMITTED))
        .await
        .expect("the costly rule is within the budget")
        .into_inner()
        .template
        .unwrap();
    let ids = slow_conversations(&customer, name, conversations, 20).await;
    (customer, template.id, ids)
}

fn settings(threads: usize, per_customer: usize, call_timeout: Duration) -> AutoQaSettings {
    AutoQaSettings {
        threads,
        max_calls_per_customer: per_customer,
        call_timeout,
        ..AutoQaSettings::default()
    }
}

#[tokio::test]
async fn rules_over_the_cost_model_are_refused_by_criterion_and_never_stored() {
    let env = TestEnv::start().await;
    let customer = env.customer("hostile").await;
    let refused = [
        (COSTLY_REFUSED, "budget is 10 ms"),
        (REPETITIVE_REFUSED, "repeats up to 1000 times"),
        (r"\w{3,40}", "compiled size over 1048576 bytes"),
    ];
    for (pattern, why) in refused {
        let request = pb::CreateScorecardTemplateRequest {
            name: "costly".into(),
            template_type: pb::ScorecardTemplateType::Conversation as i32,
            criteria: vec![
                criterion("manual", 1.0, 5.0),
                regex_criterion("cheap", r"\border\s+#?\d{6}\b"),
                regex_criterion("costly", pattern),
            ],
        };
        let status = customer.scorecards().create_scorecard_template(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{pattern}: {status:?}");
        assert!(
            status.message().starts_with("criteria[2].autoqa_rule.pattern: "),
            "{pattern}: {}",
            status.message()
        );
        assert!(status.message().contains(why), "{pattern}: {}", status.message());
    }
    let listed = customer
        .scorecards()
        .list_scorecard_templates(pb::ListScorecardTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .templates;
    assert!(listed.is_empty(), "nothing refused was stored: {listed:?}");
    // The heaviest rule of these tests is admitted.
    customer.scorecards().create_scorecard_template(template_request(1, COSTLY_ADMITTED)).await.unwrap();
}

#[tokio::test]
async fn a_stored_rule_from_before_the_cost_model_is_refused_at_first_use() {
    let env = TestEnv::start().await;
    let customer = env.customer("legacy").await;
    // Stored directly, as a template written before admission existed.
    let rule = Rule {
        kind: RuleKind::Absent,
        pattern_type: PatternType::Regex,
        pattern: COSTLY_REFUSED.into(),
        speaker: None,
        within_first_messages: 0,
        within_first_seconds: 0,
    };
    let scale = CriterionScale { weight: 1.0, min_value: 0.0, max_value: 1.0 };
    let legacy = NewTemplate {
        name: "legacy".into(),
        template_type: TemplateType::Conversation,
        criteria: vec![
            NewCriterion { name: "manual".into(), scale, rule: None },
            NewCriterion { name: "costly".into(), scale, rule: Some(rule) },
        ],
    };
    let template = env.store.create_template(customer.id, &legacy).await.unwrap();
    let ids = slow_conversations(&customer, "legacy", 1, 2).await;
    let status = autoscore(&customer, template.id.0, &ids, None).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("criteria[1].autoqa_rule: "), "{}", status.message());
    assert!(status.message().contains("budget is 10 ms"), "{}", status.message());
    assert_eq!(scorecard_count(&customer).await, 0);
}

#[tokio::test]
async fn the_client_deadline_stops_the_scoring_and_nothing_is_written() {
    let env = TestEnv::start_with(Options {
        autoqa: settings(1, 2, Duration::from_secs(60)),
        ..Options::default()
    })
    .await;
    // About 20 rules x 3 ms x 20 messages = 1.2 s per conversation, 6 s in all.
    let (heavy, template_id, ids) = costly_work(&env, "heavy", 20, 5).await;
    let (other, cheap_template, cheap_ids) = cheap_work(&env, "other").await;

    let started = Instant::now();
    let status = autoscore(&heavy, template_id, &ids, Some(Duration::from_millis(500))).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let answered = started.elapsed();
    // The one scoring thread is free again at once: the heavy call's work
    // stopped at the deadline (were it going on, this would wait seconds).
    let started = Instant::now();
    let cheap =
        autoscore(&other, cheap_template, &cheap_ids, None).await.expect("the other customer is scored");
    let cheap_took = started.elapsed();
    assert_eq!(cheap.len(), 1);
    assert!(cheap_took < Duration::from_millis(1500), "the scoring thread stayed busy for {cheap_took:?}");
    eprintln!(
        "deadline 500 ms: answered after {answered:?}; the next call on the one scoring thread took {cheap_took:?}"
    );
    assert_eq!(scorecard_count(&heavy).await, 0, "a stopped call writes nothing");
}

#[tokio::test]
async fn the_ceiling_and_the_call_slots_refuse_with_resource_exhausted() {
    let env =
        TestEnv::start_with(Options { autoqa: settings(1, 1, Duration::from_secs(2)), ..Options::default() })
            .await;
    let (heavy, template_id, ids) = costly_work(&env, "heavy", 20, 5).await;
    let (other, cheap_template, cheap_ids) = cheap_work(&env, "other").await;

    let first = {
        let (heavy, ids) = (heavy.clone(), ids.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            (autoscore(&heavy, template_id, &ids, None).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The customer's one slot is taken: its second call is refused at once.
    let second = autoscore(&heavy, template_id, &ids, None).await.unwrap_err();
    assert_eq!(second.code(), Code::ResourceExhausted, "{second:?}");
    assert!(second.message().contains("AUTOQA_MAX_CALLS_PER_CUSTOMER"), "{}", second.message());
    // Another customer is served meanwhile, between the heavy call's slices.
    let cheap =
        autoscore(&other, cheap_template, &cheap_ids, None).await.expect("another customer is served");
    assert_eq!(cheap.len(), 1);

    let (first, took) = first.await.unwrap();
    let first = first.unwrap_err();
    assert_eq!(first.code(), Code::ResourceExhausted, "{first:?}");
    assert!(first.message().contains("AUTOQA_CALL_TIMEOUT_SECONDS"), "{}", first.message());
    assert!(first.message().contains("nothing was written"), "{}", first.message());
    assert!(took < Duration::from_secs(4), "stopped at the 2 s ceiling, not after {took:?}");
    assert_eq!(scorecard_count(&heavy).await, 0, "a stopped call writes nothing");
    // The slot came back.
    let status =
        autoscore(&heavy, template_id, &ids[..1], Some(Duration::from_millis(300))).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}
