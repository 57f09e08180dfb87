//! `scorekeeper reindex` and `scorekeeper jobs list|get|cancel`: JobService
//! through the API, with a progress display for `--wait`.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use scorekeeper_proto::coaching::ScorecardTemplateType;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::*;
use serde::Serialize;

use crate::client::{ApiArgs, Authed};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScorecardKind {
    Conversation,
    Process,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeBaseArg {
    /// Conversations by start time, process scorecards by creation time.
    Start,
    /// Every row by its last update: catches every change in the window.
    Updated,
}

#[derive(Args, Debug)]
pub struct ReindexArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Which scorecards to reindex (conversation: conversations with their
    /// conversation scorecards; process: process scorecards).
    #[arg(long, value_delimiter = ',', default_value = "conversation")]
    types: Vec<ScorecardKind>,
    /// Customer id, or `all` (admin tokens only).
    #[arg(long)]
    customer: String,
    /// Window ending now, e.g. `24h`, `7days`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    since: Option<humantime::Duration>,
    /// Window start (RFC 3339), with --to.
    #[arg(long, requires = "to")]
    from: Option<DateTime<Utc>>,
    /// Window end (RFC 3339, exclusive), with --from.
    #[arg(long, requires = "from")]
    to: Option<DateTime<Utc>>,
    /// Which time the window applies to.
    #[arg(long, value_enum, default_value = "updated")]
    time_base: TimeBaseArg,
    /// Only these conversations (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    conversation_ids: Vec<i64>,
    /// Rows per batch for both activities (default: the server's settings).
    #[arg(long)]
    batch_size: Option<i32>,
    /// Follow the job until it ends; exit non-zero unless it succeeds.
    #[arg(long)]
    wait: bool,
    /// Print the job as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only this customer's jobs (admin tokens).
        #[arg(long)]
        customer: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: i32,
        #[arg(long)]
        json: bool,
    },
    /// One job with its progress.
    Get {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job (a running one stops at its next batch).
    Cancel {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

async fn client(api: &ApiArgs) -> anyhow::Result<JobServiceClient<Authed>> {
    let (channel, bearer) = api.connect().await?;
    Ok(JobServiceClient::with_interceptor(channel, bearer))
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

fn payload(args: &ReindexArgs) -> anyhow::Result<ReindexConversationsPayload> {
    let customer_id = match args.customer.as_str() {
        "all" => 0,
        id => id.parse().with_context(|| format!("--customer {id:?}: a customer id or `all`"))?,
    };
    let window = match (args.since, args.from, args.to) {
        (Some(since), _, _) => {
            let now = Utc::now();
            let span = chrono::Duration::from_std(*since).context("--since is too long")?;
            Some((now - span, now))
        }
        (None, Some(from), Some(to)) => Some((from, to)),
        _ => None,
    };
    let batch = args.batch_size.unwrap_or(0);
    Ok(ReindexConversationsPayload {
        customer_id,
        start_time: window.map(|w| timestamp(w.0)),
        end_time: window.map(|w| timestamp(w.1)),
        time_base: match (window, args.time_base) {
            (None, _) => ReindexTimeBase::Unspecified,
            (Some(_), TimeBaseArg::Start) => ReindexTimeBase::ConversationStart,
            (Some(_), TimeBaseArg::Updated) => ReindexTimeBase::UpdatedAt,
        } as i32,
        conversation_ids: args.conversation_ids.clone(),
        conversations_batch_size: batch,
        process_scorecards_batch_size: batch,
        reindex_scorecard_types: args
            .types
            .iter()
            .map(|t| match t {
                ScorecardKind::Conversation => ScorecardTemplateType::Conversation as i32,
                ScorecardKind::Process => ScorecardTemplateType::Process as i32,
            })
            .collect(),
    })
}

fn status_error(step: &str, status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{step}: {:?}: {}", status.code(), status.message())
}

pub async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let mut jobs = client(&args.api).await?;
    let request = CreateJobRequest {
        r#type: JobType::ReindexConversations as i32,
        payload: Some(JobPayload { payload: Some(Payload::ReindexConversations(payload(&args)?)) }),
    };
    let job = jobs
        .create_job(request)
        .await
        .map_err(|s| status_error("creating the reindex job", s))?
        .into_inner()
        .job
        .context("the server returned no job")?;
    if !args.wait {
        return print_job(&job, args.json);
    }
    if !args.json {
        println!("job {} created; following it (Ctrl-C stops following, not the job)", job.id);
    }
    let last = follow(&mut jobs, &job.id, args.json).await?;
    print_job(&last, args.json)?;
    match JobState::try_from(last.state) {
        Ok(JobState::Succeeded) => Ok(()),
        _ => bail!("job {} ended {}", last.id, state_word(last.state)),
    }
}

/// Polls the job until it ends, drawing a bar per activity (rows, rows/s,
/// and an ETA once the activity has counted its rows).
pub(crate) async fn follow(
    jobs: &mut JobServiceClient<Authed>,
    id: &str,
    quiet: bool,
) -> anyhow::Result<Job> {
    let bars = MultiProgress::new();
    if quiet {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style_known =
        ProgressStyle::with_template("{prefix:28} [{bar:30}] {human_pos}/{human_len} rows  {msg}  eta {eta}")
            .expect("a valid template")
            .progress_chars("=> ");
    let style_unknown = ProgressStyle::with_template("{prefix:28} {spinner} {human_pos} rows  {msg}")
        .expect("a valid template");
    let mut shown: Vec<ProgressBar> = Vec::new();
    loop {
        let job = jobs
            .get_job(GetJobRequest { id: id.to_owned() })
            .await
            .map_err(|s| status_error("reading the job", s))?
            .into_inner()
            .job
            .context("the server returned no job")?;
        for (i, activity) in job.progress.iter().enumerate() {
            if shown.len() <= i {
                let bar = bars.add(ProgressBar::new_spinner().with_prefix(activity.activity.clone()));
                bar.set_style(style_unknown.clone());
                shown.push(bar);
            }
            let bar = &shown[i];
            if activity.rows_estimated > 0 && bar.length() != Some(activity.rows_estimated as u64) {
                bar.set_style(style_known.clone());
                bar.set_length(activity.rows_estimated as u64);
            }
            bar.set_position(activity.rows_done as u64);
            bar.set_message(format!("{:.0} rows/s", activity.rows_per_second));
            if activity.finished && !bar.is_finished() {
                bar.finish_with_message(format!("done, {:.0} rows/s", activity.rows_per_second));
            } else if !activity.finished {
                bar.tick();
            }
        }
        let state = JobState::try_from(job.state).unwrap_or(JobState::Unspecified);
        if matches!(state, JobState::Succeeded | JobState::Failed | JobState::Cancelled) {
            for bar in &shown {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            return Ok(job);
        }
        if let Some(error) = &job.error
            && !quiet
        {
            bars.println(format!(
                "attempt {} failed ({}), retrying: {}",
                job.attempts, error.code, error.message
            ))?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::List { api, state, customer, limit, json } => {
            let mut jobs = client(&api).await?;
            let state = state.map_or(JobState::Unspecified, |s| match s {
                StateArg::Queued => JobState::Queued,
                StateArg::Running => JobState::Running,
                StateArg::Succeeded => JobState::Succeeded,
                StateArg::Failed => JobState::Failed,
                StateArg::Cancelled => JobState::Cancelled,
            });
            let list = jobs
                .list_jobs(ListJobsRequest {
                    state: state as i32,
                    customer_id: customer.unwrap_or(0),
                    page_size: limit,
                    ..Default::default()
                })
                .await
                .map_err(|s| status_error("listing jobs", s))?
                .into_inner();
            if json {
                let views: Vec<JobView> = list.jobs.iter().map(JobView::from).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                println!(
                    "{:36}  {:9}  {:8}  {:>8}  {:>12}  created",
                    "id", "state", "customer", "attempts", "rows"
                );
                for job in &list.jobs {
                    let view = JobView::from(job);
                    println!(
                        "{:36}  {:9}  {:8}  {:>8}  {:>12}  {}",
                        view.id,
                        view.state,
                        view.customer.map_or("all".to_owned(), |c| c.to_string()),
                        view.attempts,
                        view.activities.iter().map(|a| a.rows_done).sum::<i64>(),
                        view.created_at.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        JobsCommand::Get { id, api, json } => {
            let job = client(&api)
                .await?
                .get_job(GetJobRequest { id })
                .await
                .map_err(|s| status_error("reading the job", s))?
                .into_inner()
                .job
                .context("the server returned no job")?;
            print_job(&job, json)
        }
        JobsCommand::Cancel { id, api, json } => {
            let job = client(&api)
                .await?
                .cancel_job(CancelJobRequest { id })
                .await
                .map_err(|s| status_error("cancelling the job", s))?
                .into_inner()
                .job
                .context("the server returned no job")?;
            print_job(&job, json)
        }
    }
}

/// A job as the CLI prints it (text or JSON).
#[derive(Serialize)]
struct JobView {
    id: String,
    state: &'static str,
    customer: Option<i64>,
    attempts: i32,
    scorecard_types: Vec<&'static str>,
    activities: Vec<ActivityView>,
    error: Option<ErrorView>,
    created_at: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
}

#[derive(Serialize)]
struct ActivityView {
    activity: String,
    rows_done: i64,
    rows_estimated: i64,
    batches_done: i64,
    rows_per_second: f64,
    finished: bool,
    checkpoint: String,
}

#[derive(Serialize)]
struct ErrorView {
    code: String,
    message: String,
    retryable: bool,
}

pub(crate) fn state_word(state: i32) -> &'static str {
    match JobState::try_from(state) {
        Ok(JobState::Queued) => "queued",
        Ok(JobState::Running) => "running",
        Ok(JobState::Succeeded) => "succeeded",
        Ok(JobState::Failed) => "failed",
        Ok(JobState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

fn time_text(t: &Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref().and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32)).map(|t| t.to_rfc3339())
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> JobView {
        let types = match job.payload.as_ref().and_then(|p| p.payload.as_ref()) {
            Some(Payload::ReindexConversations(p)) => p
                .reindex_scorecard_types
                .iter()
                .map(|t| match ScorecardTemplateType::try_from(*t) {
                    Ok(ScorecardTemplateType::Conversation) => "conversation",
                    Ok(ScorecardTemplateType::Process) => "process",
                    _ => "unknown",
                })
                .collect(),
            Some(Payload::Audit(_)) | None => Vec::new(),
        };
        JobView {
            id: job.id.clone(),
            state: state_word(job.state),
            customer: (job.customer_id != 0).then_some(job.customer_id),
            attempts: job.attempts,
            scorecard_types: types,
            activities: job
                .progress
                .iter()
                .map(|a| ActivityView {
                    activity: a.activity.clone(),
                    rows_done: a.rows_done,
                    rows_estimated: a.rows_estimated,
                    batches_done: a.batches_done,
                    rows_per_second: a.rows_per_second,
                    finished: a.finished,
                    checkpoint: a.checkpoint.clone(),
                })
                .collect(),
            error: job.error.as_ref().map(|e| ErrorView {
                code: e.code.clone(),
                message: e.message.clone(),
                retryable: e.retryable,
            }),
            created_at: time_text(&job.created_at),
            started_at: time_text(&job.started_at),
            finished_at: time_text(&job.finished_at),
        }
    }
}

fn print_job(job: &Job, json: bool) -> anyhow::Result<()> {
    let view = JobView::from(job);
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!("job        {}", view.id);
    println!("state      {}  (attempts {})", view.state, view.attempts);
    println!("customer   {}", view.customer.map_or("all".to_owned(), |c| c.to_string()));
    if !view.scorecard_types.is_empty() {
        println!("types      {}", view.scorecard_types.join(", "));
    }
    for a in &view.activities {
        println!(
            "  {:28} {:>10} rows{}  {:>6} batches  {:>10.0} rows/s  {}",
            a.activity,
            a.rows_done,
            if a.rows_estimated > 0 { format!(" of {}", a.rows_estimated) } else { String::new() },
            a.batches_done,
            a.rows_per_second,
            if a.finished { "finished" } else { "" }
        );
    }
    if let Some(e) = &view.error {
        println!(
            "error      {} ({}): {}",
            e.code,
            if e.retryable { "retryable" } else { "final" },
            e.message
        );
    }
    Ok(())
}
