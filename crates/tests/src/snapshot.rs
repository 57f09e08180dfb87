//! A fingerprint of everything a test's databases store, to prove a
//! refused request wrote nothing.

use crate::TestEnv;

/// Postgres tables a write could touch; each is fingerprinted whole.
const TABLES: [&str; 10] = [
    "customers",
    "scorecard_templates",
    "criteria",
    "conversations",
    "messages",
    "scorecards",
    "scores",
    "process_scorecard_conversations",
    "outbox",
    "api_tokens",
];

/// ClickHouse tables, counted with old versions and tombstones (no FINAL),
/// so any insert at all shows.
const CLICKHOUSE_TABLES: [&str; 3] = ["conversations", "scorecards", "scores"];

/// Everything stored, as row counts and a checksum of every row's text
/// (which includes `version`, so any update shows even where the count
/// does not). The `mirror_version` sequence is left out on purpose: a
/// rolled-back transaction may still consume values from it. The job
/// engine's tables are not covered.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    postgres: Vec<(String, i64, String)>,
    clickhouse: Vec<(&'static str, u64)>,
}

impl Snapshot {
    /// Only meaningful while the outbox is empty (the dispatcher would
    /// otherwise change `outbox` and ClickHouse behind the test's back).
    pub async fn take(env: &TestEnv) -> Snapshot {
        let sql = TABLES
            .iter()
            .map(|t| {
                format!(
                    "SELECT '{t}'::text, count(*), \
                     md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} AS x"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let postgres = async {
            let client = env.store.pool().get().await.expect("a Postgres connection");
            client
                .query(&sql, &[])
                .await
                .expect("fingerprinting Postgres tables")
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        };
        let [conversations, scorecards, scores] = CLICKHOUSE_TABLES;
        let (postgres, conversations, scorecards, scores) = tokio::join!(
            postgres,
            env.clickhouse_row_count(conversations),
            env.clickhouse_row_count(scorecards),
            env.clickhouse_row_count(scores),
        );
        let clickhouse = CLICKHOUSE_TABLES.into_iter().zip([conversations, scorecards, scores]).collect();
        Snapshot { postgres, clickhouse }
    }

    /// What differs from `before`, for an assertion message.
    pub fn diff(&self, before: &Snapshot) -> String {
        let postgres = self
            .postgres
            .iter()
            .zip(&before.postgres)
            .filter(|(now, then)| now != then)
            .map(|(now, then)| format!("{}: {} rows -> {} rows", now.0, then.1, now.1));
        let clickhouse = self
            .clickhouse
            .iter()
            .zip(&before.clickhouse)
            .filter(|(now, then)| now != then)
            .map(|(now, then)| format!("ClickHouse {}: {} rows -> {} rows", now.0, then.1, now.1));
        postgres.chain(clickhouse).collect::<Vec<_>>().join("; ")
    }
}
