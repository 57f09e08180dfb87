//! What the console's topology page shows of ClickHouse: on a cluster
//! (`CLICKHOUSE_CLUSTER`), each shard's replicas as the node this service
//! talks to knows them, and whether that node reaches each one, which is
//! what a Distributed insert or `FINAL` read through it needs.

use std::time::Duration;

use serde::Deserialize;

use crate::Analytics;
use crate::error::{AnalyticsError, Result};

const CLUSTER_REPLICAS: &str = include_str!("../sql/queries/cluster_replicas.sql");
const REPLICA_PROBE: &str = include_str!("../sql/queries/replica_probe.sql");

/// A replica that has not answered within this is shown down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe's settings on the node that runs it, so that it gives up on
/// a replica by itself about when this service does ([`PROBE_TIMEOUT`]):
/// one try, 1 s to connect, 1 s for each answer. Without them a replica
/// that accepts connections but never answers (a hung or stopped process)
/// keeps each probe running on that node for up to 3 tries of
/// `receive_timeout` (300 s by default) after this service gave up on it:
/// a page polling the topology every few seconds would pile them up to the
/// node's `max_concurrent_queries`.
const PROBE_SETTINGS: [(&str, &str); 4] = [
    ("connections_with_failover_max_tries", "1"),
    ("connect_timeout_with_failover_ms", "1000"),
    ("receive_timeout", "1"),
    ("send_timeout", "1"),
];

/// One replica of one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub shard: u32,
    pub replica: u32,
    pub host: String,
    /// Its native (TCP) port.
    pub port: u16,
    pub up: bool,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ClusterNode {
    shard_num: u32,
    replica_num: u32,
    host_name: String,
    port: u16,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct Answered {
    answered: u64,
}

impl Analytics {
    /// The cluster's replicas with whether each answered a probe through
    /// the node this service talks to; `None` on a single server. Fails
    /// when that node does not answer.
    pub async fn replicas(&self) -> Result<Option<Vec<Replica>>> {
        let Some(cluster) = &self.config.cluster else { return Ok(None) };
        let nodes: Vec<ClusterNode> = self
            .client()
            .query(&crate::schema::query_text(CLUSTER_REPLICAS))
            .bind(cluster)
            .fetch_all()
            .await
            .map_err(AnalyticsError::from_query)?;
        let probes = nodes.into_iter().map(|node| async move {
            let address = format!("{}:{}", node.host_name, node.port);
            let probe = PROBE_SETTINGS.iter().fold(
                self.client().query(&crate::schema::query_text(REPLICA_PROBE)).bind(address),
                |query, (name, value)| query.with_setting(*name, *value),
            );
            let up = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, probe.fetch_one::<Answered>()).await,
                Ok(Ok(Answered { answered: 1 }))
            );
            Replica {
                shard: node.shard_num,
                replica: node.replica_num,
                host: node.host_name,
                port: node.port,
                up,
            }
        });
        Ok(Some(futures::future::join_all(probes).await))
    }
}
