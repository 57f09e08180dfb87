//! `scorekeeper audit`: the drift audit through the API
//! (`AnalyticsService.Audit`), printed as a table or JSON. With `--repair`
//! it queues the repair, follows the reindex jobs to their end, and audits
//! again.
//!
//! Exit status: 0 when ClickHouse matches Postgres (after the repair, with
//! `--repair`), 3 when drift remains, 1 on errors.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::{
    AuditReport, AuditRequest, AuditResponse, AuditTable, DriftCounts, DriftKind, JobState,
};
use serde::Serialize;

use crate::client::{ApiArgs, Authed, connect};

/// Exit status when drift remains.
pub const DRIFT_EXIT_CODE: i32 = 3;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Customer id, or `all` (admin tokens only).
    #[arg(long)]
    customer: String,
    /// Rows whose bucket time (conversation start, scorecard creation) lies
    /// in the span ending now, e.g. `7days`. Without a window: all time.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    since: Option<humantime::Duration>,
    /// Window start (RFC 3339), with --to.
    #[arg(long, requires = "to")]
    from: Option<DateTime<Utc>>,
    /// Window end (RFC 3339, exclusive), with --from.
    #[arg(long, requires = "from")]
    to: Option<DateTime<Utc>>,
    /// Repair what drifted (reindex jobs, tombstones), wait for the jobs,
    /// and audit again.
    #[arg(long)]
    repair: bool,
    /// Longest time one audit call may take.
    #[arg(long, default_value = "10m")]
    timeout: humantime::Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

fn request(args: &AuditArgs) -> anyhow::Result<AuditRequest> {
    let (customer_id, all_customers) = match args.customer.as_str() {
        "all" => (0, true),
        id => (id.parse().with_context(|| format!("--customer {id:?}: a customer id or `all`"))?, false),
    };
    let window = match (args.since, args.from, args.to) {
        (Some(since), _, _) => {
            let now = Utc::now();
            Some((now - chrono::Duration::from_std(*since).context("--since is too long")?, now))
        }
        (None, Some(from), Some(to)) => Some((from, to)),
        _ => None,
    };
    Ok(AuditRequest {
        customer_id,
        all_customers,
        start_time: window.map(|w| timestamp(w.0)),
        end_time: window.map(|w| timestamp(w.1)),
        repair: args.repair,
    })
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let bearer = crate::client::BearerToken::new(&args.api.token).context("--token")?;
    let channel = connect(&args.api.grpc_url, *args.timeout).await?;
    let mut analytics = AnalyticsServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let request = request(&args)?;
    let before = call(&mut analytics, request, "auditing", args.json).await?;
    let mut after = None;
    if let Some(repair) = &before.repair {
        if !args.json {
            println!("{}", text(before.report.as_ref().context("no report")?));
            println!(
                "repair: {} reindex job(s) queued, {} tombstone(s) written, {} version(s) bumped",
                repair.job_ids.len(),
                repair.tombstones,
                repair.versions_bumped
            );
        }
        let mut jobs = JobServiceClient::with_interceptor(channel, bearer);
        wait_for(&mut jobs, &repair.job_ids, args.json).await?;
        let again = AuditRequest { repair: false, ..request };
        after = Some(call(&mut analytics, again, "auditing again", args.json).await?);
    }
    let last = after.as_ref().unwrap_or(&before).report.clone().context("the server returned no report")?;
    if args.json {
        let view = OutcomeView {
            before: ReportView::from(before.report.as_ref().context("no report")?),
            repair: before.repair.as_ref().map(|r| RepairView {
                jobs: r.job_ids.clone(),
                tombstones: r.tombstones,
                versions_bumped: r.versions_bumped,
            }),
            after: after.as_ref().and_then(|a| a.report.as_ref()).map(ReportView::from),
        };
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        if after.is_some() {
            println!("after the repair:");
        }
        println!("{}", text(&last));
    }
    if last.drifted_rows > 0 {
        if !args.json {
            eprintln!("{} row(s) drifted", last.drifted_rows);
        }
        std::process::exit(DRIFT_EXIT_CODE);
    }
    Ok(())
}

async fn call(
    analytics: &mut AnalyticsServiceClient<Authed>,
    request: AuditRequest,
    what: &str,
    quiet: bool,
) -> anyhow::Result<AuditResponse> {
    let spinner = if quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"));
    spinner.set_message(what.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(120));
    let response = analytics.audit(request).await;
    spinner.finish_and_clear();
    Ok(response.map_err(|s| anyhow::anyhow!("{what}: {:?}: {}", s.code(), s.message()))?.into_inner())
}

/// Follows the repair's reindex jobs until each has ended; fails if one
/// did not succeed.
async fn wait_for(jobs: &mut JobServiceClient<Authed>, ids: &[String], quiet: bool) -> anyhow::Result<()> {
    for id in ids {
        let job = crate::jobs::follow(jobs, id, quiet).await?;
        if JobState::try_from(job.state) != Ok(JobState::Succeeded) {
            bail!("repair job {id} ended {}", crate::jobs::state_word(job.state));
        }
    }
    Ok(())
}

fn table_word(table: i32) -> &'static str {
    match AuditTable::try_from(table) {
        Ok(AuditTable::Conversations) => "conversations",
        Ok(AuditTable::Scorecards) => "scorecards",
        Ok(AuditTable::Scores) => "scores",
        _ => "unknown",
    }
}

fn kind_word(kind: i32) -> &'static str {
    match DriftKind::try_from(kind) {
        Ok(DriftKind::Missing) => "missing",
        Ok(DriftKind::Stale) => "stale",
        Ok(DriftKind::Newer) => "newer",
        Ok(DriftKind::OnlyInClickhouse) => "only_in_clickhouse",
        _ => "unknown",
    }
}

fn time_text(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Rows drifted listed in text; `--json` lists all the report names.
const ROWS_SHOWN: usize = 20;

fn text(report: &AuditReport) -> String {
    let mut out = format!(
        "{:14} {:>12} {:>8} {:>8} {:>9} {:>9} {:>7} {:>12} {:>9}\n",
        "table", "rows", "buckets", "drifted", "missing", "stale", "newer", "only in CH", "time"
    );
    for t in &report.tables {
        let d = t.drift.unwrap_or_default();
        out += &format!(
            "{:14} {:>12} {:>8} {:>8} {:>9} {:>9} {:>7} {:>12} {:>7.1} s\n",
            table_word(t.table),
            t.rows_checked,
            t.buckets,
            t.drifted_buckets,
            d.missing,
            d.stale,
            d.newer,
            d.only_in_clickhouse,
            t.elapsed_ms as f64 / 1000.0
        );
    }
    let drifted: Vec<_> = report.buckets.iter().filter(|b| total(&b.drift.unwrap_or_default()) > 0).collect();
    if !drifted.is_empty() {
        out += "\ndrifted buckets (day, UTC):\n";
        for b in drifted {
            let d = b.drift.unwrap_or_default();
            out += &format!(
                "  {:13} customer {:>6}  {}  rows {} (ClickHouse {})  missing {} stale {} newer {} only in CH {}  {} ms\n",
                table_word(b.table),
                b.customer_id,
                time_text(&b.start_time),
                b.rows_checked,
                b.clickhouse_rows,
                d.missing,
                d.stale,
                d.newer,
                d.only_in_clickhouse,
                b.elapsed_ms
            );
        }
    }
    if !report.rows.is_empty() {
        out += &format!("\ndrifted rows ({} named):\n", report.rows.len());
        for r in report.rows.iter().take(ROWS_SHOWN) {
            let version = |v: i64| if v == 0 { "-".to_owned() } else { v.to_string() };
            out += &format!(
                "  {:13} {:>12}  {:18}  postgres v{}  clickhouse v{}\n",
                table_word(r.table),
                r.id,
                kind_word(r.kind),
                version(r.postgres_version),
                version(r.clickhouse_version)
            );
        }
        if report.rows.len() > ROWS_SHOWN || report.rows_truncated {
            out += "  … (--json lists every named row)\n";
        }
    }
    out += &format!(
        "\n{} drifted row(s); audit took {:.1} s",
        report.drifted_rows,
        report.elapsed_ms as f64 / 1000.0
    );
    out
}

fn total(d: &DriftCounts) -> i64 {
    d.missing + d.stale + d.newer + d.only_in_clickhouse
}

#[derive(Serialize)]
struct OutcomeView {
    before: ReportView,
    repair: Option<RepairView>,
    after: Option<ReportView>,
}

#[derive(Serialize)]
struct RepairView {
    jobs: Vec<String>,
    tombstones: i64,
    versions_bumped: i64,
}

#[derive(Serialize)]
struct CountsView {
    missing: i64,
    stale: i64,
    newer: i64,
    only_in_clickhouse: i64,
}

impl From<Option<DriftCounts>> for CountsView {
    fn from(d: Option<DriftCounts>) -> Self {
        let d = d.unwrap_or_default();
        CountsView {
            missing: d.missing,
            stale: d.stale,
            newer: d.newer,
            only_in_clickhouse: d.only_in_clickhouse,
        }
    }
}

#[derive(Serialize)]
struct TableView {
    table: &'static str,
    rows_checked: i64,
    buckets: i64,
    drifted_buckets: i64,
    drift: CountsView,
    elapsed_ms: i64,
}

#[derive(Serialize)]
struct BucketView {
    table: &'static str,
    customer: i64,
    start: String,
    end: String,
    rows_checked: i64,
    clickhouse_rows: i64,
    drift: CountsView,
    elapsed_ms: i64,
}

#[derive(Serialize)]
struct RowView {
    table: &'static str,
    customer: i64,
    id: i64,
    kind: &'static str,
    postgres_version: Option<i64>,
    clickhouse_version: Option<i64>,
}

#[derive(Serialize)]
struct ReportView {
    drifted_rows: i64,
    elapsed_ms: i64,
    tables: Vec<TableView>,
    buckets: Vec<BucketView>,
    rows: Vec<RowView>,
    rows_truncated: bool,
}

impl From<&AuditReport> for ReportView {
    fn from(r: &AuditReport) -> Self {
        let rfc = |t: &Option<prost_types::Timestamp>| {
            t.as_ref()
                .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32))
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        };
        ReportView {
            drifted_rows: r.drifted_rows,
            elapsed_ms: r.elapsed_ms,
            tables: r
                .tables
                .iter()
                .map(|t| TableView {
                    table: table_word(t.table),
                    rows_checked: t.rows_checked,
                    buckets: t.buckets,
                    drifted_buckets: t.drifted_buckets,
                    drift: t.drift.into(),
                    elapsed_ms: t.elapsed_ms,
                })
                .collect(),
            buckets: r
                .buckets
                .iter()
                .map(|b| BucketView {
                    table: table_word(b.table),
                    customer: b.customer_id,
                    start: rfc(&b.start_time),
                    end: rfc(&b.end_time),
                    rows_checked: b.rows_checked,
                    clickhouse_rows: b.clickhouse_rows,
                    drift: b.drift.into(),
                    elapsed_ms: b.elapsed_ms,
                })
                .collect(),
            rows: r
                .rows
                .iter()
                .map(|row| RowView {
                    table: table_word(row.table),
                    customer: row.customer_id,
                    id: row.id,
                    kind: kind_word(row.kind),
                    postgres_version: (row.postgres_version != 0).then_some(row.postgres_version),
                    clickhouse_version: (row.clickhouse_version != 0).then_some(row.clickhouse_version),
                })
                .collect(),
            rows_truncated: r.rows_truncated,
        }
    }
}
