//! Scenario 5: ClickHouse inserts cut halfway. The proxy in front of
//! ClickHouse lets an insert's request line, headers and the first part of
//! its body through and then closes the connection, as when the network or
//! the writer dies mid-insert; the writer sees an error and retries
//! (outbox entries go back with backoff, a reindex attempt resumes from its
//! checkpoint). Whatever part of a torn insert ClickHouse kept is harmless:
//! rows are `ReplacingMergeTree(version)`, so the retry's copy of a row
//! replaces it, and reads with `FINAL` are exact.

use std::time::{Duration, Instant};

use rand::Rng;
use scorekeeper_jobs::JobState;
use scorekeeper_tests::env::bulk_import;

use super::{reindex_job, wait_done};
use crate::fleet::{Fleet, FleetSettings, Role};
use crate::load::{Load, Workload};
use crate::report::{Run, ScenarioReport};
use crate::verify::converge;
use crate::world::{FaultSettings, World};

#[derive(Clone, Debug)]
pub struct Settings {
    /// Conversations of the bulk import, which a reindex copies while the
    /// load runs: its long inserts are torn too.
    pub conversations: i64,
    /// Inserts to tear.
    pub tears: u64,
    /// Bytes let through from the `INSERT` of the request line on: uniformly within this range.
    pub cut_after_bytes: (u64, u64),
    pub concurrency: usize,
    /// Rows per reindex page.
    pub batch_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            conversations: 20_000,
            tears: 20,
            cut_after_bytes: (300, 20_000),
            concurrency: 8,
            batch_size: 200,
        }
    }
}

pub async fn run(faults: &FaultSettings, settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let wall = Instant::now();
    let world = World::start("torn-insert", faults, false).await?;
    let bulk = bulk_import(&world.store, world.customer, settings.conversations).await;
    let workload = Workload::prepare(&world, &bulk).await?;
    let mut fleet = Fleet::new(FleetSettings {
        job_lease_seconds: 3,
        env: vec![("REINDEX_WRITE_ROWS".into(), "20000".into())],
    })?;
    fleet.spawn(&world, Role::all()).await?;
    let load = Load::start(&workload, &fleet.api, &world.token, settings.concurrency)?;
    // The reindex brings the bulk import to ClickHouse, through the same proxy.
    let created = reindex_job(&world, settings.batch_size).await?;

    let proxy = &world.clickhouse_proxy;
    let started = Instant::now();
    let mut armed = 0u64;
    let (low, high) = settings.cut_after_bytes;
    while proxy.tears_done() < settings.tears && started.elapsed() < Duration::from_secs(120) {
        if proxy.tears_pending() == 0 {
            // One tear at a time, each at its own byte count.
            proxy.tear_after("INSERT", rand::rng().random_range(low..=high), 1);
            armed += 1;
        }
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(10..300))).await;
    }
    proxy.tear_after("INSERT", 0, 0);
    let healed = Instant::now();
    let tears = proxy.tears_done();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ledger = load.stop().await;

    let done = wait_done(&world, created.id, Duration::from_secs(180)).await?;
    let (verdict, converge_time) = converge(&world, &ledger, healed, Duration::from_secs(120)).await;
    let raw = raw_counts(&world).await.unwrap_or_default();
    let crashed = fleet.exited();
    let notes = vec![
        format!("{tears} inserts torn ({armed} tears armed; an insert shorter than its cut passes whole)"),
        format!("reindex of {} rows: {:?} after {} attempts", bulk.rows, done.state, done.attempts_made()),
        format!(
            "ClickHouse scorecards rows without FINAL {} vs live with FINAL {}; scores {} vs {} (old versions and retried copies before merges)",
            raw.0, raw.1, raw.2, raw.3
        ),
        format!("{} creates and {} updates acknowledged", ledger.creates_acked, ledger.updates_acked),
    ];
    let ok = done.state == JobState::Succeeded && tears >= settings.tears;
    Ok(ScenarioReport::new(
        5,
        "ClickHouse insert cut mid-body",
        "TCP cut after N request bytes (simulated)".into(),
        tears,
        Run::new(&world, &ledger, (verdict, converge_time), wall, crashed),
        ok,
        notes,
    ))
}

/// Scorecard and score rows of the customer in ClickHouse, without and with FINAL.
async fn raw_counts(world: &World) -> anyhow::Result<(u64, u64, u64, u64)> {
    let client = &world.clickhouse_client();
    let count =
        |sql: String| async move { client.query(&sql).bind(world.customer.0).fetch_one::<u64>().await };
    Ok((
        count("SELECT count() FROM scorecards WHERE customer_id = ?".into()).await?,
        count("SELECT count() FROM scorecards FINAL WHERE customer_id = ? AND is_deleted = 0".into()).await?,
        count("SELECT count() FROM scores WHERE customer_id = ?".into()).await?,
        count("SELECT count() FROM scores FINAL WHERE customer_id = ? AND is_deleted = 0".into()).await?,
    ))
}
