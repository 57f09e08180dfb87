//! ClickHouse as a cluster (`CLICKHOUSE_CLUSTER`) on the local cluster of
//! `scripts/stack cluster` (shard 1 = nodes 1 and 2, replicas; shard 2 =
//! node 3): the four write paths land on both shards and audit clean; the
//! audit names drift by id there and its repair converges; a shard killed
//! (SIGKILL) during an outbox burst and during a reindex makes writes fail
//! and retry, and nothing is lost once it is back; a replica killed and
//! restarted loses nothing and answers as Postgres does; the console of a
//! real `serve` shows every replica as `system.clusters` names it (to admin
//! sessions only), a killed shard down and then up again.
//!
//! Each test has its own Postgres and ClickHouse database (made ON CLUSTER,
//! dropped after). The tests run one at a time (nextest group `cluster`):
//! a node one test kills would fail another; every test leaves the cluster
//! up (`TestEnv`'s drop runs `scripts/stack cluster up`), also on failure.

use std::time::Duration;

use scorekeeper_domain::CustomerId;
use scorekeeper_domain::audit::AuditScope;
use scorekeeper_jobs::JobState;
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule::Kind};
use scorekeeper_proto::v1::{self, Speaker};
use scorekeeper_sync::audit::{self, Quiet};
use scorekeeper_sync::reindex::ReindexSettings;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::cluster::{self, NODE_1, NODE_2, NODE_3};
use scorekeeper_tests::env::{Customer, Options, bulk_import};
use scorekeeper_tests::fixtures::*;
use scorekeeper_tests::process::{http_request, serve};
use scorekeeper_tests::stored_jobs::{full_reindex, rows_done, wait_job};

const DRAIN: Duration = Duration::from_secs(60);
const TABLES: [&str; 3] = ["conversations", "scorecards", "scores"];

/// A test environment on the cluster; the guard keeps other cluster tests
/// of this process out until the environment is gone.
async fn start(options: Options) -> (tokio::sync::MutexGuard<'static, ()>, TestEnv) {
    let turn = cluster::exclusive().await;
    // A test before this one may have failed leaving a node down.
    cluster::cluster_up().expect("the ClickHouse cluster (scripts/stack cluster up)");
    let env = TestEnv::start_with(Options { cluster: true, ..options }).await;
    (turn, env)
}

fn scope(customer: CustomerId) -> AuditScope {
    AuditScope { customer_id: Some(customer), window: None }
}

/// ClickHouse equals Postgres for `customers`: the live scorecards and
/// scores column for column, and an audit of each customer (conversations
/// too) finds no drift.
async fn assert_in_sync(env: &TestEnv, customers: &[CustomerId]) {
    env.assert_scorecards_mirrored().await;
    for customer in customers {
        let report = audit::audit(&env.store, &env.analytics, &scope(*customer)).await.unwrap();
        assert_eq!(report.drifted(), 0, "customer {customer:?}: {report:#?}");
        assert!(report.tables.iter().all(|t| t.rows_checked > 0), "{report:#?}");
    }
}

/// Rows (every version) of `table` in `node`'s local table.
async fn local_rows(env: &TestEnv, node: usize, table: &str) -> u64 {
    let cluster = env.cluster.as_ref().expect("a cluster test");
    cluster
        .node_client(node, &env.clickhouse_config().database)
        .query(&format!("SELECT count() FROM {table}_local"))
        .fetch_one()
        .await
        .unwrap_or_else(|e| panic!("counting {table}_local on node {node}: {e}"))
}

/// Every table's rows are split between the two shards (node 1 for shard 1,
/// node 3 for shard 2), each row on one shard only: their local tables
/// together hold what the Distributed table shows.
async fn assert_sharded(env: &TestEnv) {
    for table in TABLES {
        let (shard_1, shard_2) = (local_rows(env, NODE_1, table).await, local_rows(env, NODE_3, table).await);
        assert!(shard_1 > 0 && shard_2 > 0, "{table}: shard 1 holds {shard_1} rows, shard 2 {shard_2}");
        assert_eq!(shard_1 + shard_2, env.clickhouse_row_count(table).await, "{table}");
    }
}

/// Creates `n` conversation scorecards on `customer`'s conversations, one
/// after the other (the API writes Postgres and the outbox only).
async fn create_burst(customer: &Customer, template: &pb::ScorecardTemplate, convs: &[v1::Conversation]) {
    let mut api = customer.scorecards();
    for (i, c) in convs.iter().enumerate() {
        api.create_scorecard(conversation_scorecard(template, c.id, &[(i % 6) as f64, 3.0]))
            .await
            .expect("a create succeeds whatever ClickHouse's state");
    }
}

/// Conversations reach ClickHouse by batch index (or reindex), never
/// through the outbox: index them, so that the audit covers every table.
async fn index_conversations(customer: &Customer, convs: &[v1::Conversation]) {
    customer
        .conversations()
        .batch_index_conversations(v1::BatchIndexConversationsRequest {
            conversation_ids: convs.iter().map(|c| c.id).collect(),
            ..Default::default()
        })
        .await
        .expect("batch index on the cluster");
}

/// Entries of the outbox whose delivery failed at least once.
async fn failed_outbox_entries(env: &TestEnv) -> i64 {
    let client = env.store.pool().get().await.unwrap();
    client.query_one("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_four_write_paths_land_on_both_shards_and_audit_clean() {
    let (_turn, env) = start(Options::default()).await;
    let customer = env.customer("acme").await;
    let conv_template = conversation_template(&customer).await;
    let proc_template = process_template(&customer).await;
    let convs = conversations(&customer, 12).await;

    // API, through the outbox: creates, an update, a delete.
    let mut ids = Vec::new();
    for c in &convs {
        ids.push(
            create_scorecard(&customer, conversation_scorecard(&conv_template, c.id, &[4.0, 7.0])).await.id,
        );
    }
    create_scorecard(&customer, process_scorecard(&proc_template, "agent-9", vec![convs[0].id], &[3.0]))
        .await;
    update_scorecard(
        &customer,
        pb::UpdateScorecardRequest {
            id: ids[0],
            scores: scores(&conv_template, &[1.0]),
            ..Default::default()
        },
    )
    .await;
    customer.scorecards().delete_scorecard(pb::DeleteScorecardRequest { id: ids[1] }).await.unwrap();

    // AutoQA, through the outbox.
    let rules = template(
        &customer,
        pb::ScorecardTemplateType::Conversation,
        vec![rule_criterion("greets", Kind::Present, "thank you for calling")],
    )
    .await;
    let talk = conversation("talk", "agent-1", T0, &[(Speaker::Agent, "Thank you for calling!")]);
    let talked = customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest { conversations: vec![talk] })
        .await
        .unwrap()
        .into_inner()
        .conversations;
    let mut ids_scored: Vec<i64> = talked.iter().map(|c| c.id).collect();
    ids_scored.extend(convs.iter().map(|c| c.id));
    let results = customer
        .autoqa()
        .autoscore_conversations(v1::AutoscoreConversationsRequest {
            template_id: rules.id,
            conversation_ids: ids_scored.clone(),
        })
        .await
        .expect("autoscore")
        .into_inner()
        .results;
    assert_eq!(results.len(), ids_scored.len());

    // Batch index: every conversation, with its scorecards.
    customer
        .conversations()
        .batch_index_conversations(v1::BatchIndexConversationsRequest {
            conversation_ids: ids_scored,
            ..Default::default()
        })
        .await
        .expect("batch index on the cluster");

    // Reindex: a second customer's rows, imported straight into Postgres.
    let other = env.store.ensure_customer("globex").await.unwrap();
    bulk_import(&env.store, other, 300).await;
    let job = env.jobs.create_job(&full_reindex(other, None)).await.unwrap().0;
    wait_job(&env.jobs, &job, Duration::from_secs(60), |j| j.state == JobState::Succeeded).await;

    env.outbox_drained(DRAIN).await.unwrap();
    assert_in_sync(&env, &[customer.id, other]).await;
    assert_sharded(&env).await;
}

#[tokio::test]
async fn the_audit_names_drift_on_the_cluster_and_the_repair_converges() {
    let (_turn, env) = start(Options::default()).await;
    let customer = env.store.ensure_customer("acme").await.unwrap();
    bulk_import(&env.store, customer, 200).await;
    let job = env.jobs.create_job(&full_reindex(customer, None)).await.unwrap().0;
    wait_job(&env.jobs, &job, Duration::from_secs(60), |j| j.state == JobState::Succeeded).await;
    assert_in_sync(&env, &[customer]).await;

    // ClickHouse loses scores on both shards (a mutation on every node's
    // local table), and Postgres gains a conversation ClickHouse never saw.
    let c = customer.0;
    let pg = env.store.pool().get().await.unwrap();
    let lost: Vec<i64> = pg
        .query(&format!("SELECT id FROM scores WHERE customer_id = {c} ORDER BY id LIMIT 40"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let list = lost.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    env.analytics.delete_rows("scores", &format!("id IN ({list})")).await.expect("deleting on the cluster");
    let added: i64 = pg
        .query_one(
            &format!(
                "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at)
                 VALUES ({c}, 'by-hand', 'agent-1', '2026-01-01 02:00Z', '2026-01-01 02:05Z') RETURNING id"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let (report, findings) =
        audit::audit_with_findings(&env.store, &env.analytics, &scope(customer), &Quiet).await.unwrap();
    let mut named: Vec<(String, i64)> =
        findings.rows.iter().map(|r| (format!("{:?}", r.table), r.id)).collect();
    named.sort();
    let mut expected: Vec<(String, i64)> = lost.iter().map(|id| ("Scores".to_owned(), *id)).collect();
    expected.push(("Conversations".to_owned(), added));
    expected.sort();
    assert_eq!(named, expected, "{report:#?}");

    let outcome = audit::audit_and_repair(
        &env.store,
        &env.analytics,
        &scope(customer),
        &Quiet,
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let after = outcome.after.expect("an audit after the repair");
    assert_eq!(after.drifted(), 0, "{after:#?}");
    assert_in_sync(&env, &[customer]).await;
}

#[tokio::test]
async fn a_shard_killed_during_an_outbox_burst_loses_nothing() {
    let (_turn, env) = start(Options::default()).await;
    let customer = env.customer("acme").await;
    let template = conversation_template(&customer).await;
    let convs = conversations(&customer, 60).await;
    index_conversations(&customer, &convs).await;

    create_burst(&customer, &template, &convs[..20]).await;
    cluster::kill_node(NODE_3).expect("killing node 3 (shard 2)");
    create_burst(&customer, &template, &convs[20..]).await;
    // The dispatcher tries (every 100 ms), and fails: every insert has rows for shard 2.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(failed_outbox_entries(&env).await > 0, "deliveries failed while shard 2 was down");
    assert!(env.store.outbox_stats().await.unwrap().depth > 0, "failed deliveries stay in the outbox");

    cluster::cluster_up().expect("bringing node 3 back");
    env.outbox_drained(DRAIN).await.expect("the outbox drains once shard 2 is back");
    assert_eq!(env.clickhouse_scorecards().await.len(), 60, "0 lost");
    assert_in_sync(&env, &[customer.id]).await;
}

#[tokio::test]
async fn a_shard_killed_during_a_reindex_loses_nothing() {
    // A checkpoint after every page of 200, so the kill lands mid-job.
    let reindex = ReindexSettings { write_rows: 1, ..ReindexSettings::default() };
    let (_turn, env) = start(Options { dispatcher: false, reindex, ..Options::default() }).await;
    let customer = env.store.ensure_customer("acme").await.unwrap();
    let data = bulk_import(&env.store, customer, 3_000).await;
    let job = env.jobs.create_job(&full_reindex(customer, Some(200))).await.unwrap().0;

    wait_job(&env.jobs, &job, Duration::from_secs(60), |j| rows_done(j) > 0).await;
    cluster::kill_node(NODE_3).expect("killing node 3 (shard 2)");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = env.jobs.get_job(job.id, None).await.unwrap().unwrap();
    assert_ne!(stuck.state, JobState::Succeeded, "the reindex cannot finish with shard 2 down: {stuck:#?}");

    cluster::cluster_up().expect("bringing node 3 back");
    let done = wait_job(&env.jobs, &job, Duration::from_secs(120), |j| j.state == JobState::Succeeded).await;
    assert!(done.attempts_made() > 1, "the failed attempt (of a partition) was retried: {done:#?}");
    assert!(rows_done(&done) >= data.rows, "{done:#?}");
    assert_in_sync(&env, &[customer]).await;
}

#[tokio::test]
async fn a_replica_killed_and_restarted_loses_nothing() {
    let (_turn, env) = start(Options::default()).await;
    let customer = env.customer("acme").await;
    let template = conversation_template(&customer).await;
    let convs = conversations(&customer, 40).await;
    index_conversations(&customer, &convs).await;

    create_burst(&customer, &template, &convs[..10]).await;
    env.outbox_drained(DRAIN).await.unwrap();
    cluster::kill_node(NODE_2).expect("killing node 2 (shard 1's second replica)");
    // Shard 1 still has node 1: writes and reads go on.
    create_burst(&customer, &template, &convs[10..]).await;
    env.outbox_drained(DRAIN).await.expect("writes succeed with one replica of shard 1 down");
    env.assert_scorecards_mirrored().await;

    cluster::cluster_up().expect("bringing node 2 back");
    let cluster = env.cluster.as_ref().unwrap();
    let database = &env.clickhouse_config().database;
    for table in TABLES {
        // Node 2 fetches what it missed from the replication log once its
        // ZooKeeper session is back; SYNC REPLICA waits for its queue, which
        // a just-restarted node may not have loaded yet: poll a while.
        let checksum = |node| {
            cluster
                .node_client(node, database)
                .query(&format!("SELECT count(), sum(cityHash64(id, version)) FROM {table}_local"))
                .fetch_one::<(u64, u64)>()
        };
        let on_node_1 = checksum(NODE_1).await.unwrap();
        let started = std::time::Instant::now();
        loop {
            let synced = cluster
                .node_client(NODE_2, database)
                .query(&format!("SYSTEM SYNC REPLICA {table}_local"))
                .execute()
                .await;
            let on_node_2 = checksum(NODE_2).await;
            if synced.is_ok() && on_node_2.as_ref().ok() == Some(&on_node_1) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{table} on node 2 {on_node_2:?} (sync: {synced:?}) is not node 1's {on_node_1:?} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Reads through node 2's Distributed tables (which read shard 1 from
    // node 2 itself) equal Postgres.
    let through_node_2: Vec<scorekeeper_analytics::rows::ScorecardRow> = cluster
        .node_client(NODE_2, database)
        .query("SELECT ?fields FROM scorecards FINAL WHERE is_deleted = 0 ORDER BY customer_id, id")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(through_node_2, env.clickhouse_scorecards().await);
    assert_eq!(through_node_2.len(), 40, "0 lost");
    assert_in_sync(&env, &[customer.id]).await;
}

/// How long the console's topology may take to show a change of a node.
const TOPOLOGY_WITHIN: Duration = Duration::from_secs(30);

/// One replica as the console's topology shows it, or as `system.clusters`
/// names it (then `up` is true): shard, replica, host, native port, up.
type ReplicaRow = (u32, u32, String, u16, bool);

/// Logs in to the console of the serve on `port` with `token` (`POST
/// /ui/login`) and answers the session's `sk_console` cookie.
async fn console_session(port: u16, token: &str) -> String {
    let response = http_request(
        port,
        "POST",
        "/ui/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={token}").as_bytes(),
    )
    .await
    .expect("the console answers POST /ui/login");
    assert_eq!(response.status, 303, "logging in with a live token: {response:?}");
    let cookie = response
        .headers_named("set-cookie")
        .into_iter()
        .find_map(|c| c.split(';').next()?.trim().strip_prefix("sk_console=").map(str::to_owned))
        .unwrap_or_else(|| panic!("no session cookie: {response:?}"));
    format!("sk_console={cookie}")
}

/// `GET /ui/api/topology` with the session `cookie`: 200 and JSON.
async fn topology(port: u16, cookie: &str) -> serde_json::Value {
    let response = http_request(port, "GET", "/ui/api/topology", &[("Cookie", cookie)], b"")
        .await
        .expect("the console answers GET /ui/api/topology");
    assert_eq!(response.status, 200, "{response:?}");
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("not JSON ({e}): {response:?}"))
}

/// The replicas of a topology's `cluster`, shard by shard, in its order.
fn replicas_shown(topology: &serde_json::Value) -> Vec<ReplicaRow> {
    let shards = topology["cluster"]["shards"].as_array().unwrap_or_else(|| panic!("no shards: {topology}"));
    let mut rows = Vec::new();
    for shard in shards {
        let number = shard["shard"].as_u64().unwrap_or_else(|| panic!("a shard number: {topology}"));
        let replicas = shard["replicas"].as_array().unwrap_or_else(|| panic!("no replicas: {topology}"));
        for r in replicas {
            let field = |name: &str| r[name].as_u64().unwrap_or_else(|| panic!("replica {name}: {topology}"));
            rows.push((
                number as u32,
                field("replica") as u32,
                r["host"].as_str().unwrap_or_else(|| panic!("replica host: {topology}")).to_owned(),
                field("port") as u16,
                r["up"].as_bool().unwrap_or_else(|| panic!("replica up: {topology}")),
            ));
        }
    }
    rows
}

/// Polls the topology until `wanted` holds of its replicas; answers how
/// long that took. Fails after [`TOPOLOGY_WITHIN`] with the last answer.
async fn wait_topology(
    port: u16,
    cookie: &str,
    what: &str,
    wanted: impl Fn(&[ReplicaRow]) -> bool,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let answer = topology(port, cookie).await;
        assert!(answer["cluster"]["error"].is_null(), "{what}: node 1 answers: {answer}");
        if wanted(&replicas_shown(&answer)) {
            return started.elapsed();
        }
        assert!(started.elapsed() < TOPOLOGY_WITHIN, "{what}: not within {TOPOLOGY_WITHIN:?}: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /ui/api/topology` on a real `serve` on the cluster: an admin
/// session sees the cluster by name and every replica where node 1's
/// `system.clusters` puts it, all up; the killed node 3 (all of shard 2)
/// shown down while the others stay up, and up again once it is back
/// (each within 30 s); a customer's session sees no cluster at all.
#[tokio::test]
async fn the_console_shows_each_replica_and_a_killed_shard_down_then_up() {
    // The in-process server does nothing: the serve under test is the one
    // whose console answers.
    let (_turn, env) = start(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let cluster = env.cluster.clone().expect("a cluster test");
    assert_eq!(cluster.url, cluster.nodes[NODE_1 - 1], "serve talks to node 1 (SK_CLUSTER_URL)");
    let customer = env.customer("acme").await;
    let admin = env.admin(&customer).await;
    let binary = scorekeeper_testbed::binary::serve_binary().expect("the scorekeeper binary");
    let process =
        serve(binary, &env).without_worker().start(DRAIN).await.expect("serve answers /health within 60 s");
    let port = process.http_port();

    // The cluster as node 1 (the node serve talks to) knows it.
    let database = &env.clickhouse_config().database;
    let known: Vec<(u32, u32, String, u16)> = cluster
        .node_client(NODE_1, database)
        .query(
            "SELECT shard_num, replica_num, host_name, port FROM system.clusters \
             WHERE cluster = ? ORDER BY shard_num, replica_num",
        )
        .bind(&cluster.name)
        .fetch_all()
        .await
        .expect("system.clusters on node 1");
    let layout: Vec<(u32, usize)> = [1, 2].map(|s| (s, known.iter().filter(|r| r.0 == s).count())).into();
    assert_eq!(
        (known.len(), layout),
        (3, vec![(1, 2), (2, 1)]),
        "shard 1: 2 replicas, shard 2: 1: {known:?}"
    );
    // Which replica node 3 is: the one its own system.clusters calls local
    // (18.16 marks every replica of the node's shard, later versions the
    // node alone: the same for a shard of one). It is all of shard 2, and
    // node 1, which serve talks to, is in shard 1.
    let local_to = |node| {
        cluster
            .node_client(node, database)
            .query("SELECT shard_num, replica_num FROM system.clusters WHERE cluster = ? AND is_local = 1")
            .bind(&cluster.name)
            .fetch_all::<(u32, u32)>()
    };
    let node_3 = local_to(NODE_3).await.expect("system.clusters on node 3");
    assert_eq!(node_3, vec![(2, 1)], "node 3 is shard 2's only replica");
    let node_1 = local_to(NODE_1).await.expect("system.clusters on node 1");
    assert!(!node_1.is_empty() && node_1.iter().all(|(s, _)| *s == 1), "node 1 is in shard 1: {node_1:?}");
    let all_up: Vec<ReplicaRow> = known.iter().map(|(s, r, h, p)| (*s, *r, h.clone(), *p, true)).collect();
    let node_3_down: Vec<ReplicaRow> =
        all_up.iter().cloned().map(|(s, r, h, p, _)| (s, r, h, p, (s, r) != node_3[0])).collect();

    // A customer's session sees whether the dependencies answer, never the hosts.
    let customer_session = console_session(port, &customer.token).await;
    let seen = topology(port, &customer_session).await;
    assert!(seen["cluster"].is_null(), "the cluster is admin only: {seen}");
    assert_eq!(seen["clickhouse"], true, "{seen}");

    // An admin's: the cluster by name, every replica where system.clusters
    // says, all up.
    let admin_session = console_session(port, &admin.token).await;
    let seen = topology(port, &admin_session).await;
    for dependency in ["checked", "postgres", "clickhouse"] {
        assert_eq!(seen[dependency], true, "{dependency}: {seen}");
    }
    assert_eq!(seen["cluster"]["name"], cluster.name.as_str(), "{seen}");
    assert!(seen["cluster"]["error"].is_null(), "{seen}");
    assert_eq!(replicas_shown(&seen), all_up, "{seen}");

    // Shard 2 killed: its replica is shown down, the others up.
    cluster::kill_node(NODE_3).expect("killing node 3 (shard 2)");
    let down = wait_topology(port, &admin_session, "node 3 down", |r| r == node_3_down).await;
    // Back: every replica up again.
    let restarted = std::time::Instant::now();
    cluster::cluster_up().expect("bringing node 3 back");
    let restart = restarted.elapsed();
    let up = wait_topology(port, &admin_session, "node 3 back", |r| r == all_up).await;
    eprintln!(
        "topology: node 3 shown down {down:?} after its kill; up {up:?} after `cluster up` ({restart:?})"
    );
}
