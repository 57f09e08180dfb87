//! `scorekeeper-chaos`: runs the fault scenarios (all, or the ones asked),
//! prints a table and writes JSON. Wiring only; the scenarios live in the
//! library. Exits non-zero when a scenario lost a row, left drift, or
//! failed its own checks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use scorekeeper_chaos::report::{self, ScenarioReport};
use scorekeeper_chaos::scenarios::{
    clickhouse_outage, cluster_kills, fleet_kills, postgres_restart, reindex_kills, torn_insert,
};
use scorekeeper_chaos::world::{FaultSettings, StopStart};

#[derive(Parser)]
#[command(
    about = "Fault scenarios against real serve processes and servers; proves no acknowledged write is lost"
)]
struct Args {
    /// Which scenarios: 1..6 (comma-separated) or `all`. Scenario 6 needs
    /// the ClickHouse cluster (`scripts/stack cluster up`; scripts/chaos
    /// starts one of its own).
    #[arg(long, default_value = "all")]
    scenario: String,
    /// How long scenario 4 runs its load and kills.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Worker kills of scenario 1.
    #[arg(long, default_value_t = 12)]
    kills: u32,
    /// How long ClickHouse stays down in scenario 2.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    clickhouse_outage: Duration,
    /// Commands that stop and start the real ClickHouse server of
    /// CLICKHOUSE_URL (scenario 2); without them the outage is a proxy cut.
    #[arg(long, requires = "clickhouse_start")]
    clickhouse_stop: Option<String>,
    #[arg(long, requires = "clickhouse_stop")]
    clickhouse_start: Option<String>,
    /// Commands that stop and start the real Postgres server of
    /// DATABASE_URL (scenario 3); without them a private cluster is
    /// started and restarted with pg_ctl.
    #[arg(long, requires = "postgres_start")]
    postgres_stop: Option<String>,
    #[arg(long, requires = "postgres_stop")]
    postgres_start: Option<String>,
    /// Serve process kills of scenario 6.
    #[arg(long, default_value_t = 12)]
    cluster_serve_kills: u32,
    /// Shard (node 3) kills of scenario 6.
    #[arg(long, default_value_t = 4)]
    shard_kills: u32,
    /// Write the reports as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn scenarios(text: &str) -> anyhow::Result<Vec<u8>> {
    if text == "all" {
        return Ok(vec![1, 2, 3, 4, 5, 6]);
    }
    let mut picked = Vec::new();
    for part in text.split(',') {
        match part.trim().parse::<u8>() {
            Ok(n @ 1..=6) => picked.push(n),
            _ => bail!("--scenario: {part:?} is not 1..6 or all"),
        }
    }
    Ok(picked)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let picked = scenarios(&args.scenario)?;
    // Refused before anything runs, rather than after the other scenarios.
    if picked.contains(&6) {
        cluster_kills::reachable().await?;
    }
    let pair = |stop: &Option<String>, start: &Option<String>| match (stop, start) {
        (Some(stop), Some(start)) => Some(StopStart { stop: stop.clone(), start: start.clone() }),
        _ => None,
    };
    let faults = FaultSettings {
        clickhouse: pair(&args.clickhouse_stop, &args.clickhouse_start),
        postgres: pair(&args.postgres_stop, &args.postgres_start),
    };
    let mut reports: Vec<ScenarioReport> = Vec::new();
    for n in picked {
        eprintln!("chaos: scenario {n} …");
        let result = match n {
            1 => {
                let settings = reindex_kills::Settings { kills: args.kills, ..Default::default() };
                reindex_kills::run(&faults, &settings).await
            }
            2 => {
                let settings =
                    clickhouse_outage::Settings { outage: args.clickhouse_outage, ..Default::default() };
                clickhouse_outage::run(&faults, &settings).await
            }
            3 => postgres_restart::run(&faults, &Default::default()).await,
            4 => {
                let settings = fleet_kills::Settings { duration: args.duration, ..Default::default() };
                fleet_kills::run(&faults, &settings).await
            }
            5 => torn_insert::run(&faults, &Default::default()).await,
            _ => {
                let settings = cluster_kills::Settings {
                    serve_kills: args.cluster_serve_kills,
                    shard_kills: args.shard_kills,
                    ..Default::default()
                };
                cluster_kills::run(&faults, &settings).await
            }
        };
        match result {
            Ok(report) => {
                report.discard_logs();
                eprintln!(
                    "chaos: scenario {n}: {} in {:.0} s; {}",
                    if report.passed { "pass" } else { "FAIL" },
                    report.wall_s,
                    report.notes.join("; ")
                );
                reports.push(report);
            }
            Err(error) => bail!("scenario {n} could not run: {error:#}"),
        }
    }
    println!("{}", report::table(&reports));
    if let Some(path) = &args.json {
        report::write_json(path, &reports)?;
    }
    if reports.iter().any(|r| !r.passed) {
        bail!("a scenario failed: see the table");
    }
    Ok(())
}
