//! Found by the chaos runs (`postgres_restart`, scenario 3): a Postgres
//! connection lost while the dispatcher records a delivered batch left its
//! entries claimed for the whole outbox lease (60 s), although the
//! dispatcher lived on and Postgres was back in a moment, so the writes
//! reached ClickHouse a minute late. The proxy tears exactly that statement
//! (`DELETE FROM outbox`); the dispatcher must record it again at once.

use std::time::{Duration, Instant};

use scorekeeper_proto::coaching::{CreateScorecardRequest, Score};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::bulk_import;
use scorekeeper_tests::fixtures::create_scorecard;

#[tokio::test]
async fn a_lost_connection_while_completing_a_batch_does_not_hold_it_for_the_lease() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    let bulk = bulk_import(&env.store, customer.id, 10).await;
    let template = env.store.get_template(customer.id, bulk.conversation_template).await.unwrap().unwrap();
    let conversation: i64 = env
        .store
        .pool()
        .get()
        .await
        .unwrap()
        .query_one("SELECT min(id) FROM conversations WHERE customer_id = $1", &[&customer.id.0])
        .await
        .unwrap()
        .get(0);

    // The dispatcher's next "DELETE FROM outbox" dies before Postgres sees it whole.
    env.postgres_proxy.tear_after("DELETE FROM outbox", 4, 1);
    let created = create_scorecard(
        &customer,
        CreateScorecardRequest {
            template_id: template.id.0,
            conversation_id: conversation,
            scores: template.criteria.iter().map(|c| Score { criterion_id: c.id.0, value: 3.0 }).collect(),
            ..Default::default()
        },
    )
    .await;

    let started = Instant::now();
    while env.postgres_proxy.tears_done() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the dispatcher never completed a batch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Far below the 60 s lease the entry would otherwise sit out.
    env.outbox_drained(Duration::from_secs(10)).await.unwrap();
    let in_clickhouse = env.clickhouse_scorecards().await;
    assert!(in_clickhouse.iter().any(|s| s.id == created.id && s.version == created.version as u64));
}
