//! `scorekeeper reindex` and `scorekeeper jobs list|get|cancel`: JobService
//! through the API, with a progress display for `--wait` (the client, the
//! following and the views are `scorekeeper-client`'s).

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use scorekeeper_client::follow::follow;
use scorekeeper_client::views::job::{JobView, list_text, state_word};
use scorekeeper_client::{Authed, ClientError};
use scorekeeper_proto::coaching::ScorecardTemplateType;
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::*;

use crate::client::ApiArgs;
use crate::scope::ScopeArgs;

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
    /// The customer, and the window (on the time `--time-base` names).
    #[command(flatten)]
    scope: ScopeArgs,
    /// Which time the window applies to.
    #[arg(long, value_enum, default_value = "updated")]
    time_base: TimeBaseArg,
    /// Only these conversations (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    conversation_ids: Vec<i64>,
    /// Page size of both activities: conversations, or process scorecards,
    /// per page (default: the server's settings).
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
    /// Cancel a job (a running one stops at its next checkpoint).
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
    Ok(api.connect(Duration::from_secs(60)).await?.jobs())
}

fn payload(args: &ReindexArgs) -> anyhow::Result<ReindexConversationsPayload> {
    let customer_id = args.scope.customer_id()?.unwrap_or(0);
    let window = args.scope.window()?;
    let batch = args.batch_size.unwrap_or(0);
    Ok(ReindexConversationsPayload {
        customer_id,
        start_time: window.map(|w| to_timestamp(w.0)),
        end_time: window.map(|w| to_timestamp(w.1)),
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

pub async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let mut jobs = client(&args.api).await?;
    let request = CreateJobRequest {
        r#type: JobType::ReindexConversations as i32,
        payload: Some(JobPayload { payload: Some(Payload::ReindexConversations(payload(&args)?)) }),
    };
    let job = jobs
        .create_job(request)
        .await
        .map_err(|s| ClientError::call("creating the reindex job", s))?
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
                .map_err(|s| ClientError::call("listing jobs", s))?
                .into_inner();
            if json {
                let views: Vec<JobView> = list.jobs.iter().map(JobView::from).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                println!("{}", list_text(&list.jobs));
            }
            Ok(())
        }
        JobsCommand::Get { id, api, json } => {
            let job = client(&api)
                .await?
                .get_job(GetJobRequest { id })
                .await
                .map_err(|s| ClientError::call("reading the job", s))?
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
                .map_err(|s| ClientError::call("cancelling the job", s))?
                .into_inner()
                .job
                .context("the server returned no job")?;
            print_job(&job, json)
        }
    }
}

fn print_job(job: &Job, json: bool) -> anyhow::Result<()> {
    let view = JobView::from(job);
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("{}", view.text());
    }
    Ok(())
}
