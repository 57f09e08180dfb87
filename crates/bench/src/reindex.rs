//! `scorekeeper-bench reindex --scale s|m|l`: copies one generated dataset
//! from Postgres to ClickHouse three ways and compares them (see
//! `baselines`): the peer shell pipeline, the physical limit (each half
//! alone), and ours, a real `JOB_TYPE_REINDEX_CONVERSATIONS` job of both
//! scorecard types run by a real worker process, timed from CreateJob to
//! `succeeded`. Ours must produce exactly the peer's rows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use scorekeeper_analytics::{Analytics, ClickHouseConfig};
use scorekeeper_client::{BearerToken, channel};
use scorekeeper_proto::coaching::ScorecardTemplateType;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::{
    CreateJobRequest, GetJobRequest, JobPayload, JobState, JobType, ReindexConversationsPayload,
};
use scorekeeper_settings::{ClickHouseArgs, PostgresArgs};
use serde::Serialize;

use super::baselines::{self, TABLES};
use super::cpu::{CpuSample, CpuUse};
use super::dataset::{self, DatasetRows, Scale};
use super::report;
use super::stack::{BenchDatabases, ServeProcess, database_client};

#[derive(Args)]
pub struct ReindexBenchArgs {
    /// Dataset size: s (1.1M rows), m (5.6M), l (22.4M).
    #[arg(long, value_enum, default_value = "s")]
    scale: Scale,
    /// Also write the figures as JSON to this file (`-` for standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// A setting for the worker's `serve` process, KEY=VALUE (repeatable),
    /// e.g. REINDEX_CONVERSATIONS_BATCH_SIZE=2000.
    #[arg(long = "serve-env", value_parser = key_value)]
    serve_env: Vec<(String, String)>,
    /// Skip the peer pipeline (and the row check against it), to iterate on ours.
    #[arg(long)]
    skip_peer: bool,
    /// Worker processes sharing the job, one run of ours per count, each
    /// into an empty database (e.g. `1,2`); the headline figures are the
    /// first run's, and the others are compared with it.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u32).range(1..=16))]
    workers: Vec<u32>,
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    clickhouse: ClickHouseArgs,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The figures of one run, as printed and written to JSON.
#[derive(Serialize)]
struct Figures {
    scale: &'static str,
    rows: DatasetRows,
    rows_total: i64,
    dataset_generated_s: Option<f64>,
    ours_s: f64,
    peer_s: Option<f64>,
    limit_read_s: f64,
    limit_write_s: f64,
    ratio_to_peer: Option<f64>,
    ratio_to_limit: f64,
    /// Postgres CPU of ours over the limit read's Postgres CPU: the load a
    /// reindex puts on the primary (or replica) it reads, per row, against
    /// the least any reader of the same rows costs it.
    postgres_cpu_ratio_to_limit_read: f64,
    /// The worker process's CPU per row copied, in microseconds.
    worker_cpu_us_per_row: f64,
    rows_per_s: f64,
    peer_rows_per_s: Option<f64>,
    worker_peak_rss_mb: f64,
    /// Worker processes of the headline run.
    workers: u32,
    /// The runs with other worker counts, each against the headline run.
    other_worker_counts: Vec<WorkersRun>,
    /// CPU seconds each took, by process (see `bench::cpu`).
    cpu_s: CpuFigures,
    /// Ours equals the peer in every table (count and checksum); `None`
    /// when the peer was skipped.
    rows_match_peer: Option<bool>,
    cores: usize,
    serve_env: Vec<String>,
}

/// A run of ours with another number of worker processes.
#[derive(Serialize)]
struct WorkersRun {
    workers: u32,
    ours_s: f64,
    /// Its time over the headline run's: below 1, faster.
    ratio_to_headline: f64,
    cpu: CpuUse,
    /// The most any one of its processes held.
    worker_peak_rss_mb: f64,
}

#[derive(Serialize)]
struct CpuFigures {
    ours: CpuUse,
    peer: Option<CpuUse>,
    limit_read: CpuUse,
    limit_write: CpuUse,
}

/// `work`'s result and the CPU used meanwhile (no worker process).
async fn measured<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<(T, CpuUse)> {
    let before = CpuSample::now(&[]);
    let result = work.await?;
    Ok((result, CpuSample::now(&[]).since(&before)))
}

/// The bench databases of the reindex dataset at `scale` (shared with
/// `bench audit`), the dataset generated if missing; the seconds that took.
pub(super) async fn open_dataset(
    postgres: &PostgresArgs,
    clickhouse: &ClickHouseArgs,
    scale: Scale,
) -> anyhow::Result<(BenchDatabases, DatasetRows, Option<f64>)> {
    let databases =
        BenchDatabases::prepare(postgres, clickhouse, &format!("reindex_{}", scale.name())).await?;
    let (rows, generated) = dataset::ensure(&databases.store, scale).await?;
    eprintln!(
        "dataset {}: {} conversations, {} scorecards, {} scores",
        scale.name(),
        rows.conversations,
        rows.scorecards,
        rows.scores
    );
    Ok((databases, rows, generated))
}

pub async fn run(args: ReindexBenchArgs) -> anyhow::Result<()> {
    let scale = args.scale;
    let (databases, rows, generated) = open_dataset(&args.postgres, &args.clickhouse, scale).await?;
    let ours = fresh(&databases.clickhouse, "").await?;
    let peer_db = fresh(&databases.clickhouse, "_peer").await?;
    let limit_db = fresh(&databases.clickhouse, "_limit").await?;

    eprintln!("limit: reading the source tables to /dev/null…");
    let (limit_read, limit_read_cpu) = measured(baselines::limit_read(&databases.database_url)).await?;
    let (peer, peer_cpu) = if args.skip_peer {
        (None, None)
    } else {
        eprintln!("peer: psql COPY | curl INSERT, table by table…");
        let (peer, cpu) = measured(baselines::peer(&databases.database_url, peer_db.config())).await?;
        baselines::settle(&database_client(peer_db.config())).await?;
        (Some(peer), Some(cpu))
    };

    let (headline, others) = args.workers.split_first().expect("clap gives at least one count");
    let mut other_runs = Vec::new();
    for &workers in others {
        eprintln!("ours: a reindex job shared by {workers} worker processes…");
        let run = run_job(&databases, &args.serve_env, workers).await?;
        fresh(&databases.clickhouse, "").await?;
        other_runs.push((workers, run));
    }
    eprintln!("ours: a reindex job through {headline} worker process(es)…");
    let ours_run = run_job(&databases, &args.serve_env, *headline).await?;
    let ours_time = ours_run.time;
    baselines::settle(&database_client(ours.config())).await?;

    eprintln!("limit: ClickHouse ingesting the final rows from a RowBinary dump…");
    // Measured inside: its dumps are not part of the limit.
    let (limit_write, limit_write_cpu) = baselines::limit_write(
        &database_client(ours.config()),
        &database_client(limit_db.config()),
        &std::env::temp_dir(),
    )
    .await?;

    let ours_sums = baselines::checksums(&database_client(ours.config())).await?;
    let expected: Vec<u64> = vec![rows.conversations as u64, rows.scorecards as u64, rows.scores as u64];
    let counts: Vec<u64> = ours_sums.iter().map(|s| s.0).collect();
    if counts != expected {
        bail!("ours wrote {counts:?} rows per table ({TABLES:?}), Postgres holds {expected:?}");
    }
    let rows_match_peer = match peer {
        Some(_) => Some(baselines::checksums(&database_client(peer_db.config())).await? == ours_sums),
        None => None,
    };

    let total = rows.total();
    let secs = |d: Duration| d.as_secs_f64();
    let figures = Figures {
        scale: scale.name(),
        rows,
        rows_total: total,
        dataset_generated_s: generated,
        ours_s: secs(ours_time),
        peer_s: peer.map(secs),
        limit_read_s: secs(limit_read),
        limit_write_s: secs(limit_write),
        ratio_to_peer: peer.map(|p| secs(ours_time) / secs(p)),
        ratio_to_limit: secs(ours_time) / (secs(limit_read) + secs(limit_write)),
        postgres_cpu_ratio_to_limit_read: ours_run.cpu.postgres / limit_read_cpu.postgres,
        worker_cpu_us_per_row: ours_run.cpu.worker / total as f64 * 1e6,
        rows_per_s: total as f64 / secs(ours_time),
        peer_rows_per_s: peer.map(|p| total as f64 / secs(p)),
        worker_peak_rss_mb: ours_run.peak_rss_mb,
        workers: *headline,
        other_worker_counts: other_runs
            .into_iter()
            .map(|(workers, run)| WorkersRun {
                workers,
                ours_s: secs(run.time),
                ratio_to_headline: secs(run.time) / secs(ours_time),
                cpu: run.cpu,
                worker_peak_rss_mb: run.peak_rss_mb,
            })
            .collect(),
        cpu_s: CpuFigures {
            ours: ours_run.cpu,
            peer: peer_cpu,
            limit_read: limit_read_cpu,
            limit_write: limit_write_cpu,
        },
        rows_match_peer,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        serve_env: args.serve_env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    };
    print(&figures);
    if let Some(path) = &args.json {
        report::write_json(path, &figures)?;
    }
    if rows_match_peer == Some(false) {
        bail!("ours and the peer produced different rows (see the checksums above)");
    }
    Ok(())
}

/// A ClickHouse database beside the bench's, `suffix` added, emptied and
/// given the service's schema.
pub(super) async fn fresh(bench: &ClickHouseConfig, suffix: &str) -> anyhow::Result<Analytics> {
    let config = ClickHouseConfig { database: format!("{}{suffix}", bench.database), ..bench.clone() };
    scorekeeper_analytics::server_client(&config)
        .query(&format!("DROP DATABASE IF EXISTS {}", config.database))
        .execute()
        .await
        .with_context(|| format!("dropping ClickHouse database {}", config.database))?;
    let analytics = Analytics::new(config)?;
    analytics.migrate().await?;
    Ok(analytics)
}

/// A reindex job's run: from CreateJob to `succeeded`.
pub(super) struct JobRun {
    pub time: Duration,
    pub peak_rss_mb: f64,
    /// Servers and worker, from CreateJob to `succeeded`.
    pub cpu: CpuUse,
}

/// Starts `workers` worker processes, creates the job (every customer, both
/// scorecard types, no window) through the first and follows it to the
/// end; the CPU of all of them counts as the worker's.
pub(super) async fn run_job(
    databases: &BenchDatabases,
    serve_env: &[(String, String)],
    workers: u32,
) -> anyhow::Result<JobRun> {
    let token = databases.admin_token().await?;
    let env: Vec<(&str, String)> = serve_env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut fleet = Vec::new();
    for _ in 0..workers {
        fleet.push(ServeProcess::start(databases, &env).await?);
    }
    let pids: Vec<u32> = fleet.iter().filter_map(ServeProcess::pid).collect();
    let channel = channel::connect(&fleet[0].grpc_url, Duration::from_secs(30)).await?;
    let mut jobs = JobServiceClient::with_interceptor(channel, BearerToken::new(&token)?);
    let payload = ReindexConversationsPayload {
        customer_id: 0,
        reindex_scorecard_types: vec![
            ScorecardTemplateType::Conversation as i32,
            ScorecardTemplateType::Process as i32,
        ],
        ..ReindexConversationsPayload::default()
    };
    let request = CreateJobRequest {
        r#type: JobType::ReindexConversations as i32,
        payload: Some(JobPayload { payload: Some(Payload::ReindexConversations(payload)) }),
    };
    let (started, cpu_before) = (Instant::now(), CpuSample::now(&pids));
    let job = jobs.create_job(request).await?.into_inner().job.context("CreateJob returned no job")?;
    let finished = loop {
        let job = jobs
            .get_job(GetJobRequest { id: job.id.clone() })
            .await?
            .into_inner()
            .job
            .context("GetJob returned no job")?;
        match JobState::try_from(job.state) {
            Ok(JobState::Succeeded) => break started.elapsed(),
            Ok(JobState::Failed | JobState::Cancelled) => {
                bail!("the reindex job ended {:?}: {:?}", job.state, job.error)
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let cpu = CpuSample::now(&pids).since(&cpu_before);
    let mut peak_rss_mb: f64 = 0.0;
    for serve in fleet {
        peak_rss_mb = peak_rss_mb.max(serve.peak_rss_mb()?);
        serve.stop().await;
    }
    Ok(JobRun { time: finished, peak_rss_mb, cpu })
}

fn print(f: &Figures) {
    let rate = |rows: f64| format!("{:.0}k rows/s", rows / 1000.0);
    let mut rows = vec![
        (
            "rows",
            format!(
                "{} ({} conv, {} scorecards, {} scores)",
                f.rows_total, f.rows.conversations, f.rows.scorecards, f.rows.scores
            ),
        ),
        ("ours (reindex job)", format!("{:.2} s  {}", f.ours_s, rate(f.rows_per_s))),
    ];
    if let (Some(peer), Some(peer_rate)) = (f.peer_s, f.peer_rows_per_s) {
        rows.push(("peer (psql | curl)", format!("{peer:.2} s  {}", rate(peer_rate))));
    }
    rows.push(("limit: Postgres read", format!("{:.2} s", f.limit_read_s)));
    rows.push(("limit: ClickHouse write", format!("{:.2} s", f.limit_write_s)));
    if let Some(ratio) = f.ratio_to_peer {
        rows.push(("ratio to peer", format!("{ratio:.2}  (target <= 0.50)")));
    }
    rows.push(("ratio to limit", format!("{:.2}  (target <= 1.00)", f.ratio_to_limit)));
    rows.push((
        "postgres cpu / limit read's",
        format!("{:.2}  (target <= 1.30)", f.postgres_cpu_ratio_to_limit_read),
    ));
    rows.push(("worker cpu per row", format!("{:.2} µs  (target <= 0.35)", f.worker_cpu_us_per_row)));
    let cpu = &f.cpu_s;
    rows.push(("cpu: ours", cpu.ours.describe()));
    if let Some(peer) = &cpu.peer {
        rows.push(("cpu: peer", peer.describe()));
    }
    rows.push(("cpu: limit read", cpu.limit_read.describe()));
    rows.push(("cpu: limit write", cpu.limit_write.describe()));
    rows.push(("worker peak RSS", format!("{:.0} MB  (target <= 256 at scale l)", f.worker_peak_rss_mb)));
    rows.push(("worker processes", f.workers.to_string()));
    for other in &f.other_worker_counts {
        rows.push((
            "ours with other workers",
            format!(
                "{} processes: {:.2} s, {:.2} × the headline's  ({})",
                other.workers,
                other.ours_s,
                other.ratio_to_headline,
                other.cpu.describe()
            ),
        ));
    }
    rows.push((
        "rows equal to peer",
        match f.rows_match_peer {
            Some(true) => "yes (count and checksum per table)".to_owned(),
            Some(false) => "NO".to_owned(),
            None => "not checked (--skip-peer)".to_owned(),
        },
    ));
    report::print_table(&format!("bench reindex, scale {}, {} cores", f.scale, f.cores), &rows);
}
