//! The console in a real browser, as a person on call uses it: Debian's
//! Chromium, driven through ChromeDriver (WebDriver), against a real
//! `scorekeeper serve` on this test's databases. Log in with a token, watch
//! a running reindex's bars advance and cancel it, find injected drift on
//! the heat map (the right table and day, the right rows), repair it from
//! the page and see the re-audit clean, look at freshness and topology, and
//! see that a customer's token cannot open another customer's job by URL.
//!
//! Screenshots of every page go to `target/console-screenshots/` (CI keeps
//! them); with `SK_REFRESH_SCREENSHOTS=1` they also replace the ones in
//! `docs/console/` that the README links to.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use scorekeeper_proto::coaching::ScorecardTemplateType as Kind;
use scorekeeper_proto::v1::{JobState, ReindexConversationsPayload};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};
use scorekeeper_tests::jobs::{created, get_job, reindex_request, scorecard_types, state, wait_for};
use scorekeeper_tests::process::serve;
use serde_json::Value;

/// Longest wait for anything the page should show.
const WITHIN: Duration = Duration::from_secs(90);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root")
}

/// A headless Chromium session through a ChromeDriver of its own.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: TempDir,
    /// `http://127.0.0.1:<serve's HTTP port>`.
    base: String,
}

/// A directory removed when dropped (Chromium's profile).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    async fn start(http_port: u16, width: u32, height: u32) -> Browser {
        let port = scorekeeper_testbed::loopback::free_port().expect("a free port");
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "starting chromedriver: install Debian's `chromium` and `chromium-driver` \
                 (`scripts/stack up` does)",
            );
        let started = Instant::now();
        // Listening is enough: the session request below waits for it to be ready.
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = TempDir(std::env::temp_dir().join(format!("sk-console-chromium-{port}")));
        // Headless as root (CI), and none of Chromium's background
        // connections: this machine's network is closed.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.0.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");
        Browser { client, _driver: driver, _profile: profile, base: format!("http://127.0.0.1:{http_port}") }
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("navigating");
    }

    /// Runs `script` (a function body that `return`s) in the page.
    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns something other than `null`/`false`,
    /// and returns it.
    async fn wait(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js(script).await;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return value;
            }
            if started.elapsed() > WITHIN {
                let text = self.js("return document.body.innerText.slice(0, 3000)").await;
                self.shot("failed").await;
                panic!(
                    "the page did not show {what} within {WITHIN:?} (screenshot failed.png); it shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the element `css` names, once it is there. In the page, not
    /// through WebDriver's element handles: the pages re-render as they
    /// poll, and a handle found before a re-render is stale after it.
    async fn click(&self, css: &str) {
        let script = format!(
            "const e = document.querySelector({}); if (!e) return false; e.click(); return true",
            serde_json::to_string(css).unwrap()
        );
        self.wait(&format!("{css} to click"), &script).await;
    }

    async fn log_in(&self, token: &str) {
        self.client.delete_all_cookies().await.expect("clearing cookies");
        self.goto("/ui").await;
        let url = self.client.current_url().await.unwrap();
        assert_eq!(url.path(), "/ui/login", "a visitor without a session lands on the login page");
        self.client.find(Locator::Css("#token")).await.unwrap().send_keys(token).await.unwrap();
        self.click("#login").await;
        self.wait(
            "the app after logging in",
            "return document.querySelector('#whoami')?.textContent || null",
        )
        .await;
    }

    /// Saves a screenshot as `name`.png among the artifacts, and in docs/
    /// when asked to refresh those.
    async fn shot(&self, name: &str) {
        // Let the page settle (a poll, a chart's redraw).
        tokio::time::sleep(Duration::from_millis(700)).await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let artifacts = workspace().join("target/console-screenshots");
        std::fs::create_dir_all(&artifacts).unwrap();
        std::fs::write(artifacts.join(format!("{name}.png")), &png).unwrap();
        if std::env::var("SK_REFRESH_SCREENSHOTS").is_ok_and(|v| v == "1") {
            let docs = workspace().join("docs/console");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
        }
    }
}

/// A number from the page's JSON value (a `data-` attribute or text).
fn number(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or_default(),
        Value::String(s) => s.trim().parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
        other => panic!("not a number: {other}"),
    }
}

async fn clickhouse_ids(env: &TestEnv, query: &str) -> BTreeSet<i64> {
    env.clickhouse_client().query(query).fetch_all::<i64>().await.expect(query).into_iter().collect()
}

#[tokio::test]
async fn an_operator_watches_cancels_finds_drift_and_repairs_it_in_a_browser() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let binary = scorekeeper_testbed::binary::serve_binary().expect("the scorekeeper binary");
    let process = serve(binary, &env)
        // Small partitions and frequent checkpoints: a reindex of a few
        // thousand conversations shows many bars that move often.
        .env("REINDEX_PARTITION_ROWS", "2000")
        .env("REINDEX_WRITE_ROWS", "500")
        .start(Duration::from_secs(30))
        .await
        .expect("serve answers /health within 30 s");
    let acme = env.customer_at("acme", &process.grpc_url()).await;
    let beta = env.customer_at("beta", &process.grpc_url()).await;
    let ops = env.customer_at("ops", &process.grpc_url()).await;
    let admin = env.admin(&ops).await;
    let drifty = env.customer_at("drifty", &process.grpc_url()).await;
    bulk_import(&env.store, acme.id, 30_000).await;
    bulk_import(&env.store, drifty.id, 3_000).await;

    let browser = Browser::start(process.http_port(), 1280, 900).await;
    browser.goto("/ui/login").await;
    browser.shot("login").await;
    browser.log_in(&admin.token).await;

    // A running reindex: its bars advance, then it is cancelled from the page.
    let mut jobs = acme.jobs();
    let payload = ReindexConversationsPayload {
        customer_id: acme.id.0,
        conversations_batch_size: 5,
        process_scorecards_batch_size: 5,
        ..Default::default()
    };
    let job = created(&mut jobs, reindex_request(payload)).await;
    browser.goto(&format!("/ui#/jobs/{}", job.id)).await;
    let sum = "[...document.querySelectorAll('section.activity .bar')]
        .reduce((sum, bar) => sum + Number(bar.dataset.rowsDone || 0), 0)";
    let first = browser
        .wait("rows done on the job's bars", &format!("const n = {sum}; return n > 0 ? n : null"))
        .await;
    let first = number(&first);
    let later =
        browser.wait("the bars advancing", &format!("const n = {sum}; return n > {first} ? n : null")).await;
    let later = number(&later);
    assert!(later > first);
    browser.wait("partition bars", "return document.querySelectorAll('.partition').length > 1").await;
    browser.shot("job").await;
    browser.click("#cancel-job").await;
    browser
        .wait(
            "the job cancelled",
            "return document.querySelector('#job-state')?.textContent.trim() === 'cancelled'",
        )
        .await;
    assert_eq!(state(&get_job(&mut jobs, &job.id).await), JobState::Cancelled, "the API agrees");

    browser.goto("/ui#/jobs").await;
    let row = format!(
        "return !!document.querySelector('#jobs tr[data-job-id=\"{}\"][data-state=\"cancelled\"]')",
        job.id
    );
    browser.wait("the cancelled job in the list", &row).await;

    // Drift: drifty's world mirrored by a reindex, then some of its
    // conversations of 2026-01-02 deleted from ClickHouse only.
    let mut drifty_jobs = drifty.jobs();
    let mirror = created(
        &mut drifty_jobs,
        reindex_request(ReindexConversationsPayload {
            customer_id: drifty.id.0,
            reindex_scorecard_types: scorecard_types(&[Kind::Conversation, Kind::Process]),
            ..Default::default()
        }),
    )
    .await;
    wait_for(&mut drifty_jobs, &mirror.id, "the mirror", |j| state(j) == JobState::Succeeded).await;
    let day = "toDate(started_at) = '2026-01-02'";
    let doomed = clickhouse_ids(
        &env,
        &format!(
            "SELECT id FROM conversations FINAL WHERE customer_id = {} AND {day} AND id % 9 = 0",
            drifty.id
        ),
    )
    .await;
    assert!(doomed.len() > 50, "the world has conversations on 2026-01-02");
    env.clickhouse_delete("conversations", &format!("customer_id = {} AND {day} AND id % 9 = 0", drifty.id))
        .await;

    browser.goto("/ui#/drift").await;
    browser.wait("the audit form", "return !!document.querySelector('#run-audit')").await;
    browser
        .js(&format!("document.querySelector('#audit-customer').value = '{}'; return true", drifty.id.0))
        .await;
    browser.click("#run-audit").await;
    let audit_id = browser
        .wait(
            "the audit that found drift",
            &format!(
                "const r = [...document.querySelectorAll('#audits tr[data-audit-id]')]
                   .find(r => Number(r.dataset.drifted) === {} && r.dataset.phase === 'audit');
                 return r ? r.dataset.auditId : null",
                doomed.len()
            ),
        )
        .await;
    let audit_id = number(&audit_id);
    browser.goto(&format!("/ui#/drift/{audit_id}")).await;
    let marked = browser
        .wait(
            "the heat map",
            "const cells = [...document.querySelectorAll('#heatmap .cell')];
             if (cells.length === 0) return null;
             return cells.filter(c => Number(c.dataset.drifted) > 0)
                         .map(c => [c.dataset.table, c.dataset.day, Number(c.dataset.drifted)]);",
        )
        .await;
    assert_eq!(
        marked,
        serde_json::json!([["conversations", "2026-01-02", doomed.len()]]),
        "exactly the table and day that lost rows are marked"
    );
    browser.click("#heatmap .cell[data-table='conversations'][data-day='2026-01-02']").await;
    let listed = browser
        .wait(
            "the drifted rows of the cell",
            "const rows = [...document.querySelectorAll('#drifted-rows tr[data-row-id]')];
             return rows.length ? rows.map(r => Number(r.dataset.rowId)) : null",
        )
        .await;
    let listed: BTreeSet<i64> = serde_json::from_value(listed).unwrap();
    assert_eq!(listed, doomed, "the cell lists the deleted rows");
    browser.shot("drift").await;

    browser.click("#repair").await;
    browser
        .wait(
            "the re-audit after the repair, clean",
            &format!(
                "const m = location.hash.match(/^#\\/drift\\/(\\d+)$/);
                 const shown = document.querySelector('#audit-drifted');
                 return m && Number(m[1]) !== {audit_id} && shown && shown.textContent.trim() === '0'"
            ),
        )
        .await;
    let back = clickhouse_ids(
        &env,
        &format!(
            "SELECT id FROM conversations FINAL WHERE customer_id = {} AND {day} AND id % 9 = 0",
            drifty.id
        ),
    )
    .await;
    assert_eq!(back, doomed, "the repair wrote the rows back");
    browser.shot("drift-repaired").await;

    // Freshness and topology.
    browser.goto("/ui#/freshness").await;
    browser
        .wait(
            "the reindex path's last write",
            "const r = document.querySelector('#paths tr.path[data-path=\"reindex\"]');
             return r && !/never/.test(r.textContent)",
        )
        .await;
    browser
        .wait(
            "the outbox depth",
            "return document.querySelector('#outbox-depth')?.textContent.trim() === '0'",
        )
        .await;
    browser.shot("freshness").await;
    browser.goto("/ui#/topology").await;
    browser
        .wait(
            "both servers up",
            "return document.querySelector('#pg-status')?.dataset.up === 'true'
                 && document.querySelector('#ch-status')?.dataset.up === 'true'",
        )
        .await;
    browser.shot("topology").await;
    browser.goto("/ui#/jobs").await;
    browser
        .wait(
            "every job in the list",
            "return document.querySelectorAll('#jobs tr[data-job-id]').length >= 4",
        )
        .await;
    browser.shot("jobs").await;

    // A customer token cannot open another customer's job by its URL.
    browser.log_in(&beta.token).await;
    browser.goto(&format!("/ui#/jobs/{}", job.id)).await;
    let refused = browser
        .wait(
            "the refusal",
            "const e = document.querySelector('#error');
             return e && e.offsetParent !== null && e.textContent.trim() ? e.textContent : null",
        )
        .await;
    assert!(refused.as_str().is_some_and(|t| t.contains("not found")), "{refused}");
    browser.goto("/ui#/jobs").await;
    browser.wait("beta's jobs list", "return !!document.querySelector('#jobs')").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let visible = browser
        .js("return [...document.querySelectorAll('#jobs tr[data-job-id]')].map(r => r.dataset.jobId)")
        .await;
    assert_eq!(visible, serde_json::json!([]), "beta sees none of acme's or drifty's jobs");

    // The jobs list on a phone.
    let phone = Browser::start(process.http_port(), 390, 844).await;
    phone.log_in(&admin.token).await;
    phone.goto("/ui#/jobs").await;
    phone.wait("the jobs list", "return document.querySelectorAll('#jobs tr[data-job-id]').length > 1").await;
    phone.shot("jobs-phone").await;
}
