//! A server made unavailable and brought back: for real (the server
//! process stopped and started, or a ClickHouse cluster node killed with
//! SIGKILL and started again) or simulated (a [`TcpProxy`] in front of it
//! cut and restored). Clients see the same in both: connections dropped,
//! reconnects refused until the server is back. A real stop also loses
//! what a server holds in memory, which only the real one shows.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use scorekeeper_tests::cluster::{cluster_up, kill_node};
use scorekeeper_tests::private_postgres::PrivatePostgres;
use scorekeeper_tests::proxy::TcpProxy;

/// One way to take a server down and up again.
pub enum ServerFault {
    /// The proxy the serve processes reach the server through is cut.
    ProxyCut(Arc<TcpProxy>),
    /// A Postgres cluster of this run's own: `pg_ctl stop -m fast`, then
    /// `pg_ctl start`.
    PrivatePostgres(Arc<PrivatePostgres>),
    /// Shell commands that stop and start a real server, e.g.
    /// `scripts/stack stop-clickhouse` on a private stack.
    Commands { name: String, stop: String, start: String },
    /// A node (1-based) of the local ClickHouse cluster: SIGKILL of its
    /// server, then `scripts/stack cluster up` (`scorekeeper_tests::cluster`).
    ClusterNode(usize),
}

impl ServerFault {
    /// True when the server process itself is stopped.
    pub fn is_real(&self) -> bool {
        !matches!(self, ServerFault::ProxyCut(_))
    }

    /// What is done, for the report.
    pub fn describe(&self) -> String {
        match self {
            ServerFault::ProxyCut(_) => "proxy cut (simulated)".into(),
            ServerFault::PrivatePostgres(_) => "pg_ctl stop -m fast / start (real)".into(),
            ServerFault::Commands { name, .. } => format!("{name} stopped / started (real)"),
            ServerFault::ClusterNode(node) => {
                format!("ClickHouse node {node} SIGKILL / `scripts/stack cluster up` (real)")
            }
        }
    }

    pub async fn stop(&self) -> anyhow::Result<()> {
        match self {
            ServerFault::ProxyCut(proxy) => {
                proxy.cut();
                Ok(())
            }
            ServerFault::PrivatePostgres(cluster) => {
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.stop()).await?
            }
            ServerFault::Commands { stop, .. } => shell(stop).await,
            ServerFault::ClusterNode(node) => {
                let node = *node;
                tokio::task::spawn_blocking(move || kill_node(node)).await?
            }
        }
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        match self {
            ServerFault::ProxyCut(proxy) => {
                proxy.restore();
                Ok(())
            }
            ServerFault::PrivatePostgres(cluster) => {
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.start_again()).await?
            }
            ServerFault::Commands { start, .. } => shell(start).await,
            ServerFault::ClusterNode(_) => tokio::task::spawn_blocking(cluster_up).await?,
        }
    }

    /// Down for `outage`, then up again.
    pub async fn outage(&self, outage: Duration) -> anyhow::Result<()> {
        self.stop().await?;
        tokio::time::sleep(outage).await;
        self.start().await
    }
}

async fn shell(command: &str) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("bash")
        .args(["-c", command])
        .output()
        .await
        .with_context(|| format!("running `{command}`"))?;
    if !output.status.success() {
        bail!(
            "`{command}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
