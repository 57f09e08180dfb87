//! The proof every scenario ends with: each acknowledged write is in
//! Postgres (the acknowledged version or a newer one, with the
//! acknowledged scores when it is that version); after the outbox drained,
//! ClickHouse's live rows (`FINAL`, `is_deleted = 0`) are exactly Postgres's,
//! column for column; and the drift audit over the customer finds nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use scorekeeper_analytics::rows::{self, ScoreRow, ScorecardRow};
use scorekeeper_domain::audit::AuditScope;
use scorekeeper_domain::mirror::MirrorBatch;
use serde::Serialize;

use crate::load::Ledger;
use crate::world::World;

/// What the checks found. All zero is the only pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Acknowledged writes Postgres does not hold (missing, deleted, an
    /// older version, or other scores at the acknowledged version).
    pub acked_lost_in_postgres: u64,
    /// Acknowledged writes ClickHouse does not show (missing or older).
    pub acked_lost_in_clickhouse: u64,
    /// Scorecard and score rows where ClickHouse differs from Postgres.
    pub rows_differing: u64,
    /// Drifted rows the audit found (conversations, scorecards, scores).
    pub audit_drift: u64,
    /// The outbox entries not yet delivered when checked.
    pub outbox_depth: i64,
    /// A few examples of what differed, for the report.
    pub examples: Vec<String>,
}

impl Verdict {
    pub fn rows_lost(&self) -> u64 {
        self.acked_lost_in_postgres + self.acked_lost_in_clickhouse
    }
    pub fn drift(&self) -> u64 {
        self.rows_differing + self.audit_drift
    }
    pub fn clean(&self) -> bool {
        self.rows_lost() == 0 && self.drift() == 0 && self.outbox_depth == 0
    }
}

/// Every scorecard of the customer in Postgres (deleted too) with its scores.
async fn postgres_scorecards(world: &World) -> anyhow::Result<MirrorBatch> {
    let mut batch = MirrorBatch::default();
    for chunk in world.scorecard_ids().await?.chunks(5_000) {
        let part = world.store.scorecard_mirror(chunk).await?;
        batch.scorecards.extend(part.scorecards);
        batch.scores.extend(part.scores);
    }
    Ok(batch)
}

async fn clickhouse_live<T>(world: &World, table: &str) -> anyhow::Result<Vec<T>>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    world
        .clickhouse_client()
        .query(&format!(
            "SELECT ?fields FROM {table} FINAL WHERE is_deleted = 0 AND customer_id = ? ORDER BY customer_id, id"
        ))
        .bind(world.customer.0)
        .fetch_all::<T>()
        .await
        .with_context(|| format!("reading {table} from ClickHouse"))
}

/// Rows of `left` and `right` (sorted by id) that are not equal on both sides.
fn differing<T: PartialEq + std::fmt::Debug>(
    table: &str,
    expected: &[T],
    actual: &[T],
    id: impl Fn(&T) -> i64,
    examples: &mut Vec<String>,
) -> u64 {
    let actual: HashMap<i64, &T> = actual.iter().map(|r| (id(r), r)).collect();
    let mut differ = 0;
    let mut seen = 0;
    for row in expected {
        match actual.get(&id(row)) {
            Some(other) if *other == row => seen += 1,
            Some(other) => {
                seen += 1;
                differ += 1;
                if examples.len() < 10 {
                    examples.push(format!("{table} {}: Postgres {row:?}, ClickHouse {other:?}", id(row)));
                }
            }
            None => {
                differ += 1;
                if examples.len() < 10 {
                    examples.push(format!("{table} {}: missing from ClickHouse", id(row)));
                }
            }
        }
    }
    // Live in ClickHouse but not in Postgres.
    let extra = (actual.len() - seen) as u64;
    if extra > 0 && examples.len() < 10 {
        examples.push(format!("{table}: {extra} live rows only in ClickHouse"));
    }
    differ + extra
}

/// Runs every check once.
pub async fn check(world: &World, ledger: &Ledger) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict { outbox_depth: world.store.outbox_stats().await?.depth, ..Verdict::default() };
    let truth = postgres_scorecards(world).await?;

    // Acknowledged ⊆ Postgres.
    let mut live_scores: HashMap<i64, Vec<(i64, f64)>> = HashMap::new();
    for score in truth.scores.iter().filter(|s| !s.is_deleted) {
        live_scores.entry(score.scorecard_id.0).or_default().push((score.criterion_id.0, score.value));
    }
    let in_postgres: HashMap<i64, i64> =
        truth.scorecards.iter().filter(|s| !s.is_deleted).map(|s| (s.id.0, s.version)).collect();
    for (id, acked) in &ledger.writes {
        let held = match in_postgres.get(id) {
            None => false,
            Some(&version) if version > acked.version => true,
            Some(&version) if version == acked.version => {
                let mut scores = live_scores.get(id).cloned().unwrap_or_default();
                scores.sort_by_key(|s| s.0);
                scores == acked.scores
            }
            Some(_) => false,
        };
        if !held {
            verdict.acked_lost_in_postgres += 1;
            if verdict.examples.len() < 10 {
                verdict.examples.push(format!(
                    "scorecard {id}: acknowledged at version {} with {:?}, Postgres holds version {:?}",
                    acked.version,
                    acked.scores,
                    in_postgres.get(id)
                ));
            }
        }
    }

    // ClickHouse == Postgres, and acknowledged ⊆ ClickHouse.
    let clickhouse_scorecards: Vec<ScorecardRow> = clickhouse_live(world, "scorecards").await?;
    let clickhouse_scores: Vec<ScoreRow> = clickhouse_live(world, "scores").await?;
    let shown: HashMap<i64, u64> = clickhouse_scorecards.iter().map(|s| (s.id, s.version)).collect();
    for (id, acked) in &ledger.writes {
        if shown.get(id).is_none_or(|&v| v < acked.version as u64) {
            verdict.acked_lost_in_clickhouse += 1;
        }
    }
    let expected_scorecards: Vec<ScorecardRow> =
        rows::encode_all(truth.scorecards.iter().filter(|s| !s.is_deleted)).expect("a time ClickHouse holds");
    let expected_scores: Vec<ScoreRow> =
        rows::encode_all(truth.scores.iter().filter(|s| !s.is_deleted)).expect("a time ClickHouse holds");
    verdict.rows_differing +=
        differing("scorecard", &expected_scorecards, &clickhouse_scorecards, |r| r.id, &mut verdict.examples);
    verdict.rows_differing +=
        differing("score", &expected_scores, &clickhouse_scores, |r| r.id, &mut verdict.examples);

    let scope = AuditScope { customer_id: Some(world.customer), window: None };
    let report = scorekeeper_sync::audit::audit(&world.store, &world.analytics, &scope).await?;
    verdict.audit_drift = report.drifted();
    for row in report.rows.iter().take(10usize.saturating_sub(verdict.examples.len())) {
        verdict.examples.push(format!("audit: {row:?}"));
    }
    Ok(verdict)
}

/// Checks until everything is clean or `within` has passed: the verdict
/// (the last one when it never got clean) and the time from `since` (the
/// last fault healed) until it was clean.
pub async fn converge(
    world: &World,
    ledger: &Ledger,
    since: Instant,
    within: Duration,
) -> (Verdict, Duration) {
    let started = Instant::now();
    let mut last = Verdict::default();
    loop {
        match world.store.outbox_stats().await {
            Ok(stats) if stats.depth == 0 => match check(world, ledger).await {
                Ok(verdict) if verdict.clean() => return (verdict, since.elapsed()),
                Ok(verdict) => last = verdict,
                Err(error) => last.examples = vec![format!("check failed: {error:#}")],
            },
            Ok(stats) => last.outbox_depth = stats.depth,
            Err(error) => last.examples = vec![format!("outbox unreadable: {error:#}")],
        }
        if started.elapsed() > within {
            // One full check for the report, whatever the outbox says.
            if let Ok(verdict) = check(world, ledger).await {
                last = verdict;
            }
            return (last, since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
