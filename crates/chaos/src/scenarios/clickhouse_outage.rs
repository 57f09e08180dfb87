//! Scenario 2: ClickHouse stopped during a burst of creates and updates,
//! started again later. The API must keep acknowledging writes (it never
//! waits for ClickHouse); the outbox holds them and drains once ClickHouse
//! is back, and ClickHouse then equals Postgres.

use std::time::{Duration, Instant};

use scorekeeper_tests::env::bulk_import;

use super::mirror_everything;
use crate::fleet::{Fleet, FleetSettings, Role};
use crate::load::{Load, Workload};
use crate::report::{Run, ScenarioReport};
use crate::verify::converge;
use crate::world::{FaultSettings, World};

#[derive(Clone, Debug)]
pub struct Settings {
    pub conversations: i64,
    /// Load before the outage, during it, and after it.
    pub before: Duration,
    pub outage: Duration,
    pub after: Duration,
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            conversations: 1_000,
            before: Duration::from_secs(10),
            outage: Duration::from_secs(20),
            after: Duration::from_secs(10),
            concurrency: 8,
        }
    }
}

pub async fn run(faults: &FaultSettings, settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let wall = Instant::now();
    let world = World::start("clickhouse-outage", faults, false).await?;
    let bulk = bulk_import(&world.store, world.customer, settings.conversations).await;
    mirror_everything(&world).await?;
    let workload = Workload::prepare(&world, &bulk).await?;
    let mut fleet = Fleet::new(FleetSettings::default())?;
    fleet.spawn(&world, Role::all()).await?;
    let load = Load::start(&workload, &fleet.api, &world.token, settings.concurrency)?;

    tokio::time::sleep(settings.before).await;
    let at_stop = load.ledger().acked;
    world.clickhouse.stop().await?;
    tokio::time::sleep(settings.outage).await;
    let at_start = load.ledger().acked;
    let depth_at_start = world.store.outbox_stats().await?.depth;
    world.clickhouse.start().await?;
    let healed = Instant::now();
    tokio::time::sleep(settings.after).await;
    let ledger = load.stop().await;

    let (verdict, converge_time) = converge(&world, &ledger, healed, Duration::from_secs(120)).await;
    let crashed = fleet.exited();
    let acked_during = at_start - at_stop;
    let notes = vec![
        format!(
            "{acked_during} writes acknowledged while ClickHouse was down (outbox depth {depth_at_start} when it came back)"
        ),
        format!("{} creates and {} updates acknowledged", ledger.creates_acked, ledger.updates_acked),
    ];
    // The API must not have stopped taking writes during the outage.
    let ok = acked_during > 0;
    Ok(ScenarioReport::new(
        2,
        "ClickHouse down during a burst",
        world.clickhouse.describe(),
        1,
        Run::new(&world, &ledger, (verdict, converge_time), wall, crashed),
        ok,
        notes,
    ))
}
