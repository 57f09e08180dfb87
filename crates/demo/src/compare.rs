//! ClickHouse against Postgres: the analytics read from ClickHouse through
//! the API, next to the same statistics computed from Postgres (the source
//! of truth). Step 7 waits until they are equal and prints them side by
//! side; the drift step prints what differs, and the same rows again once
//! reindex jobs repaired them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scorekeeper_domain::CustomerId;
use scorekeeper_proto::v1::{GetScoreStatsRequest, ScoreStatsRow, StatsGroupBy};
use scorekeeper_store::Store;

use super::api::{Api, RpcOutcome};
use super::postgres_stats::{self, ScoreStats, StatsGroupBy as PgGroupBy};
use super::world::Templates;
use super::{CONVERGENCE_TIMEOUT, nearly_equal, section};

const GROUPINGS: [(StatsGroupBy, PgGroupBy, &str); 3] = [
    (StatsGroupBy::Agent, PgGroupBy::Agent, "agent"),
    (StatsGroupBy::Template, PgGroupBy::Template, "template"),
    (StatsGroupBy::Day, PgGroupBy::Day, "day (UTC, of scorecard creation)"),
];

/// The statistics of one grouping from both databases.
struct Pair {
    title: &'static str,
    group_by: StatsGroupBy,
    clickhouse: Vec<ScoreStatsRow>,
    postgres: Vec<ScoreStats>,
}

impl Pair {
    fn matches(&self) -> bool {
        self.clickhouse.len() == self.postgres.len()
            && self.clickhouse.iter().zip(&self.postgres).all(|(c, p)| {
                c.key == p.key
                    && c.is_process_scorecard == p.is_process_scorecard
                    && c.scorecards == p.scorecards
                    && nearly_equal(c.average_total_score, p.average_total_score)
            })
    }

    /// Live scorecards counted by (ClickHouse, Postgres).
    fn totals(&self) -> (i64, i64) {
        (self.clickhouse.iter().map(|r| r.scorecards).sum(), self.postgres.iter().map(|r| r.scorecards).sum())
    }

    /// The table's lines by (key, is_process): BTreeMap's String order is
    /// byte order, the order both queries return.
    fn lines(&self) -> BTreeMap<(String, bool), Line> {
        let mut lines: BTreeMap<(String, bool), Line> = BTreeMap::new();
        for r in &self.clickhouse {
            lines.entry((r.key.clone(), r.is_process_scorecard)).or_default().clickhouse =
                Some((r.scorecards, r.average_total_score));
        }
        for r in &self.postgres {
            lines.entry((r.key.clone(), r.is_process_scorecard)).or_default().postgres =
                Some((r.scorecards, r.average_total_score));
        }
        lines
    }
}

/// Both databases' statistics for every grouping, read at one moment.
pub(super) struct Comparison {
    pairs: Vec<Pair>,
}

/// Lines of the comparison: (grouping title, key, is_process).
pub(super) type LineKeys = BTreeSet<(&'static str, String, bool)>;

impl Comparison {
    pub(super) fn matches(&self) -> bool {
        self.pairs.iter().all(Pair::matches)
    }

    /// The customer's live scorecards by (ClickHouse, Postgres).
    pub(super) fn live_scorecards(&self) -> (i64, i64) {
        self.pairs[0].totals()
    }

    /// Live scorecards by (ClickHouse, Postgres), of process scorecards
    /// (`true`) or conversation scorecards (`false`).
    pub(super) fn live_scorecards_of(&self, process: bool) -> (i64, i64) {
        let pair = &self.pairs[0];
        (
            pair.clickhouse.iter().filter(|r| r.is_process_scorecard == process).map(|r| r.scorecards).sum(),
            pair.postgres.iter().filter(|r| r.is_process_scorecard == process).map(|r| r.scorecards).sum(),
        )
    }

    /// Every line, of every grouping, whose two sides differ.
    pub(super) fn differing(&self) -> LineKeys {
        let mut keys = LineKeys::new();
        for pair in &self.pairs {
            for ((key, is_process), line) in pair.lines() {
                if line.differs() {
                    keys.insert((pair.title, key, is_process));
                }
            }
        }
        keys
    }
}

/// Reads both sides once.
pub(super) async fn compare(
    api: &mut Api,
    store: &Store,
    customer_id: CustomerId,
) -> anyhow::Result<Comparison> {
    let mut pairs = Vec::with_capacity(GROUPINGS.len());
    for (group_by, pg_group_by, title) in GROUPINGS {
        let clickhouse = api
            .analytics
            .get_score_stats(GetScoreStatsRequest {
                group_by: group_by as i32,
                start_time: None,
                end_time: None,
            })
            .await
            .during(format!("GetScoreStats by {title}"))?
            .rows;
        let postgres = postgres_stats::score_stats(store, customer_id, pg_group_by, None, None)
            .await
            .with_context(|| format!("reading score statistics by {title} from Postgres"))?;
        pairs.push(Pair { title, group_by, clickhouse, postgres });
    }
    Ok(Comparison { pairs })
}

// ---------------------------------------------------------------------------
// Step 7: analytics from ClickHouse, checked against Postgres.

/// Waits until ClickHouse's statistics equal Postgres's for every grouping,
/// prints them side by side, and returns the customer's live scorecards.
pub(super) async fn compare_analytics(
    api: &mut Api,
    store: &Store,
    customer_id: CustomerId,
    templates: &Templates,
) -> anyhow::Result<i64> {
    section("7. Analytics: ClickHouse against Postgres");
    println!(
        "serve's outbox dispatcher copies every scorecard change to ClickHouse asynchronously; waiting for it"
    );
    let comparison = converge(api, store, customer_id, templates, CONVERGENCE_TIMEOUT).await?;
    print_lines(&comparison, templates, Show::All);
    println!("\nClickHouse matches Postgres: yes");
    Ok(comparison.live_scorecards().1)
}

/// Reads both sides until they are equal; fails after `timeout`, printing
/// the lines that still differ. Prints progress when the counts move, and
/// every 10 s while they do not, so a stuck writer does not flood the
/// terminal.
pub(super) async fn converge(
    api: &mut Api,
    store: &Store,
    customer_id: CustomerId,
    templates: &Templates,
    timeout: Duration,
) -> anyhow::Result<Comparison> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut last_progress: Option<((i64, i64), Instant)> = None;
    loop {
        let comparison = compare(api, store, customer_id).await?;
        let (in_clickhouse, in_postgres) = comparison.live_scorecards();
        if comparison.matches() {
            println!(
                "  converged after {:.1?}: {in_clickhouse} live scorecards on both sides",
                started.elapsed()
            );
            return Ok(comparison);
        }
        if Instant::now() >= deadline {
            println!("  not equal after {timeout:?}; rows that differ:");
            print_lines(&comparison, templates, Show::Differing);
            bail!(
                "ClickHouse does not match Postgres after {timeout:?} \
                 ({in_clickhouse} vs {in_postgres} live scorecards); see serve's log for errors"
            );
        }
        let counts = (in_clickhouse, in_postgres);
        let due = last_progress
            .is_none_or(|(printed, at)| printed != counts || at.elapsed() >= Duration::from_secs(10));
        if due {
            let pending = if in_clickhouse == in_postgres { " (some scores still differ)" } else { "" };
            println!(
                "  {:>4.0?}: ClickHouse has {in_clickhouse} live scorecards, Postgres {in_postgres}{pending}",
                started.elapsed()
            );
            last_progress = Some((counts, Instant::now()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

// ---------------------------------------------------------------------------
// Printing.

/// Which lines of the comparison to print.
#[derive(Clone, Copy)]
pub(super) enum Show<'a> {
    All,
    /// Only those whose two sides differ.
    Differing,
    /// Only these (e.g. those that differed before a repair).
    These(&'a LineKeys),
}

/// One line of the comparison table: the same group from both sides.
#[derive(Default)]
struct Line {
    clickhouse: Option<(i64, f64)>,
    postgres: Option<(i64, f64)>,
}

impl Line {
    fn differs(&self) -> bool {
        match (self.clickhouse, self.postgres) {
            (Some((cn, ca)), Some((pn, pa))) => cn != pn || !nearly_equal(ca, pa),
            _ => true,
        }
    }
}

/// Prints a table per grouping with the lines `show` selects; a grouping
/// without such lines gets one line saying so.
pub(super) fn print_lines(comparison: &Comparison, templates: &Templates, show: Show<'_>) {
    for pair in &comparison.pairs {
        print_table(pair, templates, show);
    }
}

fn print_table(pair: &Pair, templates: &Templates, show: Show<'_>) {
    let lines = pair.lines();
    let shown: Vec<_> = lines
        .iter()
        .filter(|((key, is_process), line)| match show {
            Show::All => true,
            Show::Differing => line.differs(),
            Show::These(keys) => keys.contains(&(pair.title, key.clone(), *is_process)),
        })
        .collect();
    if shown.is_empty() {
        match show {
            Show::All => println!("\nby {}: no rows", pair.title),
            _ => println!("\nby {}: all {} rows equal on both sides", pair.title, lines.len()),
        }
        return;
    }
    println!("\nby {}:", pair.title);
    println!(
        "  {:<34} {:<12} {:>10} {:>10} {:>10} {:>10}",
        "key", "kind", "count CH", "count PG", "avg CH", "avg PG"
    );
    let count = |side: Option<(i64, f64)>| side.map_or("-".to_owned(), |(n, _)| n.to_string());
    let average = |side: Option<(i64, f64)>| side.map_or("-".to_owned(), |(_, a)| format!("{a:.4}"));
    for ((key, is_process), line) in &shown {
        let label = match (pair.group_by, key.parse::<i64>().ok().and_then(|id| templates.name_of(id))) {
            (StatsGroupBy::Template, Some(name)) => format!("{key} {name}"),
            _ => key.clone(),
        };
        println!(
            "  {label:<34} {:<12} {:>10} {:>10} {:>10} {:>10}{}",
            if *is_process { "process" } else { "conversation" },
            count(line.clickhouse),
            count(line.postgres),
            average(line.clickhouse),
            average(line.postgres),
            if line.differs() { "   <- differs" } else { "" }
        );
    }
    if !matches!(show, Show::All) && shown.len() < lines.len() {
        println!("  (the other {} rows are equal on both sides)", lines.len() - shown.len());
    }
}
