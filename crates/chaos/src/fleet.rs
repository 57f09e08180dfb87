//! The `scorekeeper serve` children of a scenario: spawned with a role
//! (API, outbox dispatcher, job worker, scheduler), killed with SIGKILL and
//! restarted. The live API processes are published to the load through
//! [`ApiTargets`], so requests go only to processes that are up (a request
//! in flight when its process dies fails, and is not acknowledged).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use scorekeeper_tests::process::{free_port, http_get, serve_command};
use tokio::process::Child;
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
    child: Child,
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
    /// and its gRPC port accepts when it serves the API).
    pub async fn spawn(&mut self, world: &World, role: Role) -> anyhow::Result<u32> {
        self.spawned += 1;
        let name = format!("{}-{}", role.label(), self.spawned);
        let (grpc_port, http_port) = (free_port(), free_port());
        let binary = self.binary.to_str().context("the binary's path is not UTF-8")?;
        let log = std::fs::File::create(world.log_dir.join(format!("{name}.log")))?;
        let mut command = serve_command(binary, &world.env);
        command
            .env("DATABASE_URL", &world.database_url)
            .env("CLICKHOUSE_URL", world.clickhouse_url())
            .env("DATABASE_MAX_CONNECTIONS", "8")
            .env("SK_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("SK_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("SK_NO_MIGRATE", "true")
            .env("JOB_LEASE_SECONDS", self.settings.job_lease_seconds.to_string())
            .env("RUST_LOG", "warn")
            .stderr(Stdio::from(log));
        for (flag, on) in
            [("SK_NO_API", role.api), ("SK_NO_DISPATCHER", role.dispatcher), ("SK_NO_WORKER", role.worker)]
        {
            if !on {
                command.env(flag, "true");
            }
        }
        match &role.reindex_schedule {
            Some(cron) => command.env("REINDEX_SCHEDULE", cron),
            None => command.env("SK_NO_SCHEDULER", "true"),
        };
        for (key, value) in &self.settings.env {
            command.env(key, value);
        }
        let child = command.spawn().context("starting scorekeeper serve")?;
        let pid = child.id().context("the child has no pid")?;
        let member = Member {
            name,
            role: role.clone(),
            pid,
            grpc_port: role.api.then_some(grpc_port),
            http_port,
            child,
        };
        self.members.push(member);
        self.wait_ready(pid, Duration::from_secs(30)).await?;
        if role.api {
            let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))?.connect_lazy();
            self.api.add(ApiTarget { port: grpc_port, channel });
        }
        Ok(pid)
    }

    async fn wait_ready(&mut self, pid: u32, within: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let member = self.members.iter_mut().find(|m| m.pid == pid).context("no such member")?;
            if let Some(status) = member.child.try_wait()? {
                bail!("{} exited at start ({status}); see its log", member.name);
            }
            let http_up = http_get(member.http_port, "/metrics").await.is_some();
            let grpc_up = match member.grpc_port {
                Some(port) => tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(),
                None => true,
            };
            if http_up && grpc_up {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!("{} did not listen within {within:?}", member.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL of the process `pid`; returns its role, to restart one like it.
    pub async fn kill(&mut self, pid: u32) -> anyhow::Result<Role> {
        let index = self.members.iter().position(|m| m.pid == pid).context("no such member")?;
        let mut member = self.members.remove(index);
        if let Some(port) = member.grpc_port {
            self.api.remove(port);
        }
        member.child.start_kill().context("kill -9")?;
        member.child.wait().await?;
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
            if let Ok(Some(status)) = member.child.try_wait() {
                gone.push(format!("{} ({status})", member.name));
            }
        }
        gone
    }
}
