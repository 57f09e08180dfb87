//! Scenario 3: Postgres restarted during a reindex and during a burst of
//! creates. Two serve processes (API, dispatcher, worker) keep going
//! through the restarts: requests in flight fail (not acknowledged), the
//! reindex loses its attempt and resumes from its checkpoint, and after
//! recovery every acknowledged write is in Postgres and ClickHouse equals
//! Postgres.

use std::time::{Duration, Instant};

use scorekeeper_jobs::JobState;
use scorekeeper_tests::env::bulk_import;

use super::{job, mirror_everything, reindex_job, wait_done};
use crate::fleet::{Fleet, FleetSettings, Role};
use crate::load::{Load, Workload};
use crate::report::{Run, ScenarioReport};
use crate::verify::converge;
use crate::world::{FaultSettings, World};

#[derive(Clone, Debug)]
pub struct Settings {
    pub conversations: i64,
    /// Rows per reindex page (small, so the job is still running at the restart).
    pub batch_size: u32,
    /// How long Postgres stays down each time.
    pub outage: Duration,
    /// Load between and after the restarts.
    pub between: Duration,
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            conversations: 20_000,
            batch_size: 50,
            outage: Duration::from_secs(5),
            between: Duration::from_secs(10),
            concurrency: 8,
        }
    }
}

pub async fn run(faults: &FaultSettings, settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let wall = Instant::now();
    let world = World::start("postgres-restart", faults, true).await?;
    let postgres = world.postgres.as_ref().expect("a world made for restarts has a Postgres fault");
    let bulk = bulk_import(&world.store, world.customer, settings.conversations).await;
    mirror_everything(&world).await?;
    let workload = Workload::prepare(&world, &bulk).await?;
    let mut fleet = Fleet::new(FleetSettings {
        job_lease_seconds: 3,
        env: vec![("REINDEX_WRITE_ROWS".into(), "5000".into())],
    })?;
    fleet.spawn(&world, Role::all()).await?;
    fleet.spawn(&world, Role::all()).await?;
    let load = Load::start(&workload, &fleet.api, &world.token, settings.concurrency)?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Restart 1: in the middle of a reindex (and of the load).
    let created = reindex_job(&world, settings.batch_size).await?;
    let started = Instant::now();
    while job(&world, created.id).await?.activities.iter().map(|a| a.rows_done).sum::<i64>() == 0 {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the reindex did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = job(&world, created.id).await?;
    postgres.outage(settings.outage).await?;
    tokio::time::sleep(settings.between).await;

    // Restart 2: during the burst of creates alone.
    postgres.outage(settings.outage).await?;
    let healed = Instant::now();
    tokio::time::sleep(settings.between).await;
    let ledger = load.stop().await;

    // The API's writes converge on their own (the rows the reindex copies
    // were in sync before it); the job is waited for afterwards.
    let (verdict, converge_time) = converge(&world, &ledger, healed, Duration::from_secs(120)).await;
    let done = wait_done(&world, created.id, Duration::from_secs(180)).await?;
    let crashed = fleet.exited();
    let mid_job = before.state == JobState::Running && !before.activities.iter().all(|a| a.finished);
    let notes = vec![
        format!(
            "reindex of {} rows: {:?} after {} attempts (restart 1 hit it running: {mid_job})",
            bulk.rows,
            done.state,
            done.attempts_made()
        ),
        format!("{} creates and {} updates acknowledged", ledger.creates_acked, ledger.updates_acked),
    ];
    let ok = done.state == JobState::Succeeded && mid_job;
    Ok(ScenarioReport::new(
        3,
        "Postgres restarted during reindex and burst",
        postgres.describe(),
        2,
        Run::new(&world, &ledger, (verdict, converge_time), wall, crashed),
        ok,
        notes,
    ))
}
