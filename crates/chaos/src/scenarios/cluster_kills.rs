//! Scenario 6: the ClickHouse cluster (`CLICKHOUSE_CLUSTER`, the local
//! cluster of `scripts/stack cluster`: shard 1 = nodes 1 and 2, shard 2 =
//! node 3) under a partitioned reindex and an API burst, with random
//! SIGKILLs of serve processes (restarted) and of shard 2 (node 3, brought
//! back with `scripts/stack cluster up`).
//!
//! Several worker processes share each reindex job: `REINDEX_PARTITION_ROWS`
//! is small, so an activity has tens of partitions, each claimed on its own
//! lease. A killed worker's partitions are taken over after the lease and
//! resume from their checkpoints; while shard 2 is down every insert that
//! has rows for it fails (synchronous Distributed inserts), and the
//! partitions and the outbox retry. Jobs run one after another until the
//! kills are spent; each must succeed, and the run ends with the proof of
//! every scenario.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use scorekeeper_jobs::{Job, JobState};
use scorekeeper_tests::cluster::{Cluster, NODE_3};
use scorekeeper_tests::env::bulk_import;
use uuid::Uuid;

use super::{job, reindex_job};
use crate::fault::ServerFault;
use crate::fleet::{Fleet, FleetSettings, Role};
use crate::load::{Load, Workload};
use crate::report::{Run, ScenarioReport};
use crate::verify::converge;
use crate::world::{FaultSettings, World};

/// A job still running after this has failed the scenario.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);
/// A restarted node 3 whose tables still refuse writes after this fails
/// the scenario.
const WRITABLE_WITHIN: Duration = Duration::from_secs(60);
/// Jobs at most: a run whose jobs end before the kills land stops here.
const MAX_JOBS: u32 = 30;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Conversations of the bulk import (each with a scorecard and two
    /// scores; a process scorecard per ten).
    pub conversations: i64,
    /// SIGKILLs of serve processes (any role) over the run.
    pub serve_kills: u32,
    /// SIGKILLs of node 3 (all of shard 2) over the run.
    pub shard_kills: u32,
    /// Per job at most: every kill of a job's coordinator or partition
    /// costs an attempt, and a shard outage fails each running partition
    /// once or more; jobs and partitions allow 10 attempts.
    pub serve_kills_per_job: u32,
    pub shard_kills_per_job: u32,
    /// How long node 3 stays down: uniformly within this range.
    pub shard_down: (Duration, Duration),
    /// Time between faults: uniformly within this range.
    pub fault_every: (Duration, Duration),
    /// Rows per reindex page.
    pub batch_size: u32,
    /// `REINDEX_PARTITION_ROWS` (the serve minimum is 1,000).
    pub partition_rows: u32,
    /// Worker processes, and API processes (each with a dispatcher).
    pub workers: usize,
    pub api_processes: usize,
    /// Load tasks against the API processes.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            conversations: 20_000,
            serve_kills: 12,
            shard_kills: 4,
            serve_kills_per_job: 4,
            shard_kills_per_job: 1,
            shard_down: (Duration::from_secs(1), Duration::from_secs(4)),
            fault_every: (Duration::from_millis(500), Duration::from_secs(3)),
            batch_size: 50,
            partition_rows: 2_000,
            workers: 3,
            api_processes: 2,
            concurrency: 4,
        }
    }
}

/// The cluster's settings, once every node answered and sees the cluster's
/// three replicas; otherwise an error that says how to start it. The
/// scenario refuses to run without it (nothing would test the cluster).
pub async fn reachable() -> anyhow::Result<Cluster> {
    let how = "start it with `scripts/stack cluster up` and export SK_CLUSTER_NAME, SK_CLUSTER_URL and \
               SK_CLUSTER_NODES from `scripts/stack cluster env` (scripts/chaos starts a cluster of its own)";
    let cluster = Cluster::from_env().context("scenario 6 needs the ClickHouse cluster")?;
    for (i, url) in cluster.nodes.iter().enumerate() {
        let replicas: Result<u64, _> = cluster
            .node_client(i + 1, "system")
            .query("SELECT count() FROM system.clusters WHERE cluster = ?")
            .bind(cluster.name.as_str())
            .fetch_one()
            .await;
        match replicas {
            Ok(3) => {}
            Ok(n) => bail!(
                "ClickHouse node {} at {url} sees {n} replicas of {}, not 3: {how}",
                i + 1,
                cluster.name
            ),
            Err(error) => {
                bail!("the ClickHouse cluster is not reachable: node {} at {url}: {error}; {how}", i + 1)
            }
        }
    }
    Ok(cluster)
}

/// Waits until node 3's tables of the run's database take writes again: a
/// restarted replica is read-only until its ZooKeeper session is back (and
/// its old one expired). The next shard kill waits for this, so outages do
/// not run into each other.
async fn writable(world: &World) -> anyhow::Result<Duration> {
    let cluster = world.env.cluster.as_ref().context("a cluster world")?;
    let client = cluster.node_client(NODE_3, "system");
    let database = &world.analytics.config().database;
    let started = Instant::now();
    loop {
        let blocked: Result<(u64, u64), _> = client
            .query("SELECT count(), countIf(is_readonly OR is_session_expired) FROM system.replicas WHERE database = ?")
            .bind(database.as_str())
            .fetch_one()
            .await;
        if let Ok((tables, 0)) = blocked
            && tables > 0
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > WRITABLE_WITHIN {
            bail!(
                "node 3's tables still refuse writes {WRITABLE_WITHIN:?} after it was started: {blocked:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A partition of a job: (activity, n).
type PartitionId = (String, i32);

/// The partitions of job `id` that process `pid` held when it was killed,
/// with their attempts then: a later claim of one is a takeover.
async fn held_by(world: &World, id: Uuid, pid: u32) -> anyhow::Result<Vec<(PartitionId, i32)>> {
    let client = world.store.pool().get().await?;
    let rows = client
        .query(
            "SELECT activity, n, attempts FROM job_partitions
             WHERE job_id = $1 AND state = 'running' AND lease_owner LIKE $2",
            &[&id, &format!("%-{pid}-%")],
        )
        .await?;
    Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect())
}

/// Partitions of `done` claimed again after their holder was killed.
fn takeovers(done: &Job, held: &[(PartitionId, i32)]) -> u64 {
    let attempts: HashMap<PartitionId, i32> = done
        .activities
        .iter()
        .flat_map(|a| &a.partitions)
        .map(|p| ((p.activity.clone(), p.n), p.attempts))
        .collect();
    held.iter().filter(|(id, then)| attempts.get(id).is_some_and(|now| now > then)).count() as u64
}

fn between((low, high): (Duration, Duration)) -> Duration {
    let (low, high) = (low.as_millis() as u64, high.as_millis().max(low.as_millis()) as u64);
    Duration::from_millis(rand::rng().random_range(low..=high))
}

/// What the run counted.
#[derive(Default)]
struct Tally {
    jobs: u32,
    partitions: usize,
    /// Most claims of one partition, over all jobs.
    max_partition_attempts: i32,
    job_attempts: Vec<i32>,
    serve_kills: u32,
    shard_kills: u32,
    takeovers: u64,
    /// Partitions held by a killed process (each should be taken over).
    orphaned: u64,
    /// Node 3 down, then until its tables took writes again.
    shard_outages: Vec<(Duration, Duration)>,
    failures: Vec<String>,
}

pub async fn run(faults: &FaultSettings, settings: &Settings) -> anyhow::Result<ScenarioReport> {
    let wall = Instant::now();
    reachable().await?;
    let world = World::start_on_cluster("cluster-kills", faults).await?;
    let bulk = bulk_import(&world.store, world.customer, settings.conversations).await;
    let workload = Workload::prepare(&world, &bulk).await?;
    let mut fleet = Fleet::new(FleetSettings {
        job_lease_seconds: 3,
        env: vec![
            ("REINDEX_PARTITION_ROWS".into(), settings.partition_rows.to_string()),
            // Checkpoints every few pages, so a kill lands between them.
            ("REINDEX_WRITE_ROWS".into(), "1000".into()),
        ],
    })?;
    let api = Role { api: true, dispatcher: true, ..Role::default() };
    for _ in 0..settings.api_processes {
        fleet.spawn(&world, api.clone()).await?;
    }
    for _ in 0..settings.workers {
        fleet.spawn(&world, Role::worker()).await?;
    }
    let load = Load::start(&workload, &fleet.api, &world.token, settings.concurrency)?;
    let shard = ServerFault::ClusterNode(NODE_3);

    let mut tally = Tally::default();
    let mut healed = Instant::now();
    while (tally.serve_kills < settings.serve_kills || tally.shard_kills < settings.shard_kills)
        && tally.jobs < MAX_JOBS
    {
        let created = reindex_job(&world, settings.batch_size).await?;
        tally.jobs += 1;
        let (mut serve_kills_of_job, mut shard_kills_of_job) = (0, 0);
        let mut held = Vec::new();
        let started = Instant::now();
        let done = loop {
            tokio::time::sleep(between(settings.fault_every)).await;
            let now = job(&world, created.id).await?;
            if now.state.is_terminal() {
                break Some(now);
            }
            if started.elapsed() > JOB_TIMEOUT {
                tally
                    .failures
                    .push(format!("job {} not done after {JOB_TIMEOUT:?}: {:?}", now.id, now.state));
                break None;
            }
            let shard_left =
                tally.shard_kills < settings.shard_kills && shard_kills_of_job < settings.shard_kills_per_job;
            let serve_left =
                tally.serve_kills < settings.serve_kills && serve_kills_of_job < settings.serve_kills_per_job;
            // Shard kills among the serve kills, about one in three faults.
            if shard_left && (!serve_left || rand::rng().random_bool(0.35)) {
                shard.stop().await?;
                let down = between(settings.shard_down);
                tokio::time::sleep(down).await;
                shard.start().await?;
                let refused = writable(&world).await?;
                tally.shard_outages.push((down, refused));
                tally.shard_kills += 1;
                shard_kills_of_job += 1;
                healed = Instant::now();
            } else if serve_left {
                let members = fleet.members();
                let victim = members[rand::rng().random_range(0..members.len())].pid;
                held.extend(held_by(&world, created.id, victim).await?);
                let role = fleet.kill(victim).await?;
                // Down for a moment, as a crashed process under a supervisor.
                tokio::time::sleep(between((Duration::from_millis(100), Duration::from_millis(1500)))).await;
                fleet.spawn(&world, role).await?;
                tally.serve_kills += 1;
                serve_kills_of_job += 1;
                healed = Instant::now();
            }
        };
        let Some(done) = done else { continue };
        if done.state != JobState::Succeeded {
            tally.failures.push(format!("job {} {:?}: {:?}", done.id, done.state, done.error));
        }
        let partitions: Vec<_> = done.activities.iter().flat_map(|a| &a.partitions).collect();
        tally.partitions += partitions.len();
        // The point is several workers sharing one job.
        if partitions.len() < settings.workers {
            tally.failures.push(format!(
                "job {} ran in {} partitions, fewer than the {} workers: lower partition_rows",
                done.id,
                partitions.len(),
                settings.workers
            ));
        }
        let most = partitions.iter().map(|p| p.attempts).max().unwrap_or(0);
        tally.max_partition_attempts = tally.max_partition_attempts.max(most);
        tally.job_attempts.push(done.attempts);
        tally.orphaned += held.len() as u64;
        tally.takeovers += takeovers(&done, &held);
    }
    if tally.serve_kills < settings.serve_kills || tally.shard_kills < settings.shard_kills {
        tally.failures.push(format!(
            "only {} serve and {} shard kills landed in {} jobs (the jobs end too soon)",
            tally.serve_kills, tally.shard_kills, tally.jobs
        ));
    }

    let ledger = load.stop().await;
    let (verdict, converge_time) = converge(&world, &ledger, healed, Duration::from_secs(180)).await;
    let crashed = fleet.exited();
    let outages: Vec<String> = tally
        .shard_outages
        .iter()
        .map(|(down, refused)| format!("{:.1}+{:.1}", down.as_secs_f64(), refused.as_secs_f64()))
        .collect();
    let mut notes = vec![
        format!(
            "{} jobs of {} rows each, {} partitions in all (REINDEX_PARTITION_ROWS {}), {} workers",
            tally.jobs, bulk.rows, tally.partitions, settings.partition_rows, settings.workers
        ),
        format!(
            "{} serve kills, {} shard kills; {} of {} partitions held by a killed process taken over",
            tally.serve_kills, tally.shard_kills, tally.takeovers, tally.orphaned
        ),
        format!(
            "job attempts {:?}, most claims of one partition {}",
            tally.job_attempts, tally.max_partition_attempts
        ),
        format!("node 3 down + read-only after its restart (s): {}", outages.join(", ")),
        format!("{} creates and {} updates acknowledged", ledger.creates_acked, ledger.updates_acked),
    ];
    let ok = tally.failures.is_empty();
    notes.extend(tally.failures);
    Ok(ScenarioReport::new(
        6,
        "cluster: serve and shard kills during a partitioned reindex",
        format!("serve SIGKILL + restart, {} (real)", shard.describe().trim_end_matches(" (real)")),
        u64::from(tally.serve_kills + tally.shard_kills),
        Run::new(&world, &ledger, (verdict, converge_time), wall, crashed),
        ok,
        notes,
    ))
}
