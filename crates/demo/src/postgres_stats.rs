//! Score statistics computed from Postgres: the twin of the ClickHouse query
//! `crates/analytics/sql/queries/score_stats.sql` that GetScoreStats serves.
//!
//! The service reads these statistics from ClickHouse only; this copy exists
//! so that the demo can show the analytics copy agrees with the source of
//! truth. Keep both queries' semantics identical: same rows, same keys, same
//! grouping, same order.

use chrono::{DateTime, Utc};
use scorekeeper_domain::{CustomerId, TemplateType};
use scorekeeper_store::Store;

/// What score statistics are grouped by (the Postgres twin of
/// `scorekeeper_analytics::stats::GroupBy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsGroupBy {
    /// The scored agent's id.
    Agent,
    /// The template id, in decimal.
    Template,
    /// Calendar day (UTC) of the scorecard's creation, `YYYY-MM-DD`.
    Day,
}

impl StatsGroupBy {
    /// The SQL expression of the group key. Each renders exactly the string
    /// ClickHouse renders: `agent_id`, `toString(template_id)` and
    /// `toString(toDate(created_at))` on a UTC server.
    fn key_sql(self) -> &'static str {
        match self {
            StatsGroupBy::Agent => "agent_id",
            StatsGroupBy::Template => "template_id::text",
            StatsGroupBy::Day => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        }
    }
}

/// One group of score statistics; the same columns as
/// `scorekeeper_analytics::stats::ScoreStatsRow`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreStats {
    /// Agent id, template id or `YYYY-MM-DD`, by the grouping.
    pub key: String,
    /// Process scorecards (template type 2) and conversation scorecards are
    /// counted apart.
    pub is_process_scorecard: bool,
    pub scorecards: i64,
    pub average_total_score: f64,
}

/// Average total score of the customer's live scorecards created in
/// `[start, end)` (unbounded when `None`), by `group_by`, process and
/// conversation scorecards apart; ordered by key (byte-wise), then
/// conversation before process.
///
/// Postgres twin of `Analytics::score_stats` (ClickHouse,
/// `score_stats.sql`): for a fully mirrored customer both return the
/// same rows, with averages equal up to floating-point summation order.
pub async fn score_stats(
    store: &Store,
    customer_id: CustomerId,
    group_by: StatsGroupBy,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<ScoreStats>> {
    // ClickHouse stores `created_at` as whole seconds (truncated) and
    // truncates the bounds the same way, so both sides are compared at
    // second precision here; otherwise a scorecard created in the same
    // second as a bound could fall on different sides of it.
    //
    // `COLLATE "C"` orders keys byte-wise, as ClickHouse orders strings;
    // the database's default collation would order e.g. `agent-10` and
    // `Agent-2` differently.
    let sql = format!(
        "SELECT {key} AS key, template_type = $4 AS is_process_scorecard,
                    count(*) AS scorecards, avg(total_score) AS average_total_score
             FROM scorecards
             WHERE customer_id = $1 AND deleted_at IS NULL
               AND ($2::timestamptz IS NULL
                    OR date_trunc('second', created_at) >= date_trunc('second', $2::timestamptz))
               AND ($3::timestamptz IS NULL
                    OR date_trunc('second', created_at) < date_trunc('second', $3::timestamptz))
             GROUP BY 1, 2
             ORDER BY {key} COLLATE \"C\", 2",
        key = group_by.key_sql(),
    );
    let client = store.pool().get().await?;
    let process = TemplateType::Process.number();
    let rows = client.query(&sql, &[&customer_id.0, &start, &end, &process]).await?;
    rows.iter()
        .map(|row| {
            Ok(ScoreStats {
                key: row.try_get("key")?,
                is_process_scorecard: row.try_get("is_process_scorecard")?,
                scorecards: row.try_get("scorecards")?,
                average_total_score: row.try_get("average_total_score")?,
            })
        })
        .collect()
}
