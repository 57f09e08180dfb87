//! The last check: the analytics read from ClickHouse through the API,
//! waited for until they equal the same statistics computed from Postgres
//! (the source of truth), and printed side by side.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scorekeeper_domain::CustomerId;
use scorekeeper_proto::v1::{GetScoreStatsRequest, ScoreStatsRow, StatsGroupBy};
use scorekeeper_store::Store;
use scorekeeper_store::stats::{ScoreStats, StatsGroupBy as PgGroupBy};

use super::api::{Api, RpcOutcome};
use super::world::Templates;
use super::{CONVERGENCE_TIMEOUT, nearly_equal, section};

// ---------------------------------------------------------------------------
// Step 7: analytics from ClickHouse, checked against Postgres.

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

    fn totals(&self) -> (i64, i64) {
        (self.clickhouse.iter().map(|r| r.scorecards).sum(), self.postgres.iter().map(|r| r.scorecards).sum())
    }
}

async fn fetch_pairs(api: &mut Api, store: &Store, customer_id: CustomerId) -> anyhow::Result<Vec<Pair>> {
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
        let postgres = store
            .score_stats(customer_id, pg_group_by, None, None)
            .await
            .with_context(|| format!("reading score statistics by {title} from Postgres"))?;
        pairs.push(Pair { title, group_by, clickhouse, postgres });
    }
    Ok(pairs)
}

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
    let step_started = Instant::now();
    let deadline = step_started + CONVERGENCE_TIMEOUT;
    // Progress is printed when the counts move, and every 10 s while they
    // do not, so a stuck dispatcher does not flood the terminal.
    let mut last_progress: Option<((i64, i64), Instant)> = None;
    let pairs = loop {
        let pairs = fetch_pairs(api, store, customer_id).await?;
        let (in_clickhouse, in_postgres) = pairs[0].totals();
        if pairs.iter().all(Pair::matches) {
            println!(
                "  converged after {:.1?}: {in_clickhouse} live scorecards on both sides",
                step_started.elapsed()
            );
            break pairs;
        }
        if Instant::now() >= deadline {
            println!("  not converged after {CONVERGENCE_TIMEOUT:?}; rows that differ:");
            for pair in &pairs {
                print_table(pair, templates, true);
            }
            bail!(
                "ClickHouse does not match Postgres after {CONVERGENCE_TIMEOUT:?} \
                 ({in_clickhouse} vs {in_postgres} live scorecards); see serve's log for outbox errors"
            );
        }
        let counts = (in_clickhouse, in_postgres);
        let due = last_progress
            .is_none_or(|(printed, at)| printed != counts || at.elapsed() >= Duration::from_secs(10));
        if due {
            let pending = if in_clickhouse == in_postgres { " (some scores still differ)" } else { "" };
            println!(
                "  {:>4.0?}: ClickHouse has {in_clickhouse} live scorecards, Postgres {in_postgres}{pending}",
                step_started.elapsed()
            );
            last_progress = Some((counts, Instant::now()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for pair in &pairs {
        print_table(pair, templates, false);
    }
    println!("\nClickHouse matches Postgres: yes");
    Ok(pairs[0].totals().1)
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

fn print_table(pair: &Pair, templates: &Templates, only_differences: bool) {
    // Keyed by (key, is_process): BTreeMap's String order is byte order, the
    // order both queries return.
    let mut lines: BTreeMap<(String, bool), Line> = BTreeMap::new();
    for r in &pair.clickhouse {
        lines.entry((r.key.clone(), r.is_process_scorecard)).or_default().clickhouse =
            Some((r.scorecards, r.average_total_score));
    }
    for r in &pair.postgres {
        lines.entry((r.key.clone(), r.is_process_scorecard)).or_default().postgres =
            Some((r.scorecards, r.average_total_score));
    }
    println!("\nby {}:", pair.title);
    println!(
        "  {:<34} {:<12} {:>10} {:>10} {:>10} {:>10}",
        "key", "kind", "count CH", "count PG", "avg CH", "avg PG"
    );
    let count = |side: Option<(i64, f64)>| side.map_or("-".to_owned(), |(n, _)| n.to_string());
    let average = |side: Option<(i64, f64)>| side.map_or("-".to_owned(), |(_, a)| format!("{a:.4}"));
    for ((key, is_process), line) in &lines {
        if only_differences && !line.differs() {
            continue;
        }
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
}
