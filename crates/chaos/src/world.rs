//! One scenario's world: a fresh Postgres database and ClickHouse database
//! (the harness's [`TestEnv`], dropped afterwards; on the local ClickHouse
//! cluster for the cluster scenario), or a private Postgres
//! cluster when the scenario restarts Postgres; a proxy in front of
//! ClickHouse that every serve process goes through; the faults that can be
//! injected; and a customer with a token.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use scorekeeper_analytics::Analytics;
use scorekeeper_domain::{CustomerId, ScorecardId};
use scorekeeper_store::Store;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::private_postgres::PrivatePostgres;
use scorekeeper_tests::proxy::TcpProxy;

use crate::fault::ServerFault;

/// Shell commands stopping and starting a real server.
#[derive(Clone, Debug)]
pub struct StopStart {
    pub stop: String,
    pub start: String,
}

/// How outages are made. Without commands, ClickHouse outages are proxy
/// cuts and Postgres restarts use a private cluster (`pg_ctl`), so the
/// shared servers other tests use are never stopped.
#[derive(Clone, Debug, Default)]
pub struct FaultSettings {
    /// Stops and starts the ClickHouse server of `CLICKHOUSE_URL`.
    pub clickhouse: Option<StopStart>,
    /// Stops and starts the Postgres server of `DATABASE_URL`.
    pub postgres: Option<StopStart>,
}

pub struct World {
    /// The harness's databases (its in-process server stays idle).
    pub env: TestEnv,
    /// Postgres, direct: for setup and the checks.
    pub store: Store,
    /// ClickHouse, direct (never through the proxy).
    pub analytics: Analytics,
    /// The Postgres URL the serve processes use.
    pub database_url: String,
    /// What the serve processes reach ClickHouse through.
    pub clickhouse_proxy: Arc<TcpProxy>,
    /// Takes ClickHouse down for the serve processes.
    pub clickhouse: ServerFault,
    /// Restarts Postgres, when the world was made for it.
    pub postgres: Option<ServerFault>,
    pub customer: CustomerId,
    /// The customer's API token.
    pub token: String,
    /// Where the serve processes' logs go.
    pub log_dir: PathBuf,
}

impl World {
    /// A world named `name` (for the logs); `restartable_postgres` gives it
    /// a Postgres that [`World::postgres`] can restart.
    pub async fn start(
        name: &str,
        faults: &FaultSettings,
        restartable_postgres: bool,
    ) -> anyhow::Result<World> {
        World::start_with(name, faults, restartable_postgres, false).await
    }

    /// A world whose ClickHouse is the local cluster of `scripts/stack
    /// cluster` (`SK_CLUSTER_*`, see `scorekeeper_tests::cluster`): its
    /// database is made `ON CLUSTER`, and the serve processes get
    /// `CLICKHOUSE_CLUSTER`. Call [`crate::scenarios::cluster_kills::reachable`]
    /// first for a clear refusal when the cluster is not up.
    pub async fn start_on_cluster(name: &str, faults: &FaultSettings) -> anyhow::Result<World> {
        World::start_with(name, faults, false, true).await
    }

    async fn start_with(
        name: &str,
        faults: &FaultSettings,
        restartable_postgres: bool,
        cluster: bool,
    ) -> anyhow::Result<World> {
        let env =
            TestEnv::start_with(Options { dispatcher: false, worker: false, cluster, ..Options::default() })
                .await;
        let (store, database_url, postgres) = match (restartable_postgres, &faults.postgres) {
            (false, _) => (env.store.clone(), env.database_url(), None),
            (true, Some(commands)) => {
                let fault = ServerFault::Commands {
                    name: "Postgres".into(),
                    stop: commands.stop.clone(),
                    start: commands.start.clone(),
                };
                (env.store.clone(), env.database_url(), Some(fault))
            }
            (true, None) => {
                let cluster = tokio::task::spawn_blocking(PrivatePostgres::start)
                    .await?
                    .context("starting a private Postgres cluster")?;
                let store = Store::connect(&cluster.url(), 8)?;
                scorekeeper_jobs::migrate_postgres(&store).await.context("migrating the private cluster")?;
                let url = cluster.url();
                (store, url, Some(ServerFault::PrivatePostgres(Arc::new(cluster))))
            }
        };
        let upstream =
            env.clickhouse_config().url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let clickhouse_proxy = Arc::new(TcpProxy::start(upstream).await?);
        let clickhouse = match &faults.clickhouse {
            Some(commands) => ServerFault::Commands {
                name: "ClickHouse".into(),
                stop: commands.stop.clone(),
                start: commands.start.clone(),
            },
            None => ServerFault::ProxyCut(clickhouse_proxy.clone()),
        };
        let customer = store.ensure_customer("chaos").await?;
        let token = store.create_token(customer, false, "chaos").await?;
        let log_dir = std::env::temp_dir()
            .join(format!("sk-chaos-{}-{name}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f")));
        std::fs::create_dir_all(&log_dir)?;
        Ok(World {
            analytics: env.analytics.clone(),
            env,
            store,
            database_url,
            clickhouse_proxy,
            clickhouse,
            postgres,
            customer,
            token,
            log_dir,
        })
    }

    /// A client of the run's ClickHouse database, direct (never through the
    /// proxy), for the checks' raw queries.
    pub fn clickhouse_client(&self) -> clickhouse::Client {
        let config = self.analytics.config();
        scorekeeper_analytics::server_client(config).with_database(&config.database)
    }

    /// The ClickHouse URL serve processes use (the proxy).
    pub fn clickhouse_url(&self) -> String {
        self.clickhouse_proxy.url()
    }

    /// The ids of every scorecard of the customer (deleted too), in order.
    pub async fn scorecard_ids(&self) -> anyhow::Result<Vec<ScorecardId>> {
        let client = self.store.pool().get().await?;
        let rows = client
            .query("SELECT id FROM scorecards WHERE customer_id = $1 ORDER BY id", &[&self.customer.0])
            .await?;
        Ok(rows.iter().map(|r| ScorecardId(r.get(0))).collect())
    }
}
