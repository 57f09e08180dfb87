//! The alert rules (`deploy/prometheus/alerts.yml`) and the Grafana
//! dashboard (`deploy/grafana/scorekeeper.json`) cannot drift from the code:
//! `promtool` accepts the rules and passes their unit tests, every
//! `scorekeeper_…` metric they name is one the service publishes and shows
//! on a real `serve`'s `/metrics`, and every alert has its runbook heading
//! in `docs/operations.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use scorekeeper_proto::v1;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::fixtures::{create_scorecard, process_scorecard, process_template};
use scorekeeper_tests::process::{http_get, serve};

const RULES: &str = "deploy/prometheus/alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/alerts_test.yml";
const DASHBOARD: &str = "deploy/grafana/scorekeeper.json";

/// Metrics that only get a sample when something fails that this test
/// cannot make fail without breaking the shared stack: a scheduler's tick
/// fails only when Postgres does. The exporter prints a metric only once it
/// has a sample, so these are checked against the described names alone.
const ONLY_ON_FAILURE: &[&str] = &["scorekeeper_schedule_failures_total"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root")
}

fn read(relative: &str) -> String {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs `promtool` with `args` in the workspace; a missing promtool fails
/// (never skips): `scripts/stack up` installs it.
fn promtool(args: &[&str]) {
    let output = Command::new("promtool").args(args).current_dir(workspace()).output().unwrap_or_else(|e| {
        panic!(
            "running promtool ({e}): install Debian's `prometheus` package \
             (`apt-get install --no-install-recommends prometheus`; `scripts/stack up` does)"
        )
    });
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules() {
    promtool(&["check", "rules", RULES]);
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    promtool(&["test", "rules", RULE_TESTS]);
}

/// The values of `key:` in a YAML file: one line, or the indented block
/// after `key: |`. Enough for our rules file, whose shape promtool checks.
fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}:");
    let mut values = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let Some(value) = trimmed.strip_prefix(&prefix) else { continue };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let indent = line.len() - line.trim_start().len();
            let mut block = String::new();
            while let Some(next) =
                lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            {
                block.push_str(next.trim());
                block.push('\n');
            }
            values.push(block);
        } else {
            values.push(value.trim_matches('"').trim_matches('\'').to_owned());
        }
    }
    values
}

/// The `expr` of every rule.
fn rule_expressions() -> Vec<String> {
    let exprs = yaml_values(&read(RULES), "expr");
    assert!(exprs.len() >= 7, "found only {} rule expressions in {RULES}; the scan is broken", exprs.len());
    exprs
}

/// Every `expr` of the dashboard's panels (nested rows included).
fn dashboard_expressions() -> Vec<String> {
    fn walk(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", serde_json::Value::String(expr)) => into.push(expr.clone()),
                        _ => walk(value, into),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, into)),
            _ => {}
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    walk(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "found only {} queries in {DASHBOARD}; the scan is broken", exprs.len());
    exprs
}

/// The `scorekeeper_…` identifiers in PromQL expressions.
fn named_metrics(exprs: &[String]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expr in exprs {
        for (at, _) in expr.match_indices("scorekeeper_") {
            // Part of a longer identifier: not a metric name.
            if expr[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String =
                expr[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.insert(name);
        }
    }
    names
}

/// `name` as the service lists it: a summary's or histogram's series carry
/// a suffix the listed name lacks.
fn listed_name(name: &str, listed: &BTreeSet<&'static str>) -> Option<&'static str> {
    let base = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix));
    listed.get(name).or_else(|| listed.get(base?)).copied()
}

fn listed() -> BTreeSet<&'static str> {
    scorekeeper_service::telemetry::metric_names().collect()
}

/// The metrics the rules and the dashboard name, as the service lists them;
/// fails on any it does not publish.
fn used_metrics() -> BTreeSet<&'static str> {
    let listed = listed();
    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for (file, exprs) in [(RULES, rule_expressions()), (DASHBOARD, dashboard_expressions())] {
        for name in named_metrics(&exprs) {
            match listed_name(&name, &listed) {
                Some(listed) => {
                    used.insert(listed);
                }
                None => unknown.push(format!("{file}: {name}")),
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics the service does not publish (scorekeeper_service::telemetry::metric_names):\n{}",
        unknown.join("\n")
    );
    used
}

#[test]
fn rules_and_dashboard_name_only_published_metrics() {
    let used = used_metrics();
    // The ones the issue asks the rules and dashboard to cover.
    for needed in [
        "scorekeeper_outbox_oldest_age_seconds",
        "scorekeeper_outbox_delivered_total",
        "scorekeeper_job_attempts_ended_total",
        "scorekeeper_audit_drifted_rows",
        "scorekeeper_schedule_failures_total",
        "scorekeeper_schedule_last_tick_timestamp_seconds",
        "scorekeeper_schedule_interval_seconds",
        "scorekeeper_clickhouse_insert_errors_total",
        "scorekeeper_clickhouse_rows_written_total",
        "scorekeeper_job_partitions_total",
        "scorekeeper_auth_failures_total",
    ] {
        assert!(used.contains(needed), "neither the rules nor the dashboard use {needed}");
    }
    for name in ONLY_ON_FAILURE {
        assert!(listed().contains(name), "{name} (ONLY_ON_FAILURE) is not a published metric");
    }
}

#[test]
fn the_name_scan_sees_renames_and_suffixes() {
    let listed = listed();
    let exprs = [r#"sum(rate(scorekeeper_outbox_delivered_totals[5m])) / scorekeeper_audit_seconds_count{quantile="0.5"}"#.to_owned()];
    let found: Vec<_> = named_metrics(&exprs).into_iter().map(|n| (listed_name(&n, &listed), n)).collect();
    assert_eq!(
        found,
        [
            (Some("scorekeeper_audit_seconds"), "scorekeeper_audit_seconds_count".to_owned()),
            (None, "scorekeeper_outbox_delivered_totals".to_owned()),
        ]
    );
}

/// Every alert has a runbook annotation pointing at its heading under
/// "### Alerts" in docs/operations.md, and that heading exists.
#[test]
fn every_alert_has_its_runbook_in_the_operations_doc() {
    let rules = read(RULES);
    let alerts = yaml_values(&rules, "alert");
    let runbooks: BTreeSet<String> = yaml_values(&rules, "runbook").into_iter().collect();
    let docs = read("docs/operations.md");
    let section = docs.split("\n### Alerts\n").nth(1).expect("docs/operations.md has a `### Alerts` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let headings: BTreeSet<&str> = section.lines().filter_map(|l| l.strip_prefix("#### ")).collect();
    assert!(alerts.len() >= 7, "found only {} alerts in {RULES}", alerts.len());
    for alert in &alerts {
        let anchor = format!("docs/operations.md#{}", alert.to_lowercase());
        assert!(runbooks.contains(&anchor), "{alert} has no `runbook: \"{anchor}\"` annotation");
        assert!(headings.contains(alert.as_str()), "docs/operations.md, Alerts: no `#### {alert}` heading");
    }
    assert_eq!(runbooks.len(), alerts.len(), "a runbook annotation names no alert of {RULES}: {runbooks:?}");
}

/// The metric names of a Prometheus text exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// A real `serve` that has done the work the metrics count (API writes
/// through its dispatcher, scheduled audits that find drift and repair it
/// with reindex jobs, and whose ticks set the schedule gauges, a refused
/// token, inserts ClickHouse refuses) shows
/// every metric the rules and the dashboard use on `/metrics`.
#[tokio::test]
async fn rule_and_dashboard_metrics_appear_on_a_serving_process() {
    let used = used_metrics();
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    // Rows in Postgres only: the audit finds them missing and repairs them.
    let bulk = env.store.ensure_customer("bulk").await.expect("a customer");
    bulk_import(&env.store, bulk, 20).await;
    let binary = scorekeeper_testbed::binary::serve_binary().expect("the scorekeeper binary");
    let process = serve(binary, &env)
        .env("AUDIT_SCHEDULE", "*/5 * * * * *")
        .env("AUDIT_REPAIR", "true")
        .start(Duration::from_secs(30))
        .await
        .expect("serve answers /health within 30 s");
    let port = process.http_port();

    let customer = env.customer_at("acme", &process.grpc_url()).await;
    let template = process_template(&customer).await;
    create_scorecard(&customer, process_scorecard(&template, "agent-1", Vec::new(), &[3.0])).await;
    let mut stranger = customer.clone();
    stranger.token = "not-a-token".into();
    let refused = stranger
        .scorecards()
        .create_scorecard(process_scorecard(&template, "agent-1", Vec::new(), &[3.0]))
        .await
        .expect_err("an unknown token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // An AutoQA call: whatever it answers (no such conversation), it counts.
    let request = v1::AutoscoreConversationsRequest { template_id: template.id, conversation_ids: vec![1] };
    let _ = customer.autoqa().autoscore_conversations(request).await;

    let missing = |metrics: &str, ignore: &[&str]| -> Vec<&'static str> {
        let exposed = exposed(metrics);
        let listed = listed();
        let shown: BTreeSet<_> = exposed.iter().filter_map(|n| listed_name(n, &listed)).collect();
        used.iter().copied().filter(|n| !shown.contains(n) && !ignore.contains(n)).collect()
    };
    let wait_until_shown = async |ignore: &[&str]| {
        let started = Instant::now();
        loop {
            let (code, metrics) = http_get(port, "/metrics").await.expect("/metrics answers");
            assert_eq!(code, 200, "{metrics}");
            let missing = missing(&metrics, ignore);
            if missing.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "not on /metrics after 90 s: {missing:?}\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    // Everything but the failure counters, from work that succeeds.
    let failures = ["scorekeeper_clickhouse_insert_errors_total", "scorekeeper_outbox_failures_total"];
    wait_until_shown(&[ONLY_ON_FAILURE, &failures].concat()).await;

    // ClickHouse refuses the dispatcher's next insert: its table is gone.
    env.clickhouse_client().query("DROP TABLE scorecards").execute().await.expect("dropping scorecards");
    // Postgres takes the write; the outbox keeps it.
    create_scorecard(&customer, process_scorecard(&template, "agent-2", Vec::new(), &[2.0])).await;
    wait_until_shown(ONLY_ON_FAILURE).await;
}
