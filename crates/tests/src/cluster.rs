//! The local ClickHouse cluster of `scripts/stack cluster` (ZooKeeper and
//! three nodes: shard 1 = nodes 1 and 2, replicas; shard 2 = node 3), as the
//! cluster tests use it: its settings, under names of their own so that the
//! single server's `CLICKHOUSE_URL` of every other test stays as it is
//! (`SK_CLUSTER_NAME`, `SK_CLUSTER_URL`, `SK_CLUSTER_NODES`, exported by
//! scripts/test), killing a node with SIGKILL, and bringing it back.
//!
//! Tests that use it run one at a time (the nextest group `cluster`, and
//! [`exclusive`] for runners without it): one test's killed node would be
//! another's failure.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Shard 1's first replica: the node tests talk to (`SK_CLUSTER_URL`).
pub const NODE_1: usize = 1;
/// Shard 1's second replica.
pub const NODE_2: usize = 2;
/// All of shard 2.
pub const NODE_3: usize = 3;

/// The cluster's settings.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Its name in the nodes' `<remote_servers>`.
    pub name: String,
    /// Node 1's HTTP URL.
    pub url: String,
    /// Every node's HTTP URL, node 1 first.
    pub nodes: Vec<String>,
}

/// A cluster setting; an error that says how to start the cluster when it
/// is missing (cluster tests fail, never skip, without it).
fn setting(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| {
        format!(
            "{name} is not set: start the ClickHouse cluster with `scripts/stack cluster up` and export \
             SK_CLUSTER_NAME, SK_CLUSTER_URL and SK_CLUSTER_NODES from `scripts/stack cluster env` \
             (its CLICKHOUSE_CLUSTER, CLICKHOUSE_URL and SK_CLUSTER_NODES; scripts/test does)"
        )
    })
}

impl Cluster {
    pub fn from_env() -> anyhow::Result<Cluster> {
        let nodes: Vec<String> = setting("SK_CLUSTER_NODES")?.split(',').map(str::to_owned).collect();
        if nodes.len() != 3 {
            bail!("SK_CLUSTER_NODES names {} nodes, not the 3 of `scripts/stack cluster`", nodes.len());
        }
        Ok(Cluster { name: setting("SK_CLUSTER_NAME")?, url: setting("SK_CLUSTER_URL")?, nodes })
    }

    /// A client of `node` (1-based) on `database`, for reading its local tables.
    pub fn node_client(&self, node: usize, database: &str) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.nodes[node - 1])
            .with_user(std::env::var("CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()))
            .with_password(std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default())
            .with_validation(false)
            .with_database(database)
    }
}

/// The repository's root, where `scripts/stack` is.
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cluster's folder, as `scripts/stack` places it.
fn cluster_dir() -> PathBuf {
    std::env::var_os("SK_STACK_DIR")
        .map_or_else(|| repository().join(".stack"), PathBuf::from)
        .join("cluster")
}

/// Kills `node` (1-based) with SIGKILL and waits until it is gone.
pub fn kill_node(node: usize) -> anyhow::Result<()> {
    let pid_file = cluster_dir().join(format!("node{node}/clickhouse.pid"));
    let pid =
        std::fs::read_to_string(&pid_file).with_context(|| format!("reading {}", pid_file.display()))?;
    let pid = pid.trim();
    let killed = Command::new("kill").args(["-KILL", pid]).status().context("running kill")?;
    if !killed.success() {
        bail!("kill -KILL {pid} (node {node}) failed: {killed}");
    }
    let started = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("node {node} (pid {pid}) still alive 10 s after SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `scripts/stack cluster up`: starts whatever node is down (a no-op when
/// all run) and waits until every node answers.
pub fn cluster_up() -> anyhow::Result<()> {
    let output = Command::new(repository().join("scripts/stack"))
        .args(["cluster", "up"])
        .output()
        .context("running scripts/stack cluster up")?;
    if !output.status.success() {
        bail!(
            "scripts/stack cluster up failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Held for the whole of a cluster test: within one process (plain `cargo
/// test`), cluster tests take turns as the nextest group makes them do.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

impl Cluster {
    /// ClickHouse settings of this cluster for `database`, reached through
    /// node 1.
    pub fn clickhouse_config(&self, database: &str) -> scorekeeper_analytics::ClickHouseConfig {
        scorekeeper_analytics::ClickHouseConfig {
            url: self.url.clone(),
            database: database.to_owned(),
            user: std::env::var("CLICKHOUSE_USER").unwrap_or_else(|_| "default".into()),
            password: std::env::var("CLICKHOUSE_PASSWORD").unwrap_or_default(),
            cluster: Some(self.name.clone()),
        }
    }
}
