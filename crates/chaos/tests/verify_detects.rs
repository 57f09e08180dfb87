//! The proof the scenarios end with can fail: a write acknowledged but not
//! in Postgres, and a row changed in Postgres behind the outbox's back, are
//! both reported.

use scorekeeper_chaos::load::{AckedWrite, Ledger};
use scorekeeper_chaos::scenarios::mirror_everything;
use scorekeeper_chaos::verify::check;
use scorekeeper_chaos::world::{FaultSettings, World};
use scorekeeper_tests::env::bulk_import;

#[tokio::test]
async fn the_check_reports_lost_writes_and_drift() {
    let world = World::start("verify", &FaultSettings::default(), false).await.unwrap();
    bulk_import(&world.store, world.customer, 20).await;
    mirror_everything(&world).await.unwrap();
    let clean = check(&world, &Ledger::default()).await.unwrap();
    assert!(clean.clean(), "a mirrored world is clean: {clean:#?}");

    // Acknowledged, but Postgres never had it.
    let mut ledger = Ledger::default();
    ledger.writes.insert(i64::MAX, AckedWrite { version: 1, scores: vec![] });
    let lost = check(&world, &ledger).await.unwrap();
    assert_eq!((lost.acked_lost_in_postgres, lost.acked_lost_in_clickhouse), (1, 1), "{lost:#?}");
    assert!(!lost.clean());

    // Changed in Postgres without an outbox entry: ClickHouse is stale.
    let client = world.store.pool().get().await.unwrap();
    client
        .execute(
            "UPDATE scorecards SET total_score = 1 WHERE id = (SELECT min(id) FROM scorecards WHERE customer_id = $1)",
            &[&world.customer.0],
        )
        .await
        .unwrap();
    let drift = check(&world, &Ledger::default()).await.unwrap();
    assert!(drift.rows_differing >= 1, "{drift:#?}");
    assert!(drift.audit_drift >= 1, "{drift:#?}");
    assert!(!drift.clean());
}
