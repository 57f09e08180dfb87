//! `/ui/api/topology`: whether Postgres and ClickHouse answer this process
//! (the dependency checker's last finding, as `/health` says it), and on a
//! cluster each shard's replicas, up or down, as the node this process
//! talks to reaches them (admin tokens: it names the operator's hosts).

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::Console;
use crate::session::Session;

#[derive(Serialize)]
pub struct TopologyView {
    checked: bool,
    postgres: bool,
    clickhouse: bool,
    cluster: Option<ClusterView>,
}

#[derive(Serialize)]
struct ClusterView {
    name: String,
    shards: Vec<ShardView>,
    /// Why the shards are unknown, when the node did not answer.
    error: Option<String>,
}

#[derive(Serialize)]
struct ShardView {
    shard: u32,
    replicas: Vec<ReplicaView>,
}

#[derive(Serialize)]
struct ReplicaView {
    replica: u32,
    host: String,
    port: u16,
    up: bool,
}

pub async fn answer(State(console): State<Console>, session: Session) -> Json<TopologyView> {
    let health = *console.health.borrow();
    let name = console.analytics.config().cluster.clone();
    let cluster = match name {
        Some(name) if session.principal.is_admin => Some(match console.analytics.replicas().await {
            Ok(replicas) => {
                let mut shards: Vec<ShardView> = Vec::new();
                for r in replicas.unwrap_or_default() {
                    if shards.last().is_none_or(|s| s.shard != r.shard) {
                        shards.push(ShardView { shard: r.shard, replicas: Vec::new() });
                    }
                    let shard = shards.last_mut().expect("pushed above");
                    shard.replicas.push(ReplicaView {
                        replica: r.replica,
                        host: r.host,
                        port: r.port,
                        up: r.up,
                    });
                }
                ClusterView { name, shards, error: None }
            }
            Err(error) => {
                tracing::debug!(%error, "topology: the cluster's nodes are unknown");
                ClusterView {
                    name,
                    shards: Vec::new(),
                    error: Some("the ClickHouse node this process talks to did not answer".into()),
                }
            }
        }),
        _ => None,
    };
    Json(TopologyView {
        checked: health.checked,
        postgres: health.postgres,
        clickhouse: health.clickhouse,
        cluster,
    })
}
