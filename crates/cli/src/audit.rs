//! `scorekeeper audit`: the drift audit through the API
//! (`AnalyticsService.Audit`), printed as a table or JSON. With `--repair`
//! it queues the repair, follows the reindex jobs to their end, and audits
//! again.
//!
//! Exit status: 0 when ClickHouse matches Postgres (after the repair, with
//! `--repair`), 3 when drift remains, 1 on errors.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scorekeeper_client::follow::follow;
use scorekeeper_client::views::audit::{OutcomeView, repair_text, report_text};
use scorekeeper_client::views::job::state_word;
use scorekeeper_client::{Authed, ClientError};
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::{AuditRequest, AuditResponse, JobState};

use crate::client::ApiArgs;
use crate::scope::ScopeArgs;

/// Exit status when drift remains.
pub const DRIFT_EXIT_CODE: i32 = 3;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The customer, and the window on the rows' bucket time (conversation
    /// start, scorecard creation).
    #[command(flatten)]
    scope: ScopeArgs,
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

fn request(args: &AuditArgs) -> anyhow::Result<AuditRequest> {
    let customer = args.scope.customer_id()?;
    let (customer_id, all_customers) = (customer.unwrap_or(0), customer.is_none());
    let window = args.scope.window()?;
    Ok(AuditRequest {
        customer_id,
        all_customers,
        start_time: window.map(|w| to_timestamp(w.0)),
        end_time: window.map(|w| to_timestamp(w.1)),
        repair: args.repair,
    })
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let api = args.api.connect(*args.timeout).await?;
    let mut analytics = api.analytics();
    let request = request(&args)?;
    let before = call(&mut analytics, request, "auditing", args.json).await?;
    let mut after = None;
    if let Some(repair) = &before.repair {
        if !args.json {
            println!("{}", report_text(before.report.as_ref().context("no report")?));
            println!("{}", repair_text(repair));
        }
        wait_for(&mut api.jobs(), &repair.job_ids, args.json).await?;
        let again = AuditRequest { repair: false, ..request };
        after = Some(call(&mut analytics, again, "auditing again", args.json).await?);
    }
    let last = after.as_ref().unwrap_or(&before).report.clone().context("the server returned no report")?;
    if args.json {
        let view = OutcomeView::new(
            before.report.as_ref().context("no report")?,
            before.repair.as_ref(),
            after.as_ref().and_then(|a| a.report.as_ref()),
        );
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        if after.is_some() {
            println!("after the repair:");
        }
        println!("{}", report_text(&last));
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
    Ok(response.map_err(|s| ClientError::call(what, s))?.into_inner())
}

/// Follows the repair's reindex jobs until each has ended; fails if one
/// did not succeed.
async fn wait_for(jobs: &mut JobServiceClient<Authed>, ids: &[String], quiet: bool) -> anyhow::Result<()> {
    for id in ids {
        let job = follow(jobs, id, quiet).await?;
        if JobState::try_from(job.state) != Ok(JobState::Succeeded) {
            bail!("repair job {id} ended {}", state_word(job.state));
        }
    }
    Ok(())
}
