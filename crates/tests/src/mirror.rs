//! The mirror's rows as sets to compare: what ClickHouse holds (FINAL,
//! tombstones included) against what Postgres says it must hold, table by
//! table and column for column.

use std::collections::BTreeSet;
use std::fmt::Debug;

use scorekeeper_analytics::rows::{ConversationRow, ScoreRow, ScorecardRow};

use crate::TestEnv;

/// Mirror rows of the three tables, in (customer, id) order.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    pub conversations: Vec<ConversationRow>,
    pub scorecards: Vec<ScorecardRow>,
    pub scores: Vec<ScoreRow>,
}

impl Rows {
    /// Puts each table in (customer, id) order.
    pub fn sort(&mut self) {
        self.conversations.sort_by_key(Key::key);
        self.scorecards.sort_by_key(Key::key);
        self.scores.sort_by_key(Key::key);
    }

    /// Both sets of rows, in order.
    pub fn merge(mut self, other: Rows) -> Rows {
        self.conversations.extend(other.conversations);
        self.scorecards.extend(other.scorecards);
        self.scores.extend(other.scores);
        self.sort();
        self
    }

    /// What the conversation activity (`process == false`) or the process
    /// activity reports as rows_done for these rows.
    pub fn activity_rows(&self, process: bool) -> i64 {
        let conversations = if process { 0 } else { self.conversations.len() };
        let scorecards = self.scorecards.iter().filter(|s| (s.is_process_scorecard == 1) == process).count();
        let scores = self.scores.iter().filter(|s| (s.is_process_scorecard == 1) == process).count();
        (conversations + scorecards + scores) as i64
    }

    pub fn scorecard_ids(&self) -> BTreeSet<i64> {
        self.scorecards.iter().map(|s| s.id).collect()
    }
}

/// The (customer_id, id) a row is keyed by in ClickHouse.
pub trait Key {
    fn key(&self) -> (i64, i64);
}

impl Key for ConversationRow {
    fn key(&self) -> (i64, i64) {
        (self.customer_id, self.id)
    }
}
impl Key for ScorecardRow {
    fn key(&self) -> (i64, i64) {
        (self.customer_id, self.id)
    }
}
impl Key for ScoreRow {
    fn key(&self) -> (i64, i64) {
        (self.customer_id, self.id)
    }
}

/// Every row of `table` in ClickHouse as FINAL sees it, tombstones included.
async fn clickhouse_table<T>(env: &TestEnv, table: &str) -> Vec<T>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    env.clickhouse_client()
        .query(&format!("SELECT ?fields FROM {table} FINAL ORDER BY customer_id, id"))
        .fetch_all::<T>()
        .await
        .unwrap_or_else(|e| panic!("reading {table} from ClickHouse: {e}"))
}

/// Every row ClickHouse holds (FINAL, tombstones included), in order.
pub async fn clickhouse_rows(env: &TestEnv) -> Rows {
    Rows {
        conversations: clickhouse_table(env, "conversations").await,
        scorecards: clickhouse_table(env, "scorecards").await,
        scores: clickhouse_table(env, "scores").await,
    }
}

fn assert_table<T: Key + PartialEq + Debug>(case: &str, table: &str, actual: &[T], expected: &[T]) {
    let keys = |rows: &[T]| rows.iter().map(Key::key).collect::<BTreeSet<_>>();
    let (have, want) = (keys(actual), keys(expected));
    let missing: Vec<_> = want.difference(&have).collect();
    let outside: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && outside.is_empty(),
        "{case}: ClickHouse {table}: in scope but missing (customer, id) {missing:?}; \
         present but out of scope {outside:?}"
    );
    let differing: Vec<String> = actual
        .iter()
        .zip(expected)
        .filter(|(row, truth)| row != truth)
        .map(|(row, truth)| format!("\n  ClickHouse {row:?}\n  Postgres   {truth:?}"))
        .collect();
    assert!(
        differing.is_empty(),
        "{case}: {} ClickHouse {table} rows differ from Postgres:{}",
        differing.len(),
        differing.concat()
    );
}

/// ClickHouse (FINAL, tombstones included) holds exactly `expected`:
/// no row missing, none outside it, every column equal.
pub async fn assert_clickhouse_holds(env: &TestEnv, case: &str, expected: &Rows) {
    let actual = clickhouse_rows(env).await;
    assert_table(case, "conversations", &actual.conversations, &expected.conversations);
    assert_table(case, "scorecards", &actual.scorecards, &expected.scorecards);
    assert_table(case, "scores", &actual.scores, &expected.scores);
}
