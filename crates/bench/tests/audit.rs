//! `scorekeeper-bench audit` on a small world: it mirrors the world, finds
//! it in sync, and names exactly the drift it made.

use scorekeeper_store::Store;
use scorekeeper_testbed::postgres_url::with_database;
use scorekeeper_tests::env::bulk_import;
use scorekeeper_tests::process::run_bench;
use scorekeeper_tests::stack::{self, BenchDatabases, setting};

/// The bench's datasets take a minute to generate even at scale `s`; this
/// test puts a small bulk-imported world in the bench's database instead
/// and marks it as the scale-`s` dataset (generator 1, as
/// `dataset` writes it), which the bench then takes as it is. Its
/// ClickHouse database starts empty, so the bench also reindexes first.
#[tokio::test]
async fn bench_audit_mirrors_finds_no_drift_and_names_exactly_the_drift_it_made() {
    let admin_url = setting("DATABASE_URL").unwrap();
    let databases = BenchDatabases::fresh(&admin_url, "reindex_s").unwrap();
    let (base, bench) = (databases.base.as_str(), databases.bench.as_str());
    let bench_url = with_database(&admin_url, bench).unwrap();
    scorekeeper_testbed::database::create_if_missing(&bench_url).await.unwrap();
    let store = Store::connect(&bench_url, 2).unwrap();
    scorekeeper_jobs::migrate_postgres(&store).await.unwrap();
    let mut rows = 0;
    for name in ["a", "b"] {
        let customer = store.ensure_customer(name).await.unwrap();
        rows += bulk_import(&store, customer, 150).await.rows;
    }
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE bench_dataset (scale text NOT NULL, generator integer NOT NULL,
                                         generated_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO bench_dataset (scale, generator) VALUES ('s', 1);",
        )
        .await
        .unwrap();

    let (stdout, figures) =
        run_bench(env!("CARGO_BIN_EXE_scorekeeper-bench"), &["audit", "--scale", "s", "--drift", "4"], base)
            .await;
    assert!(stdout.contains("in sync") && stdout.contains("drifted rows found"), "the table:\n{stdout}");
    let count = |path: &[&str]| {
        path.iter()
            .fold(&figures, |value, key| &value[*key])
            .as_u64()
            .unwrap_or_else(|| panic!("{path:?}: {figures:#}"))
    };
    assert_eq!(figures["mirror_reindexed"], true, "ClickHouse started empty: {figures:#}");
    assert_eq!(count(&["in_sync", "rows_checked"]), rows as u64, "every live row checked: {figures:#}");
    assert_eq!(count(&["in_sync", "drifted_rows"]), 0, "{figures:#}");
    // At least the 4 rows of each kind in each table (more: the scores of
    // stale and deleted scorecards), every one named and nothing else.
    let injected = count(&["drifted_rows_injected"]);
    assert!(injected >= 3 * 3 * 4, "{figures:#}");
    assert_eq!(count(&["drifted_rows_found"]), injected, "{figures:#}");
    assert_eq!(count(&["drifted", "drifted_rows"]), injected, "{figures:#}");
    assert_eq!(count(&["drifted_rows_missed"]) + count(&["drifted_rows_unexpected"]), 0, "{figures:#}");
    for field in ["in_sync_s", "drifted_s"] {
        assert!(figures[field].as_f64().is_some_and(|s| s > 0.0), "{field}: {figures:#}");
    }

    // The drift was undone: Postgres holds the world as it was, and an
    // audit of it finds nothing again.
    let live: i64 = store
        .pool()
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT (SELECT count(*) FROM conversations WHERE deleted_at IS NULL)
                  + (SELECT count(*) FROM scorecards WHERE deleted_at IS NULL)
                  + (SELECT count(*) FROM scores WHERE deleted_at IS NULL)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, rows, "the rows the bench made and deleted are back as they were");
    let config = stack::clickhouse_config(bench).unwrap();
    let analytics = scorekeeper_analytics::Analytics::new(config).unwrap();
    let scope = scorekeeper_domain::audit::AuditScope::default();
    let report = scorekeeper_sync::audit::audit(&store, &analytics, &scope).await.unwrap();
    assert_eq!(report.drifted(), 0, "{report:#?}");
}
