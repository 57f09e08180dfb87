//! `scorekeeper serve`: the service (`scorekeeper_service`: gRPC API,
//! outbox dispatcher, job worker, schedulers) from the command line's
//! settings, each part switchable so API nodes and worker nodes can be
//! scaled apart, plus what only the binary has: migrations at start, the
//! metrics recorder and the HTTP port (`/metrics`, `/health`, the console
//! under `/ui`). Both ports
//! serve TLS only when `--tls-cert`/`--tls-key` are given (`crate::tls`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::get;
use clap::Args;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use scorekeeper_api::health::Dependencies;
use scorekeeper_console::{Console, Freshness};
use scorekeeper_jobs::WorkerConfig;
use scorekeeper_service::{AutoQaSettings, Parts, Service, TenantLimits};
use scorekeeper_sync::audit::schedule::AuditScheduleSettings;
use scorekeeper_sync::outbox::DispatcherConfig;
use scorekeeper_sync::reindex::ReindexSettings;
use scorekeeper_sync::reindex::schedule::ReindexScheduleSettings;
use tokio::sync::watch;

use crate::settings::{ClickHouseArgs, PostgresArgs};
use crate::tls::ServerTls;
use crate::tls_listener::{TlsListener, TlsPeer};

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
    /// gRPC listen address.
    #[arg(long, env = "SK_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// HTTP listen address for /metrics, /health and the console (/ui).
    #[arg(long, env = "SK_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    http_addr: SocketAddr,
    /// Seconds a console session lasts after logging in.
    #[arg(long, env = "CONSOLE_SESSION_SECONDS", default_value_t = 8 * 3600, value_parser = clap::value_parser!(u64).range(60..=30 * 86_400))]
    console_session_seconds: u64,
    /// PEM certificate chain: with --tls-key, the gRPC and HTTP ports serve
    /// TLS only. Unset (with --tls-key unset): both plain.
    #[arg(long, env = "SK_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SK_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Do not serve the gRPC API (a worker-only node).
    #[arg(long, env = "SK_NO_API")]
    no_api: bool,
    /// Do not run the outbox dispatcher (an API-only node; another node must run one).
    #[arg(long, env = "SK_NO_DISPATCHER")]
    no_dispatcher: bool,
    /// Do not run job workers (reindex jobs) in this process.
    #[arg(long, env = "SK_NO_WORKER")]
    no_worker: bool,
    /// Claims this process runs at once: job attempts and partitions of
    /// jobs (a job's attempt runs one of its partitions at a time).
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    worker_concurrency: u32,
    /// Seconds a worker's claim on a job or a partition lasts without a
    /// heartbeat; a killed worker's job or partition is taken over after this.
    #[arg(long, env = "JOB_LEASE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    job_lease_seconds: u64,
    /// Conversations per reindex batch (a job's payload may override it).
    #[arg(long, env = "REINDEX_CONVERSATIONS_BATCH_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    reindex_conversations_batch_size: u32,
    /// Process scorecards per reindex batch (a job's payload may override it).
    #[arg(long, env = "REINDEX_PROCESS_SCORECARDS_BATCH_SIZE", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    reindex_process_scorecards_batch_size: u32,
    /// Rows a reindex activity streams into one ClickHouse insert per table
    /// before it ends them and commits its checkpoint (also every 5 s).
    #[arg(long, env = "REINDEX_WRITE_ROWS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    reindex_write_rows: u32,
    /// Rows a reindex partition aims at: an activity of a scope by start
    /// time is split into key ranges of about this many rows (by its
    /// estimate), which workers of every process claim.
    #[arg(long, env = "REINDEX_PARTITION_ROWS", default_value_t = 500_000, value_parser = clap::value_parser!(u32).range(1_000..=100_000_000))]
    reindex_partition_rows: u32,
    /// Do not run the schedulers (reindex, audit) in this process (others may).
    #[arg(long, env = "SK_NO_SCHEDULER")]
    no_scheduler: bool,
    /// When to create a scheduled reindex job: a cron expression of 5 fields
    /// (minute first) or 6 (second first), UTC. Unset: no scheduled reindex.
    #[arg(long, env = "REINDEX_SCHEDULE")]
    reindex_schedule: Option<String>,
    /// What the scheduled reindex covers: conversation, process or all.
    #[arg(long, env = "REINDEX_MODE", default_value = "all")]
    reindex_mode: String,
    /// How far back a scheduled reindex looks, before the previous tick
    /// (rows updated since then are copied), e.g. 24h.
    #[arg(long, env = "REINDEX_LOOKBACK", default_value = "24h")]
    reindex_lookback: String,
    /// When to queue a drift audit job of all customers: cron, 5 fields
    /// (minute first) or 6 (second first), UTC. Unset: no scheduled audit.
    #[arg(long, env = "AUDIT_SCHEDULE")]
    audit_schedule: Option<String>,
    /// What a scheduled audit covers: rows whose bucket time (conversation
    /// start, scorecard creation) lies within this span before the tick,
    /// e.g. 7days. Unset: all time.
    #[arg(long, env = "AUDIT_LOOKBACK")]
    audit_lookback: Option<String>,
    /// Scheduled audits also repair what they find (reindex jobs,
    /// tombstones) and audit again.
    #[arg(long, env = "AUDIT_REPAIR")]
    audit_repair: bool,
    /// Do not apply migrations at start.
    #[arg(long, env = "SK_NO_MIGRATE")]
    no_migrate: bool,
    /// Scorecards written to ClickHouse per outbox batch.
    #[arg(long, env = "OUTBOX_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    outbox_batch_size: u32,
    /// Outbox batches delivered at once by this process's dispatcher.
    #[arg(long, env = "OUTBOX_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    outbox_concurrency: u32,
    /// Outbox poll interval in milliseconds (notifications usually wake it sooner).
    #[arg(long, env = "OUTBOX_POLL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    outbox_poll_ms: u64,
    /// Threads that score AutoQA calls (default: half the cores, at least 1).
    #[arg(long, env = "AUTOQA_THREADS", value_parser = clap::value_parser!(u32).range(1..=256))]
    autoqa_threads: Option<u32>,
    /// AutoscoreConversations calls this process runs at once; more are refused.
    #[arg(long, env = "AUTOQA_MAX_CALLS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    autoqa_max_calls: u32,
    /// AutoscoreConversations calls one customer runs at once; more are refused.
    #[arg(long, env = "AUTOQA_MAX_CALLS_PER_CUSTOMER", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    autoqa_max_calls_per_customer: u32,
    /// Seconds one AutoscoreConversations call may score before it is stopped
    /// (RESOURCE_EXHAUSTED, nothing written).
    #[arg(long, env = "AUTOQA_CALL_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    autoqa_call_timeout_seconds: u64,
    /// Bytes of compiled AutoQA templates kept in memory.
    #[arg(long, env = "AUTOQA_RULE_CACHE_BYTES", default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    autoqa_rule_cache_bytes: u64,
    /// Bytes of transcript text one AutoQA call holds at once.
    #[arg(long, env = "AUTOQA_TRANSCRIPT_CHUNK_BYTES", default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    autoqa_transcript_chunk_bytes: u64,
    /// Jobs of one customer running at once across every worker (jobs of
    /// all customers count as one more customer).
    #[arg(long, env = "JOBS_MAX_RUNNING_PER_CUSTOMER", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs_max_running_per_customer: u32,
    /// Partitions of one customer's jobs running at once across every
    /// worker (jobs of all customers count as one more customer).
    #[arg(long, env = "JOBS_MAX_PARTITIONS_PER_CUSTOMER", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    jobs_max_partitions_per_customer: u32,
    /// Jobs one customer may have queued; CreateJob beyond it answers
    /// RESOURCE_EXHAUSTED (admin tokens are not limited).
    #[arg(long, env = "JOBS_MAX_QUEUED_PER_CUSTOMER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    jobs_max_queued_per_customer: u32,
    /// Audit calls one customer may start per minute, across every API process.
    #[arg(long, env = "AUDITS_PER_MINUTE_PER_CUSTOMER", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    audits_per_minute_per_customer: u32,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Settings first: a bad one stops start-up before anything runs.
    let schedule = match &args.reindex_schedule {
        Some(schedule) if !args.no_scheduler => {
            Some(ReindexScheduleSettings::parse(&args.reindex_mode, schedule, &args.reindex_lookback)?)
        }
        _ => None,
    };
    let audit_schedule = match &args.audit_schedule {
        Some(schedule) if !args.no_scheduler => {
            Some(AuditScheduleSettings::parse(schedule, args.audit_lookback.as_deref(), args.audit_repair)?)
        }
        _ => None,
    };
    let tls = ServerTls::load(args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    let metrics = PrometheusBuilder::new().install_recorder().context("installing the metrics recorder")?;
    scorekeeper_service::telemetry::describe();
    let store = args.postgres.store()?;
    let analytics = args.clickhouse.analytics()?;
    if !args.no_migrate {
        scorekeeper_jobs::migrate_postgres(&store).await.context("migrating Postgres (DATABASE_URL)")?;
        // ClickHouse may be down at start; the outbox holds writes until it
        // is back, so its schema failing is logged, not fatal.
        if let Err(error) = analytics.migrate().await {
            tracing::warn!(%error, "ClickHouse schema not applied; will rely on an earlier migrate");
        }
    }
    let http = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", args.http_addr))?;
    let api = match args.no_api {
        true => None,
        false => Some(
            tokio::net::TcpListener::bind(args.grpc_addr)
                .await
                .with_context(|| format!("binding --grpc-addr {}", args.grpc_addr))?,
        ),
    };
    // This process's name in job leases and in the fleet's write counts.
    let process = worker_id();
    let worker = (!args.no_worker).then(|| {
        let mut config = WorkerConfig::new(process.clone());
        config.concurrency = args.worker_concurrency as usize;
        config.lease = Duration::from_secs(args.job_lease_seconds);
        config.max_running_per_customer = args.jobs_max_running_per_customer as usize;
        config.max_partitions_per_customer = args.jobs_max_partitions_per_customer as usize;
        config
    });
    match &schedule {
        Some(_) => {
            tracing::info!(schedule = ?args.reindex_schedule, mode = %args.reindex_mode, lookback = %args.reindex_lookback, "reindex scheduler running")
        }
        None => {
            tracing::info!("no reindex scheduler in this process (REINDEX_SCHEDULE unset or --no-scheduler)")
        }
    }
    if audit_schedule.is_some() {
        tracing::info!(schedule = ?args.audit_schedule, lookback = ?args.audit_lookback, repair = args.audit_repair, "audit scheduler running");
    }
    match &tls {
        Some(_) => {
            tracing::info!(cert = ?args.tls_cert, "TLS on the gRPC and HTTP ports (plain text is refused)")
        }
        None => tracing::info!("no TLS: the gRPC and HTTP ports are plain (SK_TLS_CERT, SK_TLS_KEY unset)"),
    }
    if api.is_some() {
        tracing::info!(addr = %args.grpc_addr, "serving gRPC");
    }
    let parts = Parts {
        api,
        api_tls: tls.as_ref().map(ServerTls::grpc),
        dispatcher: (!args.no_dispatcher).then(|| DispatcherConfig {
            batch_size: args.outbox_batch_size as usize,
            poll_interval: Duration::from_millis(args.outbox_poll_ms),
            concurrency: args.outbox_concurrency as usize,
            ..DispatcherConfig::default()
        }),
        worker,
        reindex: ReindexSettings {
            conversations_batch_size: args.reindex_conversations_batch_size as usize,
            process_scorecards_batch_size: args.reindex_process_scorecards_batch_size as usize,
            write_rows: args.reindex_write_rows as usize,
            partition_rows: args.reindex_partition_rows as usize,
        },
        reindex_schedule: schedule,
        audit_schedule,
        autoqa: AutoQaSettings {
            threads: args
                .autoqa_threads
                .map_or_else(scorekeeper_service::default_autoqa_threads, |n| n as usize),
            max_calls: args.autoqa_max_calls as usize,
            max_calls_per_customer: args.autoqa_max_calls_per_customer as usize,
            call_timeout: Duration::from_secs(args.autoqa_call_timeout_seconds),
            rule_cache_bytes: args.autoqa_rule_cache_bytes,
            transcript_chunk_bytes: args.autoqa_transcript_chunk_bytes,
        },
        limits: TenantLimits {
            max_queued_jobs_per_customer: args.jobs_max_queued_per_customer as usize,
            audits_per_minute_per_customer: args.audits_per_minute_per_customer,
        },
    };
    let mut service = Service::start(&store, &analytics, parts);
    tracing::info!(addr = %args.http_addr, "serving /metrics, /health and the console at /ui");
    let freshness = Freshness::default();
    let console = Console::new(
        service.calls(),
        analytics.clone(),
        service.health(),
        freshness.clone(),
        Duration::from_secs(args.console_session_seconds),
        tls.is_some(),
    );
    let state = HttpState { metrics, health: service.health() };
    let http_tls = tls.as_ref().map(ServerTls::http);
    service.spawn("the HTTP server", serve_http(http, http_tls, state, console, service.stop_signal()));
    service.spawn("the freshness sampler", freshness.run(store.clone(), process, service.stop_signal()));

    let failure = tokio::select! {
        _ = shutdown_signal() => None,
        error = service.failed() => Some(error),
    };
    match failure {
        None => {
            tracing::info!("shutting down");
            service.stop().await.context("stopping serve")
        }
        // A part ended by itself: that is a failure; the rest is aborted.
        Some(error) => Err(anyhow::Error::new(error).context("serve stopped")),
    }
}

/// Names this process in job leases: host, pid and a random tag, so two
/// processes never share an identity.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[derive(Clone)]
struct HttpState {
    metrics: PrometheusHandle,
    /// The dependency checker's last answer, shared with gRPC health.
    health: watch::Receiver<Dependencies>,
}

/// Serves `/metrics`, `/health` and the console on `listener` until
/// `shutdown`; over TLS only when `tls` is given. Handlers see the peer's
/// address (the console's login throttles by it).
async fn serve_http(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: HttpState,
    console: Console,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(|State(s): State<HttpState>| async move { s.metrics.render() }))
        .route("/health", get(health))
        .with_state(state)
        .merge(console.router());
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    match tls {
        None => {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app).with_graceful_shutdown(stopped).await
        }
        Some(acceptor) => {
            let listener = TlsListener::new(listener, acceptor).context("the HTTP port's address")?;
            // Handlers read the peer as `ConnectInfo<SocketAddr>` either way.
            let app = app
                .layer(axum::middleware::map_request(|mut request: axum::extract::Request| async move {
                    let peer = request.extensions().get::<ConnectInfo<TlsPeer>>().map(|c| c.0.0);
                    if let Some(peer) = peer {
                        request.extensions_mut().insert(ConnectInfo(peer));
                    }
                    request
                }))
                .into_make_service_with_connect_info::<TlsPeer>();
            axum::serve(listener, app).with_graceful_shutdown(stopped).await
        }
    }
    .context("HTTP server")
}

/// 200 when Postgres answered the last check (the API can take writes);
/// ClickHouse being down is reported but is not a failure, since the
/// outbox holds writes. The same answer as gRPC health's overall service:
/// both read the one dependency checker, so a probe costs no query.
async fn health(State(s): State<HttpState>) -> (StatusCode, String) {
    let now = *s.health.borrow();
    let word = |ok: bool| match (now.checked, ok) {
        (false, _) => "unchecked",
        (true, true) => "ok",
        (true, false) => "unavailable",
    };
    let body = format!("postgres: {}\nclickhouse: {}\n", word(now.postgres), word(now.clickhouse));
    let code = if now.serving() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, body)
}
