//! The real `scorekeeper serve` process: health, metrics, a write that
//! reaches ClickHouse through its dispatcher, and a clean stop on SIGTERM.

use std::time::{Duration, Instant};

use scorekeeper_proto::coaching as pb;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::process::{http_get, serve};

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
