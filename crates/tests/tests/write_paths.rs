//! The write paths: after each runs, ClickHouse (FINAL, live rows) holds
//! exactly what Postgres holds, with the right is_process_scorecard.

use std::time::Duration;

use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;

use crate::fixtures::*;

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
        let created = api
            .create_scorecard(pb::CreateScorecardRequest {
                template_id: conv_template.id,
                conversation_id: c.id,
                scores: scores(&conv_template, &[4.0, 7.0]),
                ..Default::default()
            })
            .await
            .expect("create conversation scorecard")
            .into_inner()
            .scorecard
            .unwrap();
        assert_eq!(
            created.agent_id, c.agent_id,
            "a conversation scorecard's agent defaults to the conversation's"
        );
        ids.push(created.id);
    }
    let process = api
        .create_scorecard(pb::CreateScorecardRequest {
            template_id: proc_template.id,
            agent_id: "agent-9".into(),
            linked_conversation_ids: vec![convs[0].id, convs[1].id],
            scores: scores(&proc_template, &[3.0]),
            ..Default::default()
        })
        .await
        .expect("create process scorecard")
        .into_inner()
        .scorecard
        .unwrap();

    let updated = api
        .update_scorecard(pb::UpdateScorecardRequest {
            id: ids[0],
            scores: scores(&conv_template, &[1.0]), // drops the second criterion
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner()
        .scorecard
        .unwrap();
    assert_eq!(updated.scores.len(), 1);
    api.delete_scorecard(pb::DeleteScorecardRequest { id: ids[1] })
        .await
        .expect("delete");

    env.outbox_drained(DRAIN).await.unwrap();
    env.assert_scorecards_mirrored().await;

    let in_clickhouse = env.clickhouse_scorecards().await;
    assert_eq!(
        in_clickhouse.len(),
        5,
        "5 conversation + 1 process - 1 deleted"
    );
    let process_row = in_clickhouse
        .iter()
        .find(|r| r.id == process.id)
        .expect("process scorecard in ClickHouse");
    assert_eq!(process_row.is_process_scorecard, 1);
    assert_eq!(process_row.conversation_id, 0);
    assert!(
        in_clickhouse
            .iter()
            .filter(|r| r.id != process.id)
            .all(|r| r.is_process_scorecard == 0)
    );
    assert!(
        env.clickhouse_scores()
            .await
            .iter()
            .all(|s| s.scorecard_id != ids[1]),
        "deleted scorecard's scores are tombstoned"
    );
}
