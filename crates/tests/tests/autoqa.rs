//! The `autoqa` write path: rules evaluated on transcripts, one AUTOQA
//! scorecard per (conversation, template), mirrored through the outbox.

use std::time::Duration;

use scorekeeper_proto::coaching::{self as pb, auto_qa_rule::Kind};
use scorekeeper_proto::v1::{self, Speaker};
use scorekeeper_service::AutoQaSettings;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Customer, Options};
use scorekeeper_tests::fixtures::*;

async fn autoscore(customer: &Customer, template_id: i64, ids: &[i64]) -> Vec<v1::AutoscoreResult> {
    customer
        .autoqa()
        .autoscore_conversations(v1::AutoscoreConversationsRequest {
            template_id,
            conversation_ids: ids.to_vec(),
        })
        .await
        .expect("autoscore")
        .into_inner()
        .results
}

#[tokio::test]
async fn autoqa_scores_deterministically_once_per_conversation() {
    // Three calls of one customer at once (the default allows two).
    let autoqa = AutoQaSettings { max_calls_per_customer: 3, ..AutoQaSettings::default() };
    let env = TestEnv::start_with(Options { autoqa, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let template = template(
        &customer,
        pb::ScorecardTemplateType::Conversation,
        vec![
            rule_criterion("greets", Kind::Present, "thank you for calling"),
            rule_criterion("no blame", Kind::Absent, "not my problem"),
            criterion("manual only", 1.0, 5.0),
        ],
    )
    .await;
    let polite = conversation(
        "polite",
        "agent-1",
        T0,
        &[(Speaker::Agent, "Thank you for calling!"), (Speaker::Customer, "Hi, not my problem really")],
    );
    let rude = conversation("rude", "agent-2", T0 + 60, &[(Speaker::Agent, "Yes? Not my problem.")]);
    let stored = customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest { conversations: vec![polite.clone(), rude] })
        .await
        .unwrap()
        .into_inner()
        .conversations;
    let ids: Vec<i64> = stored.iter().map(|c| c.id).collect();

    let first = autoscore(&customer, template.id, &ids).await;
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|r| r.changed));
    // polite: greets (agent said it) and no blame (only the customer said it).
    assert_eq!(first[0].total_score, 100.0);
    // rude: neither.
    assert_eq!(first[1].total_score, 0.0);

    // Again, and concurrently twice more: same scorecards, nothing changed, no duplicates.
    let (a, b, c) = tokio::join!(
        autoscore(&customer, template.id, &ids),
        autoscore(&customer, template.id, &ids),
        autoscore(&customer, template.id, &ids)
    );
    for again in [a, b, c] {
        assert_eq!(
            again.iter().map(|r| (r.scorecard_id, r.total_score, r.changed)).collect::<Vec<_>>(),
            first.iter().map(|r| (r.scorecard_id, r.total_score, false)).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        env.postgres_count("scorecards").await,
        2,
        "one AUTOQA scorecard per conversation and template"
    );

    // A changed transcript updates the same scorecard.
    let mut fixed = polite;
    fixed.messages.truncate(0);
    fixed.messages.push(v1::Message {
        speaker: Speaker::Customer as i32,
        text: "thank you for calling".into(),
        offset_ms: 0,
    });
    customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest { conversations: vec![fixed] })
        .await
        .unwrap();
    let after = autoscore(&customer, template.id, &ids[..1]).await;
    assert_eq!(after[0].scorecard_id, first[0].scorecard_id);
    assert!(after[0].changed);
    assert_eq!(after[0].total_score, 50.0, "the customer saying the greeting does not count for the agent");

    env.outbox_drained(Duration::from_secs(20)).await.unwrap();
    env.assert_scorecards_mirrored().await;
    let rows = env.clickhouse_scorecards().await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.is_process_scorecard == 0 && r.source == 2));
    assert_eq!(
        env.clickhouse_scores().await.len(),
        4,
        "two rule criteria per conversation; the manual one is not scored"
    );
}
