//! Scenario 4: several serve processes (API nodes; worker nodes with the
//! outbox dispatcher, job worker and reindex scheduler) under create and
//! update load for minutes, with random `kill -9`s and restarts. The load
//! spreads requests over the live API processes. A request that failed is
//! not acknowledged (it may or may not have committed); every acknowledged
//! one must be in Postgres, and ClickHouse must equal Postgres once the
//! outbox drained. The scheduled reindex jobs a killed worker held must
//! still succeed.

use std::time::{Duration, Instant};

use rand::Rng;
use scorekeeper_tests::env::bulk_import;

use super::{job_counts, mirror_everything};
use crate::fleet::{Fleet, FleetSettings, Role};
use crate::load::{Load, Workload};
use crate::report::{Run, ScenarioReport};
use crate::verify::converge;
use crate::world::{FaultSettings, World};

#[derive(Clone, Debug)]
pub struct Settings {
    pub conversations: i64,
    /// How long the load and the kills go on.
    pub duration: Duration,
    pub api_processes: usize,
    pub worker_processes: usize,
    /// Time between a restart and the next kill: uniformly within this range.
    pub kill_every: (Duration, Duration),
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            conversations: 2_000,
            duration: Duration::from_secs(180),
            api_processes: 2,
            worker_processes: 2,
            kill_every: (Duration::from_secs(1), Duration::from_secs(5)),
            concurrency: 8,
        }
    }
}

/// A worker node: dispatcher, job worker, and a scheduler firing a reindex
/// of the last hour every 10 seconds (one job per tick over all schedulers).
fn worker_node() -> Role {
    Role { api: false, dispatcher: true, worker: true, reindex_schedule: Some("*/10 * * * * *".into()) }
}

fn api_node() -> Role {
    Role { api: true, ..Role::default() }
}

pub async fn run(faults: &FaultSettings, settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let wall = Instant::now();
    let world = World::start("fleet-kills", faults, false).await?;
    let bulk = bulk_import(&world.store, world.customer, settings.conversations).await;
    mirror_everything(&world).await?;
    let workload = Workload::prepare(&world, &bulk).await?;
    let mut fleet = Fleet::new(FleetSettings {
        job_lease_seconds: 3,
        env: vec![
            ("REINDEX_LOOKBACK".into(), "1h".into()),
            ("REINDEX_CONVERSATIONS_BATCH_SIZE".into(), "100".into()),
        ],
    })?;
    for _ in 0..settings.api_processes {
        fleet.spawn(&world, api_node()).await?;
    }
    for _ in 0..settings.worker_processes {
        fleet.spawn(&world, worker_node()).await?;
    }
    let load = Load::start(&workload, &fleet.api, &world.token, settings.concurrency)?;

    let mut healed = Instant::now();
    let (low, high) = settings.kill_every;
    while wall.elapsed() < settings.duration {
        let pause = rand::rng().random_range(low.as_millis()..=high.as_millis().max(low.as_millis())) as u64;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let Some(role) = fleet.kill_random(|_| true).await? else { continue };
        // Down for a moment, as a crashed process under a supervisor.
        let down = rand::rng().random_range(100..1500);
        tokio::time::sleep(Duration::from_millis(down)).await;
        fleet.spawn(&world, role).await?;
        healed = Instant::now();
    }
    let ledger = load.stop().await;
    let (verdict, converge_time) = converge(&world, &ledger, healed, Duration::from_secs(180)).await;

    // Scheduled reindex jobs: none may have failed; unfinished ones are
    // waited for (a killed worker's job is taken over after the lease).
    let started = Instant::now();
    let (mut unfinished, mut succeeded, mut failed) = job_counts(&world).await?;
    while unfinished > 0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        (unfinished, succeeded, failed) = job_counts(&world).await?;
    }
    let crashed = fleet.exited();
    let notes = vec![
        format!(
            "{} API and {} worker processes; {} kills",
            settings.api_processes, settings.worker_processes, fleet.kills
        ),
        format!(
            "scheduled reindex jobs: {succeeded} succeeded, {failed} failed, {unfinished} unfinished (the last tick's may still run)"
        ),
        format!("{} creates and {} updates acknowledged", ledger.creates_acked, ledger.updates_acked),
    ];
    let ok = failed == 0 && fleet.kills > 0;
    Ok(ScenarioReport::new(
        4,
        "serve fleet under load, random kill -9",
        "serve SIGKILL + restart (real)".into(),
        fleet.kills,
        Run::new(&world, &ledger, (verdict, converge_time), wall, crashed),
        ok,
        notes,
    ))
}
