//! One test's world: fresh databases, the server under test, clients, and
//! readers that compare ClickHouse with Postgres.

use std::time::{Duration, Instant};

use anyhow::bail;
use scorekeeper_analytics::rows::{self, ConversationRow, ScoreRow, ScorecardRow};
use scorekeeper_analytics::{Analytics, ClickHouseConfig};
pub use scorekeeper_client::Authed;
use scorekeeper_client::{Api, BearerToken};
use scorekeeper_domain::mirror::MirrorBatch;
use scorekeeper_domain::{CustomerId, ScorecardId};
use scorekeeper_jobs::JobStore;
use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::auto_qa_service_client::AutoQaServiceClient;
use scorekeeper_proto::v1::conversation_service_client::ConversationServiceClient;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_retry::Backoff;
use scorekeeper_service::{Parts, Service};
use scorekeeper_store::Store;
use scorekeeper_sync::outbox::DispatcherConfig;
use scorekeeper_testbed::postgres_url::{self, with_addr, with_database};
use tonic::transport::Channel;

use crate::cluster::Cluster;
use crate::proxy::TcpProxy;
use crate::stack::{self, DropDatabases, setting};

/// A customer with a token and a channel to the server under test.
#[derive(Clone)]
pub struct Customer {
    pub id: CustomerId,
    pub token: String,
    channel: Channel,
}

impl Customer {
    /// The API as this customer calls it (`scorekeeper-client`'s typed
    /// clients with the customer's token).
    pub fn api(&self) -> Api {
        Api::new(self.channel.clone(), BearerToken::new(&self.token).expect("tokens are ASCII"))
    }
    pub fn scorecards(&self) -> ScorecardServiceClient<Authed> {
        self.api().scorecards()
    }
    pub fn conversations(&self) -> ConversationServiceClient<Authed> {
        self.api().conversations()
    }
    pub fn autoqa(&self) -> AutoQaServiceClient<Authed> {
        self.api().autoqa()
    }
    pub fn analytics(&self) -> AnalyticsServiceClient<Authed> {
        self.api().analytics()
    }
    pub fn jobs(&self) -> JobServiceClient<Authed> {
        self.api().jobs()
    }
}

/// Options of [`TestEnv::start_with`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Run the outbox dispatcher in the background (tests that drive it by
    /// hand turn it off).
    pub dispatcher: bool,
    /// Run a job worker (reindex jobs) in the background.
    pub worker: bool,
    /// The worker's reindex settings.
    pub reindex: scorekeeper_sync::reindex::ReindexSettings,
    /// How AutoQA shares the server.
    pub autoqa: scorekeeper_service::AutoQaSettings,
    /// What one customer may start through the API.
    pub limits: scorekeeper_service::TenantLimits,
    /// ClickHouse is the local cluster ([`crate::cluster`]), not the single
    /// server; the cluster is brought back up (`scripts/stack cluster up`)
    /// when the environment is dropped, also when the test failed.
    pub cluster: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dispatcher: true,
            worker: true,
            reindex: Default::default(),
            autoqa: Default::default(),
            limits: Default::default(),
            cluster: false,
        }
    }
}

/// A job worker's settings for tests: a quick poll, short backoffs, and a
/// lease of 3 s, so tests of lost workers and outages finish quickly.
pub fn test_worker(worker_id: impl Into<String>) -> scorekeeper_jobs::WorkerConfig {
    let mut config = scorekeeper_jobs::WorkerConfig::new(worker_id);
    config.poll_interval = Duration::from_millis(100);
    config.claim_backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    config.retry_backoff = Some(Backoff::new(Duration::from_millis(200), Duration::from_secs(300)));
    config.lease = Duration::from_secs(3);
    config
}

pub struct TestEnv {
    /// The store of this test's database, direct (never through a proxy).
    pub store: Store,
    /// The job tables of this test's database, direct (never through a proxy).
    pub jobs: JobStore,
    /// The store the server under test (API, dispatcher, worker) uses:
    /// through `postgres_proxy`.
    pub server_store: Store,
    /// What the server under test talks to Postgres through; cut it to take
    /// Postgres "down" for this test only.
    pub postgres_proxy: TcpProxy,
    /// ClickHouse as the test sees it: direct, never through the proxy.
    pub analytics: Analytics,
    /// What the server under test talks to; cut it to take ClickHouse down.
    pub proxy: TcpProxy,
    /// ClickHouse as the server under test sees it (through the proxy).
    pub server_analytics: Analytics,
    pub grpc_url: String,
    channel: Channel,
    /// The server under test; dropped (its parts aborted) with the env.
    service: Option<Service>,
    /// This test's databases, dropped after everything above (fields drop
    /// in order).
    databases: DropDatabases,
    /// The cluster ClickHouse is, when [`Options::cluster`].
    pub cluster: Option<Cluster>,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        TestEnv::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestEnv {
        TestEnv::try_start(options).await.expect("starting the test environment")
    }

    async fn try_start(options: Options) -> anyhow::Result<TestEnv> {
        let admin_url = setting("DATABASE_URL")?;
        let suffix: u64 = rand::random();
        let postgres_db = format!("sk_test_{suffix:016x}");
        let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        admin.batch_execute(&format!("CREATE DATABASE {postgres_db}")).await?;
        let store = Store::connect(&with_database(&admin_url, &postgres_db)?, 8)?;
        scorekeeper_jobs::migrate_postgres(&store).await?;
        let postgres_proxy = TcpProxy::start(postgres_url::server_addr(&admin_url)?).await?;
        let server_store = Store::connect(
            &with_addr(&with_database(&admin_url, &postgres_db)?, postgres_proxy.addr())?,
            16,
        )?;

        let cluster = if options.cluster { Some(Cluster::from_env()?) } else { None };
        let clickhouse = match &cluster {
            Some(cluster) => cluster.clickhouse_config(&postgres_db),
            None => stack::clickhouse_config(&postgres_db)?,
        };
        let analytics = Analytics::new(clickhouse.clone())?;
        analytics.migrate().await?;
        let upstream = clickhouse.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let proxy = TcpProxy::start(upstream).await?;
        let server_analytics = Analytics::new(ClickHouseConfig { url: proxy.url(), ..clickhouse.clone() })?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc_url = format!("http://{}", listener.local_addr()?);
        // The service as `serve` assembles it, on the proxies, with the
        // test's timings: a quick outbox poll, short backoffs and lease.
        let dispatcher = options.dispatcher.then(|| DispatcherConfig {
            poll_interval: Duration::from_millis(100),
            ..DispatcherConfig::default()
        });
        let worker = options.worker.then(|| test_worker(format!("test-worker-{suffix:x}")));
        let parts = Parts {
            api: Some(listener),
            api_tls: None,
            dispatcher,
            worker,
            reindex: options.reindex,
            reindex_schedule: None,
            audit_schedule: None,
            autoqa: options.autoqa,
            limits: options.limits,
        };
        let service = Service::start(&server_store, &server_analytics, parts);
        let channel = Channel::from_shared(grpc_url.clone())?.connect_lazy();
        Ok(TestEnv {
            jobs: JobStore::new(&store),
            store,
            server_store,
            postgres_proxy,
            analytics,
            proxy,
            server_analytics,
            grpc_url,
            channel,
            service: Some(service),
            databases: DropDatabases { admin_url, postgres_db, clickhouse },
            cluster,
        })
    }

    /// A new customer with a (non-admin) token.
    pub async fn customer(&self, name: &str) -> Customer {
        let id = self.store.ensure_customer(name).await.expect("creating a customer");
        let token = self.store.create_token(id, false, "test").await.expect("creating a token");
        Customer { id, token, channel: self.channel.clone() }
    }

    /// The Postgres URL of this test's database, for processes the test starts.
    pub fn database_url(&self) -> String {
        with_database(&self.databases.admin_url, &self.databases.postgres_db)
            .expect("checked when the test started")
    }

    /// The Postgres URL of this test's database through `postgres_proxy`,
    /// for processes the test starts and takes Postgres away from.
    pub fn proxied_database_url(&self) -> String {
        with_addr(&self.database_url(), self.postgres_proxy.addr()).expect("checked when the test started")
    }

    /// This test's ClickHouse settings (the real server, not the proxy).
    pub fn clickhouse_config(&self) -> &ClickHouseConfig {
        &self.databases.clickhouse
    }

    /// `customer` again, with an admin token (one that may name any
    /// customer, or all).
    pub async fn admin(&self, customer: &Customer) -> Customer {
        let token =
            self.store.create_token(customer.id, true, "admin").await.expect("creating an admin token");
        Customer { id: customer.id, token, channel: self.channel.clone() }
    }

    /// Customer `id` calling the server under test with `token`, a token
    /// the test made itself.
    pub fn customer_with_token(&self, id: CustomerId, token: String) -> Customer {
        Customer { id, token, channel: self.channel.clone() }
    }

    /// A customer with a token, talking to another server (a process the
    /// test started) at `grpc_url`.
    pub async fn customer_at(&self, name: &str, grpc_url: &str) -> Customer {
        let mut customer = self.customer(name).await;
        customer.channel = scorekeeper_client::channel::lazy(grpc_url).expect("a valid URL");
        customer
    }

    /// A channel without credentials, for authentication tests.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Waits until the outbox is empty.
    pub async fn outbox_drained(&self, within: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let stats = self.store.outbox_stats().await?;
            if stats.depth == 0 {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!("outbox still holds {} entries after {within:?}", stats.depth);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Live rows in ClickHouse, read with FINAL, in id order.
    pub async fn clickhouse_scorecards(&self) -> Vec<ScorecardRow> {
        self.clickhouse_live("scorecards").await
    }
    pub async fn clickhouse_scores(&self) -> Vec<ScoreRow> {
        self.clickhouse_live("scores").await
    }
    pub async fn clickhouse_conversations(&self) -> Vec<ConversationRow> {
        self.clickhouse_live("conversations").await
    }

    async fn clickhouse_live<T>(&self, table: &str) -> Vec<T>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.clickhouse_client()
            .query(&format!(
                "SELECT ?fields FROM {table} FINAL WHERE is_deleted = 0 ORDER BY customer_id, id"
            ))
            .fetch_all::<T>()
            .await
            .unwrap_or_else(|e| panic!("reading {table} from ClickHouse: {e}"))
    }

    /// Every scorecard in Postgres (deleted too) with its scores, as the
    /// mirror readers see them.
    pub async fn postgres_scorecards(&self) -> MirrorBatch {
        all_scorecards(&self.store).await
    }

    /// Asserts ClickHouse's live scorecards and scores are exactly
    /// Postgres's live ones, column for column.
    pub async fn assert_scorecards_mirrored(&self) {
        self.assert_scorecards_mirrored_from(&self.store).await
    }

    /// As [`TestEnv::assert_scorecards_mirrored`], with Postgres read
    /// through `store` (a private cluster, say).
    pub async fn assert_scorecards_mirrored_from(&self, store: &Store) {
        let truth = all_scorecards(store).await;
        let mut expected_scorecards: Vec<ScorecardRow> =
            rows::encode_all(truth.scorecards.iter().filter(|s| !s.is_deleted))
                .expect("a time ClickHouse holds");
        let mut expected_scores: Vec<ScoreRow> =
            rows::encode_all(truth.scores.iter().filter(|s| !s.is_deleted)).expect("a time ClickHouse holds");
        expected_scorecards.sort_by_key(|r| (r.customer_id, r.id));
        expected_scores.sort_by_key(|r| (r.customer_id, r.id));
        assert_eq!(
            self.clickhouse_scorecards().await,
            expected_scorecards,
            "ClickHouse scorecards differ from Postgres"
        );
        assert_eq!(self.clickhouse_scores().await, expected_scores, "ClickHouse scores differ from Postgres");
    }

    /// Rows in a ClickHouse table, tombstones and old versions included
    /// (no FINAL).
    pub async fn clickhouse_row_count(&self, table: &str) -> u64 {
        self.clickhouse_client()
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one::<u64>()
            .await
            .unwrap_or_else(|e| panic!("counting {table}: {e}"))
    }

    /// Deletes the rows of `table` matching `condition` from ClickHouse only
    /// (drift, as a hand deletion makes it) and waits until the mutation
    /// applied: 18.16 applies them in the background.
    pub async fn clickhouse_delete(&self, table: &str, condition: &str) {
        let client = self.clickhouse_client();
        client.query(&format!("ALTER TABLE {table} DELETE WHERE {condition}")).execute().await.unwrap();
        let started = std::time::Instant::now();
        loop {
            let left: u64 = client
                .query(&format!("SELECT count() FROM {table} WHERE {condition}"))
                .fetch_one()
                .await
                .unwrap();
            if left == 0 {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the mutation on {table} did not apply");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client of this test's ClickHouse database: the real server, never
    /// through the proxy, so it works while the proxy is cut.
    pub fn clickhouse_client(&self) -> clickhouse::Client {
        let config = &self.databases.clickhouse;
        scorekeeper_analytics::server_client(config).with_database(&config.database)
    }

    /// Rows of a Postgres query, for assertions that nothing was written.
    pub async fn postgres_count(&self, table: &str) -> i64 {
        let client = self.store.pool().get().await.expect("a Postgres connection");
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("counting {table}: {e}"))
            .get(0)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // The server first, so that nothing writes while the databases go.
        drop(self.service.take());
        // Every node back before the databases are dropped ON CLUSTER (which
        // waits for every node), and for the next cluster test.
        if self.cluster.is_some()
            && let Err(error) = crate::cluster::cluster_up()
        {
            eprintln!("bringing the ClickHouse cluster back up after the test: {error:#}");
        }
    }
}

/// Every scorecard in `store` (deleted too) with its scores.
async fn all_scorecards(store: &Store) -> MirrorBatch {
    let client = store.pool().get().await.expect("a Postgres connection");
    let ids: Vec<ScorecardId> = client
        .query("SELECT id FROM scorecards ORDER BY id", &[])
        .await
        .expect("listing scorecards")
        .iter()
        .map(|r| ScorecardId(r.get(0)))
        .collect();
    store.scorecard_mirror(&ids).await.expect("reading scorecards")
}

/// What [`bulk_import`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct BulkData {
    pub conversation_template: scorekeeper_domain::TemplateId,
    pub process_template: scorekeeper_domain::TemplateId,
    pub conversations: i64,
    pub conversation_scorecards: i64,
    pub process_scorecards: i64,
    /// Conversations, scorecards and scores, all live.
    pub rows: i64,
}

/// Writes rows straight into Postgres, as a bulk import (or any writer that
/// bypasses the API) would: nothing of it reaches ClickHouse. Per
/// conversation one conversation scorecard with two scores; one process
/// scorecard (one score) per ten conversations, linked to one of them.
pub async fn bulk_import(store: &Store, customer: CustomerId, conversations: i64) -> BulkData {
    use scorekeeper_domain::TemplateType;
    use scorekeeper_domain::scorecard::{NewCriterion, NewTemplate};
    use scorekeeper_domain::scoring::CriterionScale;
    let scale = CriterionScale { weight: 1.0, min_value: 0.0, max_value: 5.0 };
    let criterion = |name: &str| NewCriterion { name: name.into(), scale, rule: None };
    let template =
        |name: &str, template_type, criteria| NewTemplate { name: name.into(), template_type, criteria };
    let conversation_template = store
        .create_template(
            customer,
            &template("bulk", TemplateType::Conversation, vec![criterion("a"), criterion("b")]),
        )
        .await
        .expect("conversation template");
    let process_template = store
        .create_template(customer, &template("bulk process", TemplateType::Process, vec![criterion("p")]))
        .await
        .expect("process template");
    let client = store.pool().get().await.expect("a Postgres connection");
    let (c, ct, pt) = (customer.0, conversation_template.id.0, process_template.id.0);
    let (ca, cb, pc) = (
        conversation_template.criteria[0].id.0,
        conversation_template.criteria[1].id.0,
        process_template.criteria[0].id.0,
    );
    let statements = format!(
        "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at, message_count)
         SELECT {c}, 'bulk-' || g, 'agent-' || (g % 7), timestamptz '2026-01-01' + g * interval '1 minute',
                timestamptz '2026-01-01' + g * interval '1 minute' + interval '5 minutes', 0
         FROM generate_series(1, {conversations}) g;
         INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source, total_score)
         SELECT customer_id, {ct}, 1, id, agent_id, 1, 50 FROM conversations WHERE customer_id = {c};
         INSERT INTO scores (customer_id, scorecard_id, criterion_id, value)
         SELECT customer_id, id, {ca}, 2.5 FROM scorecards WHERE customer_id = {c} AND template_id = {ct}
         UNION ALL SELECT customer_id, id, {cb}, 2.5 FROM scorecards WHERE customer_id = {c} AND template_id = {ct};
         WITH created AS (
             INSERT INTO scorecards (customer_id, template_id, template_type, agent_id, source, total_score)
             SELECT {c}, {pt}, 2, 'agent-' || g, 1, 40 FROM generate_series(1, {conversations} / 10) g RETURNING id
         ) INSERT INTO scores (customer_id, scorecard_id, criterion_id, value) SELECT {c}, id, {pc}, 2 FROM created;
         INSERT INTO process_scorecard_conversations (scorecard_id, conversation_id)
         SELECT s.id, (SELECT min(id) FROM conversations WHERE customer_id = {c}) FROM scorecards s
         WHERE s.customer_id = {c} AND s.template_id = {pt};"
    );
    client.batch_execute(&statements).await.expect("bulk import");
    let processes = conversations / 10;
    BulkData {
        conversation_template: conversation_template.id,
        process_template: process_template.id,
        conversations,
        conversation_scorecards: conversations,
        process_scorecards: processes,
        rows: conversations + conversations * 3 + processes * 2,
    }
}
