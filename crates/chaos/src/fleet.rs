//! The `scorekeeper serve` children of a scenario: spawned with a role
//! (API, outbox dispatcher, job worker, scheduler), killed with SIGKILL and
//! restarted. The live API processes are published to the load through
//! [`ApiTargets`], so requests go only to processes that are up (a request
//! in flight when its process dies fails, and is not acknowledged).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use scorekeeper_tests::process::{ServeProcess, serve};
use tonic::transport::Channel;

use crate::world::World;

/// What one serve process runs.
#[derive(Clone, Debug, Default)]
pub struct Role {
    pub api: bool,
    pub dispatcher: bool,
    pub worker: bool,
    /// A `REINDEX_SCHEDULE` cron for this process's scheduler.
    pub reindex_schedule: Option<String>,
}

impl Role {
    pub fn all() -> Role {
        Role { api: true, dispatcher: true, worker: true, reindex_schedule: None }
    }
    pub fn worker() -> Role {
        Role { worker: true, ..Role::default() }
    }
    fn label(&self) -> String {
        let mut parts = Vec::new();
        for (on, name) in [(self.api, "api"), (self.dispatcher, "dispatcher"), (self.worker, "worker")] {
            if on {
                parts.push(name);
            }
        }
        if self.reindex_schedule.is_some() {
            parts.push("scheduler");
        }
        parts.join("+")
    }
}

/// An API process the load may send requests to.
#[derive(Clone)]
pub struct ApiTarget {
    pub port: u16,
    pub channel: Channel,
}

/// The live API processes; shared by the fleet (which adds and removes)
/// and the load (which picks one per request).
#[derive(Clone, Default)]
pub struct ApiTargets(Arc<RwLock<Vec<ApiTarget>>>);

impl ApiTargets {
    /// A live API process at random, if any.
    pub fn pick(&self) -> Option<ApiTarget> {
        let targets = self.0.read().unwrap();
        if targets.is_empty() {
            return None;
        }
        Some(targets[rand::rng().random_range(0..targets.len())].clone())
    }
    fn add(&self, target: ApiTarget) {
        self.0.write().unwrap().push(target);
    }
    fn remove(&self, port: u16) {
        self.0.write().unwrap().retain(|t| t.port != port);
    }
}

pub struct Member {
    pub name: String,
    pub role: Role,
    pub pid: u32,
    pub grpc_port: Option<u16>,
    pub http_port: u16,
    process: ServeProcess,
}

/// Settings every process of the fleet gets.
#[derive(Clone, Debug)]
pub struct FleetSettings {
    pub job_lease_seconds: u64,
    /// More environment, e.g. small reindex batches.
    pub env: Vec<(String, String)>,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings { job_lease_seconds: 3, env: Vec::new() }
    }
}

pub struct Fleet {
    binary: PathBuf,
    settings: FleetSettings,
    members: Vec<Member>,
    pub api: ApiTargets,
    spawned: u64,
    /// SIGKILLs sent.
    pub kills: u64,
}

impl Fleet {
    pub fn new(settings: FleetSettings) -> anyhow::Result<Fleet> {
        Ok(Fleet {
            binary: scorekeeper_testbed::binary::serve_binary()?,
            settings,
            members: Vec::new(),
            api: ApiTargets::default(),
            spawned: 0,
            kills: 0,
        })
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Starts a process and waits until it listens (its HTTP port answers,
    /// and its gRPC port accepts when it serves the API); its log goes to
    /// `<log_dir>/<name>.log`.
    pub async fn spawn(&mut self, world: &World, role: Role) -> anyhow::Result<u32> {
        self.spawned += 1;
        let name = format!("{}-{}", role.label(), self.spawned);
        let mut command = serve(&self.binary, &world.env)
            .postgres(&world.database_url)
            .env("CLICKHOUSE_URL", world.clickhouse_url())
            .env("DATABASE_MAX_CONNECTIONS", "8")
            .env("SK_NO_MIGRATE", "true")
            .env("JOB_LEASE_SECONDS", self.settings.job_lease_seconds.to_string())
            .log_file(world.log_dir.join(format!("{name}.log")));
        if !role.api {
            command = command.without_api();
        }
        if !role.dispatcher {
            command = command.without_dispatcher();
        }
        if !role.worker {
            command = command.without_worker();
        }
        command = match &role.reindex_schedule {
            Some(cron) => command.env("REINDEX_SCHEDULE", cron),
            None => command.without_scheduler(),
        };
        for (key, value) in &self.settings.env {
            command = command.env(key, value);
        }
        let mut process = command.spawn().context("starting scorekeeper serve")?;
        let pid = process.pid().context("the child has no pid")?;
        let (grpc_port, http_port) = (process.grpc_port(), process.http_port());
        process
            .wait_listening(Duration::from_secs(30))
            .await
            .with_context(|| format!("{name} did not start"))?;
        self.members.push(Member {
            name,
            role: role.clone(),
            pid,
            grpc_port: role.api.then_some(grpc_port),
            http_port,
            process,
        });
        if role.api {
            let channel = scorekeeper_client::channel::lazy(&format!("http://127.0.0.1:{grpc_port}"))?;
            self.api.add(ApiTarget { port: grpc_port, channel });
        }
        Ok(pid)
    }

    /// SIGKILL of the process `pid`; returns its role, to restart one like it.
    pub async fn kill(&mut self, pid: u32) -> anyhow::Result<Role> {
        let index = self.members.iter().position(|m| m.pid == pid).context("no such member")?;
        let mut member = self.members.remove(index);
        if let Some(port) = member.grpc_port {
            self.api.remove(port);
        }
        member.process.kill().await.context("kill -9")?;
        self.kills += 1;
        Ok(member.role)
    }

    /// SIGKILL of a process chosen at random among those `matching`.
    pub async fn kill_random(&mut self, matching: impl Fn(&Member) -> bool) -> anyhow::Result<Option<Role>> {
        let candidates: Vec<u32> = self.members.iter().filter(|m| matching(m)).map(|m| m.pid).collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let pid = candidates[rand::rng().random_range(0..candidates.len())];
        Ok(Some(self.kill(pid).await?))
    }

    /// Processes that exited without being killed (a crash is a finding).
    pub fn exited(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        for member in &mut self.members {
            if let Some(status) = member.process.exited() {
                gone.push(format!("{} ({status})", member.name));
            }
        }
        gone
    }
}
