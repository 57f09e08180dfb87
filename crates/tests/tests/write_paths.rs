//! The write paths: after each runs, ClickHouse (FINAL, live rows) holds
//! exactly what Postgres holds, with the right is_process_scorecard.

use std::time::Duration;

use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::fixtures::*;

const DRAIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn create_update_delete_reach_clickhouse() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    let conv_template = conversation_template(&customer).await;
    let proc_template = process_template(&customer).await;
    let convs = conversations(&customer, 5).await;
    let mut api = customer.scorecards();

    let mut ids = Vec::new();
    for c in &convs {
        let created =
            create_scorecard(&customer, conversation_scorecard(&conv_template, c.id, &[4.0, 7.0])).await;
        assert_eq!(
            created.agent_id, c.agent_id,
            "a conversation scorecard's agent defaults to the conversation's"
        );
        ids.push(created.id);
    }
    let process = create_scorecard(
        &customer,
        process_scorecard(&proc_template, "agent-9", vec![convs[0].id, convs[1].id], &[3.0]),
    )
    .await;

    let updated = update_scorecard(
        &customer,
        pb::UpdateScorecardRequest {
            id: ids[0],
            scores: scores(&conv_template, &[1.0]), // drops the second criterion
            ..Default::default()
        },
    )
    .await;
    assert_eq!(updated.scores.len(), 1);
    api.delete_scorecard(pb::DeleteScorecardRequest { id: ids[1] }).await.expect("delete");

    env.outbox_drained(DRAIN).await.unwrap();
    env.assert_scorecards_mirrored().await;

    let in_clickhouse = env.clickhouse_scorecards().await;
    assert_eq!(in_clickhouse.len(), 5, "5 conversation + 1 process - 1 deleted");
    let process_row =
        in_clickhouse.iter().find(|r| r.id == process.id).expect("process scorecard in ClickHouse");
    assert_eq!(process_row.is_process_scorecard, 1);
    assert_eq!(process_row.conversation_id, 0);
    assert!(in_clickhouse.iter().filter(|r| r.id != process.id).all(|r| r.is_process_scorecard == 0));
    assert!(
        env.clickhouse_scores().await.iter().all(|s| s.scorecard_id != ids[1]),
        "deleted scorecard's scores are tombstoned"
    );
}

#[tokio::test]
async fn clickhouse_outage_loses_nothing() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    let conv_template = conversation_template(&customer).await;
    let proc_template = process_template(&customer).await;
    let convs = conversations(&customer, 10).await;
    let mut api = customer.scorecards();

    env.proxy.cut();
    for (i, c) in convs.iter().enumerate() {
        api.create_scorecard(conversation_scorecard(&conv_template, c.id, &[(i % 6) as f64, 5.0]))
            .await
            .expect("creates succeed while ClickHouse is down");
        api.create_scorecard(process_scorecard(&proc_template, format!("agent-{i}"), vec![c.id], &[2.0]))
            .await
            .expect("process creates succeed while ClickHouse is down");
    }
    // Give the dispatcher time to try, and fail, a few times.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        env.clickhouse_row_count("scorecards").await,
        0,
        "nothing can reach ClickHouse while it is cut off"
    );
    let stats = env.store.outbox_stats().await.unwrap();
    assert_eq!(stats.depth, 20, "every acknowledged create waits in the outbox");

    env.proxy.restore();
    env.outbox_drained(Duration::from_secs(30)).await.expect("the outbox drains once ClickHouse is back");
    env.assert_scorecards_mirrored().await;
    assert_eq!(env.clickhouse_scorecards().await.len(), 20);
}

#[tokio::test]
async fn a_stale_version_arriving_late_loses_to_the_newer_one() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    let (template, created) = one_conversation_scorecard(&customer, &[1.0, 1.0]).await;
    let mut api = customer.scorecards();
    env.outbox_drained(DRAIN).await.unwrap();
    let stale = env.postgres_scorecards().await;

    let updated = update_scorecard(
        &customer,
        pb::UpdateScorecardRequest {
            id: created.id,
            scores: scores(&template, &[5.0, 10.0]),
            ..Default::default()
        },
    )
    .await;
    assert!(updated.version > created.version, "versions only grow");
    env.outbox_drained(DRAIN).await.unwrap();

    // The old state arrives late, as a slow or retried writer would send it.
    env.analytics.write(scorekeeper_analytics::WritePath::Reindex, &stale).await.unwrap();
    env.assert_scorecards_mirrored().await;
    let row = &env.clickhouse_scorecards().await[0];
    assert_eq!(row.total_score, 100.0);
    assert_eq!(row.version, updated.version as u64);

    // And a delete beats a late live row too.
    api.delete_scorecard(pb::DeleteScorecardRequest { id: created.id }).await.unwrap();
    env.outbox_drained(DRAIN).await.unwrap();
    env.analytics.write(scorekeeper_analytics::WritePath::Reindex, &stale).await.unwrap();
    assert!(env.clickhouse_scorecards().await.is_empty(), "the tombstone wins over the stale live row");
    assert!(env.clickhouse_scores().await.is_empty());
}

#[tokio::test]
async fn batch_index_writes_conversations_and_only_conversation_scorecards() {
    let env =
        TestEnv::start_with(scorekeeper_tests::env::Options { dispatcher: false, ..Default::default() })
            .await;
    let customer = env.customer("acme").await;
    let conv_template = conversation_template(&customer).await;
    let proc_template = process_template(&customer).await;
    let convs = conversations(&customer, 6).await;
    let mut api = customer.scorecards();
    for c in &convs {
        api.create_scorecard(conversation_scorecard(&conv_template, c.id, &[2.0, 3.0])).await.unwrap();
    }
    api.create_scorecard(process_scorecard(&proc_template, "agent-x", vec![convs[0].id], &[1.0]))
        .await
        .unwrap();

    // A window holding the first four conversations (a minute apart from T0).
    let report = customer
        .conversations()
        .batch_index_conversations(scorekeeper_proto::v1::BatchIndexConversationsRequest {
            start_time: ts(T0),
            end_time: ts(T0 + 4 * 60),
            ..Default::default()
        })
        .await
        .expect("batch index by window")
        .into_inner();
    assert_eq!((report.conversations_indexed, report.scorecards_indexed, report.scores_indexed), (4, 4, 8));
    // And two more by id.
    customer
        .conversations()
        .batch_index_conversations(scorekeeper_proto::v1::BatchIndexConversationsRequest {
            conversation_ids: vec![convs[4].id, convs[5].id],
            ..Default::default()
        })
        .await
        .expect("batch index by ids");

    let in_clickhouse = env.clickhouse_conversations().await;
    let all = scorekeeper_domain::reindex::ReindexScope {
        customer_id: Some(customer.id),
        conversation_ids: convs.iter().map(|c| scorekeeper_domain::ConversationId(c.id)).collect(),
        ..Default::default()
    };
    let stored = env
        .store
        .conversations_in_scope(&all, scorekeeper_domain::reindex::KeyRange::ALL, 100)
        .await
        .unwrap();
    let expected: Vec<scorekeeper_analytics::rows::ConversationRow> =
        scorekeeper_analytics::rows::encode_all(&stored).expect("a time ClickHouse holds");
    assert_eq!(expected.len(), 6);
    assert_eq!(in_clickhouse, expected, "conversations in ClickHouse equal Postgres");
    let scorecards = env.clickhouse_scorecards().await;
    assert_eq!(scorecards.len(), 6);
    assert!(
        scorecards.iter().all(|s| s.is_process_scorecard == 0),
        "batch index never writes process scorecards"
    );
    let truth = env.postgres_scorecards().await;
    let conversation_scorecards = truth.scorecards.iter().filter(|s| !s.template_type.is_process());
    let expected: Vec<scorekeeper_analytics::rows::ScorecardRow> =
        scorekeeper_analytics::rows::encode_all(conversation_scorecards).expect("a time ClickHouse holds");
    assert_eq!(scorecards, expected);
    assert_eq!(env.clickhouse_scores().await.len(), 12);
}

/// Optimistic concurrency on UpdateScorecard: a stale `expected_version` is
/// ABORTED naming both versions and changes nothing; the current one wins.
#[tokio::test]
async fn a_stale_expected_version_is_aborted_and_changes_nothing() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    let (template, created) = one_conversation_scorecard(&customer, &[4.0, 7.0]).await;
    let mut api = customer.scorecards();
    let update = |expected_version| pb::UpdateScorecardRequest {
        id: created.id,
        scores: scores(&template, &[1.0]),
        expected_version,
        ..Default::default()
    };

    let stale = api.update_scorecard(update(created.version + 1)).await.expect_err("a stale version");
    assert_eq!(stale.code(), tonic::Code::Aborted);
    assert_eq!(
        stale.message(),
        format!("scorecard {} is at version {}, not {}", created.id, created.version, created.version + 1)
    );
    let unchanged = api
        .get_scorecard(pb::GetScorecardRequest { id: created.id })
        .await
        .expect("get")
        .into_inner()
        .scorecard
        .unwrap();
    assert_eq!(unchanged, created, "a refused update writes nothing");

    let updated = update_scorecard(&customer, update(created.version)).await;
    assert!(updated.version > created.version);
    let again = api.update_scorecard(update(created.version)).await.expect_err("now stale");
    assert_eq!(again.code(), tonic::Code::Aborted);
}
