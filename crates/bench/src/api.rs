//! `scorekeeper-bench api`: CreateScorecard load through gRPC against a
//! `scorekeeper serve` child on the bench's own databases, with Postgres at
//! whatever durability the server runs (shown, never changed).
//!
//! `--concurrency` tasks, each on its own connection, issue CreateScorecard
//! (10 scores each, conversation and process scorecards mixed) back to back
//! for `--warmup` and then `--duration`. Only calls started after the
//! warm-up count. A watcher polls ClickHouse's `scorecards` table for the
//! ids the API acknowledged and records, per scorecard, the time from the
//! API's OK to the first poll that saw the row: the visibility lag, an upper
//! bound by at most one poll interval plus the query. A scorecard that is
//! not visible within `--visibility-timeout` after the load ends fails the
//! bench, after the figures are printed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scorekeeper_client::channel::connect;
use scorekeeper_client::{Authed, BearerToken};
use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::coaching::{
    CreateScorecardRequest, CreateScorecardTemplateRequest, Criterion, Score, ScorecardTemplateType,
};
use scorekeeper_proto::v1::conversation_service_client::ConversationServiceClient;
use scorekeeper_proto::v1::{Conversation, Message, Speaker, UpsertConversationsRequest};
use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};
use serde::Serialize;
use tokio::sync::mpsc;

use super::cpu::{CpuSample, CpuUse};
use super::report;
use super::stack::{BenchDatabases, ServeProcess};

#[derive(Args)]
pub struct ApiBenchArgs {
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    /// How long to measure, after the warm-up, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before measuring (connections, caches, the dispatcher's pace); not counted.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Calls in flight at once, each task on its own connection.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Process scorecards, in per cent of the creates; the rest are conversation scorecards.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    process_percent: u32,
    /// Conversations the scorecards are written for.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=500))]
    conversations: u32,
    /// How often the watcher asks ClickHouse which acknowledged scorecards it has.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// How long after the load every acknowledged scorecard must be visible in ClickHouse.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    visibility_timeout: Duration,
    /// Also write the figures as JSON to this file (`-` for standard output).
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Scores per scorecard, and criteria per template (every criterion scored).
const SCORES_PER_SCORECARD: usize = 10;
/// Agents the process scorecards are spread over.
const AGENTS: usize = 20;
/// Per-call timeout of the load; a slower call counts as failed (DEADLINE_EXCEEDED).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The targets of the API path (BENCHMARKS.md, "API (scorekeeper-bench api)"), on a 2-core machine.
const TARGET_CREATES_PER_S: f64 = 1000.0;
const TARGET_LATENCY_P99_MS: f64 = 50.0;
const TARGET_VISIBILITY_LAG_P99_MS: f64 = 1000.0;

/// Everything the bench measured, as `--json` writes it.
#[derive(Serialize)]
struct Figures {
    creates_per_s: f64,
    latency_p50_ms: f64,
    latency_p90_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    visibility_lag_p50_ms: f64,
    visibility_lag_p99_ms: f64,
    visibility_lag_max_ms: f64,
    /// Acknowledged creates started in the measured window.
    requests_ok: u64,
    requests_failed: u64,
    /// Failed calls of the measured window by gRPC code.
    failed_by_code: BTreeMap<String, u64>,
    /// Creates acknowledged during the warm-up (not in the figures above).
    warmup_requests_ok: u64,
    /// Acknowledged scorecards (warm-up included) ClickHouse had when the bench ended.
    scorecards_visible: u64,
    /// Acknowledged scorecards ClickHouse still lacked after `visibility_timeout_s`.
    scorecards_not_visible: u64,
    /// The customer's scorecards in Postgres after the run: must equal every OK.
    scorecards_in_postgres: i64,
    conversation_scorecards: u64,
    process_scorecards: u64,
    concurrency: u32,
    duration_s: f64,
    warmup_s: f64,
    poll_interval_ms: f64,
    visibility_timeout_s: f64,
    postgres_fsync: String,
    postgres_synchronous_commit: String,
    postgres_wal_sync_method: String,
    serve_peak_rss_mb: f64,
    /// CPU seconds of the measured window by process (the worker is the
    /// `serve` process; bench is this client).
    cpu: CpuUse,
    /// Those seconds over the creates acknowledged in the window.
    cpu_ms_per_create: f64,
    machine: Machine,
    targets: Targets,
}

#[derive(Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
    memory_gib: f64,
}

#[derive(Serialize)]
struct Targets {
    creates_per_s_min: f64,
    latency_p99_ms_max: f64,
    visibility_lag_p99_ms_max: f64,
    creates_per_s_met: bool,
    latency_p99_met: bool,
    visibility_lag_p99_met: bool,
}

pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    ensure!(!args.duration.is_zero(), "--duration must be longer than zero");
    ensure!(!args.poll_interval.is_zero(), "--poll-interval must be longer than zero");
    let databases = BenchDatabases::prepare(&args.postgres, &args.clickhouse, "api").await?;
    let durability = durability(&databases).await?;
    // A customer of its own per run, so the watcher and the checks see only
    // this run's rows even when the bench database holds earlier ones.
    let customer_name = format!("bench-api-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"));
    let customer = databases.store.ensure_customer(&customer_name).await?;
    let token = databases.store.create_token(customer, false, "bench api").await?;
    let serve = ServeProcess::start(&databases, &[]).await?;
    eprintln!(
        "bench api: serve at {}, customer {customer_name} (id {customer}); Postgres fsync={} synchronous_commit={}",
        serve.grpc_url, durability.fsync, durability.synchronous_commit
    );

    let bearer = BearerToken::new(&token)?;
    let channel = connect(&serve.grpc_url, CALL_TIMEOUT).await?;
    let world = World::create(channel, bearer.clone(), args.conversations as usize).await?;

    let (acked_tx, acked_rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch_visibility(
        databases.clickhouse_client.clone(),
        customer.0,
        acked_rx,
        args.poll_interval,
        args.visibility_timeout,
    ));
    eprintln!(
        "bench api: {} tasks, {:?} warm-up, then {:?} measured",
        args.concurrency, args.warmup, args.duration
    );
    let started = Instant::now();
    let measure_from = started + args.warmup;
    let measure_until = measure_from + args.duration;
    // CPU by process over the measured window, sampled beside the load.
    let serve_pid = serve.pid();
    let cpu_window = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let from = CpuSample::now(serve_pid.as_slice());
        tokio::time::sleep_until(measure_until.into()).await;
        CpuSample::now(serve_pid.as_slice()).since(&from)
    });
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.concurrency {
        let channel = connect(&serve.grpc_url, CALL_TIMEOUT).await?;
        let client = ScorecardServiceClient::with_interceptor(channel, bearer.clone());
        let load = Load {
            client,
            world: world.clone(),
            rng: StdRng::seed_from_u64(u64::from(index) + 1),
            process_percent: args.process_percent,
            measure_from,
            measure_until,
            acked: acked_tx.clone(),
        };
        tasks.spawn(load.run());
    }
    drop(acked_tx);
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        tally.merge(done.context("a load task panicked")?);
    }
    let load_ended = Instant::now();
    let cpu = cpu_window.await.context("the CPU sampler panicked")?;
    eprintln!("bench api: load done ({} OK, {} failed); waiting for ClickHouse", tally.ok, tally.failed);
    let watched = watcher.await.context("the visibility watcher panicked")??;
    let serve_peak_rss_mb = serve.peak_rss_mb()?;
    serve.stop().await;
    let scorecards_in_postgres = customer_scorecards(&databases, customer.0).await?;

    // The measured window ends when its last call returned.
    let measured_s = tally.last_done.map_or(args.duration, |t| t.saturating_duration_since(measure_from));
    let measured_s = measured_s.as_secs_f64().max(f64::EPSILON);
    tally.latencies_us.sort_unstable();
    let mut lags_us = watched.lags_us.clone();
    lags_us.sort_unstable();
    let creates_per_s = tally.ok as f64 / measured_s;
    let latency_p99_ms = percentile_ms(&tally.latencies_us, 0.99);
    let visibility_lag_p99_ms = percentile_ms(&lags_us, 0.99);
    let figures = Figures {
        creates_per_s,
        latency_p50_ms: percentile_ms(&tally.latencies_us, 0.50),
        latency_p90_ms: percentile_ms(&tally.latencies_us, 0.90),
        latency_p99_ms,
        latency_max_ms: percentile_ms(&tally.latencies_us, 1.0),
        visibility_lag_p50_ms: percentile_ms(&lags_us, 0.50),
        visibility_lag_p99_ms,
        visibility_lag_max_ms: percentile_ms(&lags_us, 1.0),
        requests_ok: tally.ok,
        requests_failed: tally.failed,
        failed_by_code: tally.failed_by_code.clone(),
        warmup_requests_ok: tally.warmup_ok,
        scorecards_visible: watched.visible,
        scorecards_not_visible: watched.not_visible.len() as u64,
        scorecards_in_postgres,
        conversation_scorecards: tally.conversation_scorecards,
        process_scorecards: tally.process_scorecards,
        concurrency: args.concurrency,
        duration_s: measured_s,
        warmup_s: args.warmup.as_secs_f64(),
        poll_interval_ms: args.poll_interval.as_secs_f64() * 1000.0,
        visibility_timeout_s: args.visibility_timeout.as_secs_f64(),
        postgres_fsync: durability.fsync.clone(),
        postgres_synchronous_commit: durability.synchronous_commit.clone(),
        postgres_wal_sync_method: durability.wal_sync_method.clone(),
        serve_peak_rss_mb,
        cpu,
        cpu_ms_per_create: cpu.total() * 1000.0 / (tally.ok.max(1) as f64),
        machine: machine(),
        targets: Targets {
            creates_per_s_min: TARGET_CREATES_PER_S,
            latency_p99_ms_max: TARGET_LATENCY_P99_MS,
            visibility_lag_p99_ms_max: TARGET_VISIBILITY_LAG_P99_MS,
            creates_per_s_met: creates_per_s >= TARGET_CREATES_PER_S,
            latency_p99_met: !tally.latencies_us.is_empty() && latency_p99_ms <= TARGET_LATENCY_P99_MS,
            visibility_lag_p99_met: !lags_us.is_empty()
                && watched.not_visible.is_empty()
                && visibility_lag_p99_ms <= TARGET_VISIBILITY_LAG_P99_MS,
        },
    };
    print_figures(&figures, &tally, load_ended.duration_since(started));
    if let Some(path) = &args.json {
        report::write_json(path, &figures)?;
    }

    if !watched.not_visible.is_empty() {
        let some: Vec<String> = watched.not_visible.iter().take(10).map(i64::to_string).collect();
        bail!(
            "{} acknowledged scorecards never became visible in ClickHouse within {:?} after the load (ids {}{})",
            watched.not_visible.len(),
            args.visibility_timeout,
            some.join(", "),
            if watched.not_visible.len() > some.len() { ", …" } else { "" }
        );
    }
    let acknowledged = tally.ok + tally.warmup_ok;
    ensure!(
        scorecards_in_postgres == acknowledged as i64,
        "Postgres holds {scorecards_in_postgres} scorecards of the bench customer, but the API acknowledged {acknowledged}"
    );
    ensure!(tally.ok > 0, "no CreateScorecard call succeeded in the measured window");
    Ok(())
}

// ---------------------------------------------------------------------------
// Setup: templates and conversations, through the API as a client would.

/// What the load writes scorecards against. Cheap to clone.
#[derive(Clone)]
struct World {
    conversation_template: BenchTemplate,
    process_template: BenchTemplate,
    conversations: std::sync::Arc<Vec<i64>>,
}

#[derive(Clone)]
struct BenchTemplate {
    id: i64,
    criteria: Vec<i64>,
}

impl World {
    async fn create(
        channel: tonic::transport::Channel,
        bearer: BearerToken,
        conversations: usize,
    ) -> anyhow::Result<World> {
        let mut scorecards = ScorecardServiceClient::with_interceptor(channel.clone(), bearer.clone());
        let conversation_template =
            create_template(&mut scorecards, "Call quality (bench)", ScorecardTemplateType::Conversation)
                .await?;
        let process_template =
            create_template(&mut scorecards, "Case handling (bench)", ScorecardTemplateType::Process).await?;
        let mut client = ConversationServiceClient::with_interceptor(channel, bearer);
        let now = chrono::Utc::now().timestamp();
        let batch: Vec<Conversation> = (0..conversations)
            .map(|n| {
                let started = now - 3600 - n as i64 * 60;
                let at = |seconds: i64| prost_types::Timestamp { seconds, nanos: 0 };
                let message = |speaker: Speaker, text: &str, offset_ms| Message {
                    speaker: speaker as i32,
                    text: text.to_owned(),
                    offset_ms,
                };
                Conversation {
                    external_id: format!("bench-call-{n:06}"),
                    agent_id: agent(n),
                    started_at: Some(at(started)),
                    ended_at: Some(at(started + 300)),
                    messages: vec![
                        message(Speaker::Agent, "Thank you for calling, how can I help?", 0),
                        message(Speaker::Customer, "My order has not arrived.", 4_000),
                    ],
                    ..Default::default()
                }
            })
            .collect();
        let stored = client
            .upsert_conversations(UpsertConversationsRequest { conversations: batch })
            .await
            .map_err(|s| anyhow::anyhow!("UpsertConversations: {}", describe(&s)))?
            .into_inner();
        ensure!(stored.conversations.len() == conversations, "UpsertConversations stored too few");
        Ok(World {
            conversation_template,
            process_template,
            conversations: std::sync::Arc::new(stored.conversations.iter().map(|c| c.id).collect()),
        })
    }
}

fn agent(n: usize) -> String {
    format!("agent-{:02}", n % AGENTS + 1)
}

async fn create_template(
    client: &mut ScorecardServiceClient<Authed>,
    name: &str,
    template_type: ScorecardTemplateType,
) -> anyhow::Result<BenchTemplate> {
    let criteria = (1..=SCORES_PER_SCORECARD)
        .map(|n| Criterion {
            name: format!("Criterion {n}"),
            weight: n as f64,
            min_value: 0.0,
            max_value: 5.0,
            ..Default::default()
        })
        .collect();
    let template = client
        .create_scorecard_template(CreateScorecardTemplateRequest {
            name: name.to_owned(),
            template_type: template_type as i32,
            criteria,
        })
        .await
        .map_err(|s| anyhow::anyhow!("CreateScorecardTemplate: {}", describe(&s)))?
        .into_inner()
        .template
        .context("CreateScorecardTemplate returned no template")?;
    Ok(BenchTemplate { id: template.id, criteria: template.criteria.iter().map(|c| c.id).collect() })
}

fn describe(status: &tonic::Status) -> String {
    format!("gRPC status {:?}: {}", status.code(), status.message())
}

// ---------------------------------------------------------------------------
// The load.

/// A scorecard the API acknowledged: when, and whether it counts.
struct Acked {
    id: i64,
    at: Instant,
    measured: bool,
}

/// One task issuing CreateScorecard back to back on its own connection.
struct Load {
    client: ScorecardServiceClient<Authed>,
    world: World,
    rng: StdRng,
    process_percent: u32,
    measure_from: Instant,
    measure_until: Instant,
    acked: mpsc::UnboundedSender<Acked>,
}

/// What the load tasks saw; merged over tasks.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    warmup_ok: u64,
    failed_by_code: BTreeMap<String, u64>,
    /// The first message of each failure code, to show what went wrong.
    failure_examples: BTreeMap<String, String>,
    latencies_us: Vec<u64>,
    conversation_scorecards: u64,
    process_scorecards: u64,
    /// When the last measured call returned.
    last_done: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.warmup_ok += other.warmup_ok;
        for (code, count) in other.failed_by_code {
            *self.failed_by_code.entry(code).or_default() += count;
        }
        for (code, example) in other.failure_examples {
            self.failure_examples.entry(code).or_insert(example);
        }
        self.latencies_us.extend(other.latencies_us);
        self.conversation_scorecards += other.conversation_scorecards;
        self.process_scorecards += other.process_scorecards;
        self.last_done = self.last_done.max(other.last_done);
    }
}

impl Load {
    async fn run(mut self) -> Tally {
        let mut tally = Tally::default();
        loop {
            let started = Instant::now();
            if started >= self.measure_until {
                return tally;
            }
            let measured = started >= self.measure_from;
            let process = self.rng.random_range(0..100) < self.process_percent;
            let request = self.request(process);
            let outcome = self.client.create_scorecard(request).await;
            let done = Instant::now();
            match outcome {
                Ok(response) => {
                    let Some(scorecard) = response.into_inner().scorecard else {
                        // An OK without the scorecard breaks the API's contract.
                        if measured {
                            tally.failed += 1;
                            *tally.failed_by_code.entry("OkWithoutScorecard".into()).or_default() += 1;
                        }
                        continue;
                    };
                    let _ = self.acked.send(Acked { id: scorecard.id, at: done, measured });
                    if measured {
                        tally.ok += 1;
                        tally.latencies_us.push(done.duration_since(started).as_micros() as u64);
                        tally.last_done = Some(done);
                        if process {
                            tally.process_scorecards += 1;
                        } else {
                            tally.conversation_scorecards += 1;
                        }
                    } else {
                        tally.warmup_ok += 1;
                    }
                }
                Err(status) => {
                    let code = format!("{:?}", status.code());
                    tally.failure_examples.entry(code.clone()).or_insert_with(|| status.message().to_owned());
                    if measured {
                        tally.failed += 1;
                        tally.last_done = Some(done);
                        *tally.failed_by_code.entry(code).or_default() += 1;
                    }
                }
            }
        }
    }

    fn request(&mut self, process: bool) -> CreateScorecardRequest {
        let conversations = &self.world.conversations;
        let pick = |rng: &mut StdRng| rng.random_range(0..conversations.len());
        let template = if process { &self.world.process_template } else { &self.world.conversation_template };
        let scores = template
            .criteria
            .iter()
            .map(|&criterion_id| Score { criterion_id, value: f64::from(self.rng.random_range(0..=5u8)) })
            .collect();
        if process {
            let first = pick(&mut self.rng);
            let mut linked = vec![conversations[first]];
            let second = pick(&mut self.rng);
            if second != first && self.rng.random_bool(0.5) {
                linked.push(conversations[second]);
            }
            CreateScorecardRequest {
                template_id: template.id,
                agent_id: agent(first),
                linked_conversation_ids: linked,
                scores,
                ..Default::default()
            }
        } else {
            CreateScorecardRequest {
                template_id: template.id,
                conversation_id: conversations[pick(&mut self.rng)],
                scores,
                ..Default::default()
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Visibility in ClickHouse.

struct Watched {
    /// Lags of the measured scorecards, in microseconds.
    lags_us: Vec<u64>,
    /// Acknowledged scorecards seen, warm-up included.
    visible: u64,
    /// Acknowledged scorecards never seen, by id.
    not_visible: Vec<i64>,
}

/// Polls ClickHouse every `interval` for the acknowledged scorecards not yet
/// seen, until every one is seen, or `timeout` after the load ended.
///
/// Ids come from one Postgres sequence but commit out of order, so each
/// poll asks for the customer's rows from the smallest id still awaited:
/// a row that became visible before its OK arrived is still found.
async fn watch_visibility(
    client: clickhouse::Client,
    customer_id: i64,
    mut acked: mpsc::UnboundedReceiver<Acked>,
    interval: Duration,
    timeout: Duration,
) -> anyhow::Result<Watched> {
    let mut pending: HashMap<i64, (Instant, bool)> = HashMap::new();
    let mut watched = Watched { lags_us: Vec::new(), visible: 0, not_visible: Vec::new() };
    let mut load_ended: Option<Instant> = None;
    let mut last_error: Option<String> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        loop {
            match acked.try_recv() {
                Ok(a) => {
                    pending.insert(a.id, (a.at, a.measured));
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    load_ended.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if let Some(&from) = pending.keys().min() {
            let seen = client
                .query("SELECT id FROM scorecards WHERE customer_id = ? AND id >= ?")
                .bind(customer_id)
                .bind(from)
                .fetch_all::<i64>()
                .await;
            let now = Instant::now();
            match seen {
                Ok(ids) => {
                    for id in ids {
                        if let Some((at, measured)) = pending.remove(&id) {
                            watched.visible += 1;
                            if measured {
                                watched.lags_us.push(now.saturating_duration_since(at).as_micros() as u64);
                            }
                        }
                    }
                }
                Err(error) => last_error = Some(error.to_string()),
            }
        }
        if let Some(ended) = load_ended {
            if pending.is_empty() {
                return Ok(watched);
            }
            if ended.elapsed() > timeout {
                if let Some(error) = &last_error {
                    eprintln!("bench api: the last ClickHouse poll failed: {error}");
                }
                watched.not_visible = pending.into_keys().collect();
                watched.not_visible.sort_unstable();
                return Ok(watched);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Postgres, the machine, and the report.

struct Durability {
    fsync: String,
    synchronous_commit: String,
    wal_sync_method: String,
}

/// The durability settings as the bench database's sessions see them.
async fn durability(databases: &BenchDatabases) -> anyhow::Result<Durability> {
    let client = databases.store.pool().get().await?;
    let mut shown = Vec::new();
    for setting in ["fsync", "synchronous_commit", "wal_sync_method"] {
        let row = client.query_one(&format!("SHOW {setting}"), &[]).await?;
        shown.push(row.try_get::<_, String>(0)?);
    }
    let [fsync, synchronous_commit, wal_sync_method] =
        <[String; 3]>::try_from(shown).expect("three settings");
    Ok(Durability { fsync, synchronous_commit, wal_sync_method })
}

async fn customer_scorecards(databases: &BenchDatabases, customer_id: i64) -> anyhow::Result<i64> {
    let client = databases.store.pool().get().await?;
    let row =
        client.query_one("SELECT count(*) FROM scorecards WHERE customer_id = $1", &[&customer_id]).await?;
    Ok(row.try_get(0)?)
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
    }
}

/// The `p` quantile (nearest rank) of sorted microseconds, in milliseconds;
/// 0 when there are none.
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

fn print_figures(f: &Figures, tally: &Tally, load_took: Duration) {
    let failed = if f.failed_by_code.is_empty() {
        "0".to_owned()
    } else {
        let by_code: Vec<String> = f.failed_by_code.iter().map(|(c, n)| format!("{c} {n}")).collect();
        format!("{} ({})", f.requests_failed, by_code.join(", "))
    };
    let m = &f.machine;
    report::print_table(
        "bench api: CreateScorecard through gRPC",
        &[
            ("machine", format!("{} cores ({}), {} GiB", m.cores, m.cpu, m.memory_gib)),
            (
                "Postgres",
                format!(
                    "fsync={} synchronous_commit={} wal_sync_method={}",
                    f.postgres_fsync, f.postgres_synchronous_commit, f.postgres_wal_sync_method
                ),
            ),
            ("concurrency", format!("{} tasks, one connection each", f.concurrency)),
            (
                "measured",
                format!(
                    "{:.1} s after {:.1} s warm-up ({:.1?} of load)",
                    f.duration_s, f.warmup_s, load_took
                ),
            ),
            (
                "mix",
                format!(
                    "{} conversation + {} process scorecards, {SCORES_PER_SCORECARD} scores each",
                    f.conversation_scorecards, f.process_scorecards
                ),
            ),
            ("requests ok", f.requests_ok.to_string()),
            ("requests failed", failed),
            ("throughput", format!("{:.0} creates/s", f.creates_per_s)),
            (
                "latency",
                format!(
                    "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                    f.latency_p50_ms, f.latency_p90_ms, f.latency_p99_ms, f.latency_max_ms
                ),
            ),
            (
                "visibility lag",
                format!(
                    "p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms  (API OK → row in ClickHouse, polled every {:.0} ms)",
                    f.visibility_lag_p50_ms,
                    f.visibility_lag_p99_ms,
                    f.visibility_lag_max_ms,
                    f.poll_interval_ms
                ),
            ),
            (
                "visible in ClickHouse",
                format!(
                    "{} of {} acknowledged (warm-up included); {} missing after {:.0} s",
                    f.scorecards_visible,
                    f.requests_ok + f.warmup_requests_ok,
                    f.scorecards_not_visible,
                    f.visibility_timeout_s
                ),
            ),
            ("in Postgres", format!("{} scorecards of the bench customer", f.scorecards_in_postgres)),
            ("serve peak RSS", format!("{:.0} MiB", f.serve_peak_rss_mb)),
            (
                "cpu (window)",
                format!("{}, {:.2} ms per create (worker: serve)", f.cpu.describe(), f.cpu_ms_per_create),
            ),
        ],
    );
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let t = &f.targets;
    report::print_table(
        "targets (2-core machine, local servers)",
        &[
            ("≥ 1,000 creates/s", format!("{:.0} creates/s   {}", f.creates_per_s, met(t.creates_per_s_met))),
            ("p99 ≤ 50 ms", format!("{:.1} ms   {}", f.latency_p99_ms, met(t.latency_p99_met))),
            (
                "visibility lag p99 ≤ 1 s",
                format!("{:.0} ms   {}", f.visibility_lag_p99_ms, met(t.visibility_lag_p99_met)),
            ),
        ],
    );
    for (code, example) in &tally.failure_examples {
        println!("  first {code}: {example}");
    }
}
