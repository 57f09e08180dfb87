//! The real `scorekeeper serve` process: health (gRPC and `/health`, through
//! outages), metrics, a write that reaches ClickHouse through its
//! dispatcher, and a clean stop on SIGTERM.

use std::time::{Duration, Instant};

use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::process::{http_get, serve};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn serve_process_mirrors_writes_and_reports_metrics() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let mut child =
        serve(env!("CARGO_BIN_EXE_scorekeeper"), &env).spawn().expect("starting scorekeeper serve");
    let http_port = child.http_port();
    wait_for("/health", Duration::from_secs(30), async || {
        matches!(http_get(http_port, "/health").await, Some((200, _)))
    })
    .await;
    let (_, health) = http_get(http_port, "/health").await.unwrap();
    assert!(health.contains("postgres: ok") && health.contains("clickhouse: ok"), "{health}");

    let customer = env.customer_at("acme", &child.grpc_url()).await;
    let template = customer
        .scorecards()
        .create_scorecard_template(pb::CreateScorecardTemplateRequest {
            name: "process".into(),
            template_type: pb::ScorecardTemplateType::Process as i32,
            criteria: vec![pb::Criterion {
                name: "c".into(),
                weight: 1.0,
                max_value: 5.0,
                ..Default::default()
            }],
        })
        .await
        .expect("template through the serve process")
        .into_inner()
        .template
        .unwrap();
    customer
        .scorecards()
        .create_scorecard(pb::CreateScorecardRequest {
            template_id: template.id,
            agent_id: "agent-1".into(),
            scores: vec![pb::Score { criterion_id: template.criteria[0].id, value: 4.0 }],
            ..Default::default()
        })
        .await
        .expect("scorecard through the serve process");

    env.outbox_drained(Duration::from_secs(20))
        .await
        .expect("the serve process's dispatcher drains the outbox");
    env.assert_scorecards_mirrored().await;
    wait_for("metrics", Duration::from_secs(10), async || {
        let Some((200, metrics)) = http_get(http_port, "/metrics").await else {
            return false;
        };
        metrics.contains(r#"scorekeeper_clickhouse_rows_written_total{path="api",table="scorecards"} 1"#)
            && metrics.contains("scorekeeper_outbox_depth")
            && metrics.contains("scorekeeper_outbox_oldest_age_seconds")
    })
    .await;

    // SIGTERM: a clean stop.
    let status = child.stop(Duration::from_secs(20)).await.expect("stops on SIGTERM");
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
}

/// gRPC health of the overall service (`""`) and of each service, in order.
async fn grpc_health(health: &mut HealthClient<Channel>) -> Vec<ServingStatus> {
    let mut statuses = Vec::new();
    for service in std::iter::once("").chain(SERVICES) {
        let status = match health.check(HealthCheckRequest { service: service.into() }).await {
            Ok(answer) => answer.into_inner().status(),
            Err(error) => panic!("health check of {service:?}: {error:?}"),
        };
        statuses.push(status);
    }
    statuses
}

/// What gRPC health and `/health` should answer after a step.
struct Expect {
    grpc: Vec<ServingStatus>,
    http_code: u16,
    http_body: &'static str,
}

impl Expect {
    fn new(grpc: Vec<ServingStatus>, http_code: u16, http_body: &'static str) -> Expect {
        Expect { grpc, http_code, http_body }
    }
}

const SERVICES: [&str; 5] = [
    "scorekeeper.v1.coaching.ScorecardService",
    "scorekeeper.v1.ConversationService",
    "scorekeeper.v1.AutoQAService",
    "scorekeeper.v1.JobService",
    "scorekeeper.v1.AnalyticsService",
];

/// gRPC health and `/health` follow the servers a process depends on: a
/// Postgres outage turns everything NOT_SERVING and `/health` 503 within a
/// few seconds, and SERVING/200 again once it is back; a ClickHouse outage
/// turns only AnalyticsService NOT_SERVING (writes wait in the outbox).
#[tokio::test]
async fn health_follows_postgres_and_clickhouse_down_and_back() {
    use ServingStatus::{NotServing, Serving};
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let clickhouse = env.clickhouse_config();
    let child = serve(env!("CARGO_BIN_EXE_scorekeeper"), &env)
        .postgres(&env.proxied_database_url())
        .clickhouse(&env.proxy.url(), &clickhouse.database, &clickhouse.user, &clickhouse.password)
        .start(Duration::from_secs(30))
        .await
        .expect("starting scorekeeper serve");
    let http_port = child.http_port();
    let mut health = HealthClient::new(Channel::from_shared(child.grpc_url()).unwrap().connect_lazy());
    let all = |status| vec![status; 1 + SERVICES.len()];
    let analytics_down = vec![Serving, Serving, Serving, Serving, Serving, NotServing];
    assert_eq!(grpc_health(&mut health).await, all(Serving), "both servers up");

    // Each step: cut or restore, then wait for both answers to agree with it.
    let steps: [(&str, &dyn Fn(), Expect); 4] = [
        (
            "Postgres cut",
            &|| env.postgres_proxy.cut(),
            Expect::new(all(NotServing), 503, "postgres: unavailable"),
        ),
        (
            "Postgres restored",
            &|| env.postgres_proxy.restore(),
            Expect::new(all(Serving), 200, "postgres: ok"),
        ),
        ("ClickHouse cut", &|| env.proxy.cut(), Expect::new(analytics_down, 200, "clickhouse: unavailable")),
        ("ClickHouse restored", &|| env.proxy.restore(), Expect::new(all(Serving), 200, "clickhouse: ok")),
    ];
    for (step, act, Expect { grpc, http_code, http_body }) in steps {
        act();
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < Duration::from_secs(5) {
            let now = (grpc_health(&mut health).await, http_get(http_port, "/health").await);
            if now.0 == grpc
                && matches!(&now.1, Some((code, body)) if *code == http_code && body.contains(http_body))
            {
                last = None;
                break;
            }
            last = Some(now);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(last, None, "{step}: gRPC health and /health within 5 s (want {grpc:?}, {http_code})");
        eprintln!("{step}: health followed in {:?}", started.elapsed());
    }
}
