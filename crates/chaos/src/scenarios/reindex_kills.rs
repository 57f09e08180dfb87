//! Scenario 1: `kill -9` of the worker running a reindex, at random points,
//! again and again. Worker processes (lease `JOB_LEASE_SECONDS` = 3) run
//! reindex jobs of a bulk import one after another; while a job runs, the
//! process holding its lease is killed after a random delay and a new
//! worker is started, so another takes the job over from its checkpoint.
//! Beside them an API process (never killed) takes a light load of creates
//! and updates, whose outbox writes race the reindex's writes of the same
//! rows. Every job must succeed and ClickHouse must equal Postgres.

use std::time::{Duration, Instant};

use rand::Rng;
use scorekeeper_jobs::JobState;
use scorekeeper_tests::env::bulk_import;

use super::{job, reindex_job};
use crate::fleet::{Fleet, FleetSettings, Role};
use crate::load::{Load, Workload};
use crate::report::{Run, ScenarioReport};
use crate::verify::converge;
use crate::world::{FaultSettings, World};

/// A job still running after this has failed the scenario.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct Settings {
    /// Conversations of the bulk import (each with a scorecard and two
    /// scores; a process scorecard per ten).
    pub conversations: i64,
    /// Kills of the worker holding a job's lease, over the run.
    pub kills: u32,
    /// Kills at most per job (each costs an attempt; jobs allow 10).
    pub kills_per_job: u32,
    /// Rows per reindex page.
    pub batch_size: u32,
    /// Worker processes alive at once.
    pub workers: usize,
    /// Load tasks against the API process.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            conversations: 20_000,
            kills: 12,
            kills_per_job: 4,
            batch_size: 50,
            workers: 2,
            concurrency: 2,
        }
    }
}

pub async fn run(faults: &FaultSettings, settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let wall = Instant::now();
    let world = World::start("reindex-kills", faults, false).await?;
    let bulk = bulk_import(&world.store, world.customer, settings.conversations).await;
    let workload = Workload::prepare(&world, &bulk).await?;
    let mut fleet = Fleet::new(FleetSettings {
        job_lease_seconds: 3,
        // Checkpoints every few pages, so a kill lands between checkpoints.
        env: vec![("REINDEX_WRITE_ROWS".into(), "5000".into())],
    })?;
    fleet.spawn(&world, Role { api: true, dispatcher: true, ..Role::default() }).await?;
    for _ in 0..settings.workers {
        fleet.spawn(&world, Role::worker()).await?;
    }
    let load = Load::start(&workload, &fleet.api, &world.token, settings.concurrency)?;

    let mut kills = 0u32;
    let mut jobs = 0u32;
    let mut attempts = Vec::new();
    let mut failures = Vec::new();
    let mut healed = Instant::now();
    // Jobs until enough kills landed; the last job runs to the end unharmed
    // only if the kills are done.
    while kills < settings.kills {
        let created = reindex_job(&world, settings.batch_size).await?;
        jobs += 1;
        let mut kills_of_job = 0;
        let started = Instant::now();
        loop {
            let now = job(&world, created.id).await?;
            if started.elapsed() > JOB_TIMEOUT {
                failures.push(format!("job {} not done after {JOB_TIMEOUT:?}: {:?}", now.id, now.state));
                break;
            }
            if now.state.is_terminal() {
                attempts.push(now.attempts_made());
                if now.state != JobState::Succeeded {
                    failures.push(format!("job {} {:?}: {:?}", now.id, now.state, now.error));
                }
                break;
            }
            let owner = now.lease_owner.clone().filter(|_| now.state == JobState::Running);
            if kills_of_job >= settings.kills_per_job || kills >= settings.kills || owner.is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            // A random point of the attempt that just started.
            let delay = Duration::from_millis(rand::rng().random_range(50..1500));
            tokio::time::sleep(delay).await;
            let still = job(&world, created.id).await?;
            if still.state != JobState::Running || still.lease_owner != owner {
                continue;
            }
            let holder = fleet
                .members()
                .iter()
                .find(|m| owner.as_deref().is_some_and(|o| o.contains(&format!("-{}-", m.pid))))
                .map(|m| m.pid);
            let Some(pid) = holder else {
                // The owner is an earlier, already killed process whose
                // lease has not run out yet.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            fleet.kill(pid).await?;
            kills += 1;
            kills_of_job += 1;
            fleet.spawn(&world, Role::worker()).await?;
            healed = Instant::now();
        }
    }
    // Every job done: now the proof.
    let ledger = load.stop().await;
    let (verdict, converge_time) = converge(&world, &ledger, healed, Duration::from_secs(120)).await;
    let crashed = fleet.exited();
    let ok = failures.is_empty();
    let mut notes = vec![
        format!("{jobs} reindex jobs of {} rows each, attempts per job {attempts:?}", bulk.rows),
        format!("{} creates and {} updates acknowledged", ledger.creates_acked, ledger.updates_acked),
    ];
    notes.extend(failures);
    Ok(ScenarioReport::new(
        1,
        "kill -9 of workers during reindex",
        "worker SIGKILL (real)".into(),
        u64::from(kills),
        Run::new(&world, &ledger, (verdict, converge_time), wall, crashed),
        ok,
        notes,
    ))
}
