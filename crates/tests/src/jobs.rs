//! The JobService as the tests drive it: reindex requests, and creating a
//! job, waiting for a state, running one to success, cancelling, each
//! through a customer's [`Jobs`] client ([`crate::Customer::jobs`]).

use std::time::{Duration, Instant};

use scorekeeper_client::Authed;
use scorekeeper_proto::coaching::ScorecardTemplateType as Kind;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::{
    CancelJobRequest, CreateJobRequest, GetJobRequest, Job, JobPayload, JobState, JobType,
    ReindexConversationsPayload,
};
use tonic::Status;

/// The activity names a reindex job reports progress under.
pub const CONVERSATION_ACTIVITY: &str = "reindex_conversations";
pub const PROCESS_ACTIVITY: &str = "reindex_process_scorecards";

/// How long a job may take to reach the state a test waits for.
pub const WITHIN: Duration = Duration::from_secs(30);

/// A JobService client with a customer's (or an admin's) token.
pub type Jobs = JobServiceClient<Authed>;

/// Scorecard types as the reindex payload carries them.
pub fn scorecard_types(types: &[Kind]) -> Vec<i32> {
    types.iter().map(|t| *t as i32).collect()
}

/// A CreateJob request of a reindex with `payload`.
pub fn reindex_request(payload: ReindexConversationsPayload) -> CreateJobRequest {
    CreateJobRequest {
        r#type: JobType::ReindexConversations as i32,
        payload: Some(JobPayload { payload: Some(Payload::ReindexConversations(payload)) }),
    }
}

/// The job a JobService call answered with; panics if the call failed or
/// answered without one.
pub fn answered(call: &str, result: Result<Option<Job>, Status>) -> Job {
    let job = result.unwrap_or_else(|e| panic!("{call} failed: {e:?}"));
    job.unwrap_or_else(|| panic!("{call} answered without the job"))
}

/// CreateJob; the refusal is the caller's to check.
pub async fn create_job(jobs: &mut Jobs, request: CreateJobRequest) -> Result<Job, Status> {
    let result = jobs.create_job(request).await.map(|r| r.into_inner().job);
    result.map(|job| answered("CreateJob", Ok(job)))
}

/// CreateJob, which must succeed.
pub async fn created(jobs: &mut Jobs, request: CreateJobRequest) -> Job {
    answered("CreateJob", create_job(jobs, request).await.map(Some))
}

/// GetJob, which must succeed.
pub async fn get_job(jobs: &mut Jobs, id: &str) -> Job {
    answered("GetJob", jobs.get_job(GetJobRequest { id: id.into() }).await.map(|r| r.into_inner().job))
}

/// CancelJob, which must succeed.
pub async fn cancel_job(jobs: &mut Jobs, id: &str) -> Job {
    answered(
        "CancelJob",
        jobs.cancel_job(CancelJobRequest { id: id.into() }).await.map(|r| r.into_inner().job),
    )
}

/// The job's state; panics on a number the proto does not define.
pub fn state(job: &Job) -> JobState {
    JobState::try_from(job.state)
        .unwrap_or_else(|_| panic!("job {} has an unknown state {}", job.id, job.state))
}

/// Succeeded, failed or cancelled.
pub fn is_terminal(job: &Job) -> bool {
    matches!(state(job), JobState::Succeeded | JobState::Failed | JobState::Cancelled)
}

/// Polls GetJob until `done` holds; fails with the job as last seen if it
/// ends or [`WITHIN`] passes first.
pub async fn wait_for(jobs: &mut Jobs, id: &str, what: &str, done: impl Fn(&Job) -> bool) -> Job {
    let started = Instant::now();
    loop {
        let job = get_job(jobs, id).await;
        if done(&job) {
            return job;
        }
        assert!(!is_terminal(&job), "job {id} ended before it was {what}: {job:?}");
        assert!(started.elapsed() < WITHIN, "job {id} is still not {what} after {WITHIN:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a job and waits until it succeeded; fails with the job's error
/// if it failed or was cancelled.
pub async fn run_job(jobs: &mut Jobs, request: CreateJobRequest, case: &str) -> Job {
    let job = create_job(jobs, request).await.unwrap_or_else(|e| panic!("{case}: CreateJob refused: {e:?}"));
    let job = wait_for(jobs, &job.id, "finished", is_terminal).await;
    assert_eq!(state(&job), JobState::Succeeded, "{case}: the job did not succeed: {:?}", job.error);
    job
}
