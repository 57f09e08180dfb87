//! `JobService`: durable jobs. A customer token creates and sees its own
//! customer's jobs; an admin token may also create jobs for all customers and
//! sees every job.

use chrono::{DateTime, Utc};
use scorekeeper_domain::audit::AuditSpec;
use scorekeeper_domain::limits::MAX_IDS_PER_BATCH;
use scorekeeper_domain::reindex::{ReindexScope, ReindexSpec, TimeBase, TimeWindow};
use scorekeeper_domain::{CustomerId, Invalid, TemplateType};
use scorekeeper_jobs::job::{self as stored, JobFilter};
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::job_service_server::JobService;
use scorekeeper_proto::v1::*;
use scorekeeper_store::tenants::Principal;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::convert::{template_type_from_wire, template_type_to_wire};
use crate::error::{ApiError, ApiResult, respond};
use crate::server::ApiState;
use crate::validate::{self, Checked};

pub struct Jobs(pub ApiState);

/// Largest batch size a payload may ask for.
const MAX_BATCH_SIZE: i32 = 100_000;

/// Which customer's jobs (and stored audits) the caller may see: `None`
/// for an admin (all).
pub(crate) fn visible_customer(principal: Principal) -> Option<CustomerId> {
    (!principal.is_admin).then_some(principal.customer_id)
}

/// The customer a list asks for as `customer_id` (0: no filter), as
/// `principal` may list `what`: a customer token lists its own, whatever
/// it asks for, and asking for another is refused; an admin lists any one
/// customer, or all.
pub(crate) fn listed_customer(
    principal: Principal,
    customer_id: i64,
    what: &str,
) -> Checked<Option<CustomerId>> {
    if customer_id < 0 {
        return Err(Invalid::new("customer_id", "must not be negative"));
    }
    match visible_customer(principal) {
        Some(own) if customer_id == 0 || customer_id == own.0 => Ok(Some(own)),
        Some(_) => Err(Invalid::new("customer_id", format!("a customer token lists only its own {what}"))),
        None => Ok((customer_id > 0).then_some(CustomerId(customer_id))),
    }
}

/// A field of the reindex payload, as the client spells it.
fn payload_field(name: &str) -> String {
    format!("payload.reindex_conversations.{name}")
}

fn reindex_spec(principal: Principal, p: &ReindexConversationsPayload) -> ApiResult<ReindexSpec> {
    let customer_id = match p.customer_id {
        0 if principal.is_admin => None,
        0 => return Err(ApiError::PermissionDenied("only an admin token may reindex all customers")),
        id if id == principal.customer_id.0 || principal.is_admin => {
            Some(CustomerId(validate::id(&payload_field("customer_id"), id)?))
        }
        _ => return Err(ApiError::PermissionDenied("a customer token may only reindex its own customer")),
    };
    Ok(reindex_spec_of_customer(customer_id, p)?)
}

/// The rest of the reindex payload, once the caller may reindex `customer_id`.
fn reindex_spec_of_customer(
    customer_id: Option<CustomerId>,
    p: &ReindexConversationsPayload,
) -> Checked<ReindexSpec> {
    let field = payload_field;
    let window = match (&p.start_time, &p.end_time) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(Invalid::new(field("end_time"), "required with start_time"));
        }
        (None, Some(_)) => {
            return Err(Invalid::new(field("start_time"), "required with end_time"));
        }
        (Some(start), Some(end)) => {
            let start = validate::timestamp(&field("start_time"), start)?;
            let end = validate::timestamp(&field("end_time"), end)?;
            if end <= start {
                return Err(Invalid::new(field("end_time"), "must be after start_time"));
            }
            let base = match validate::known_enum::<ReindexTimeBase>(&field("time_base"), p.time_base, true)?
            {
                // Old clients: the conversation start, as before time bases existed.
                ReindexTimeBase::Unspecified | ReindexTimeBase::ConversationStart => {
                    TimeBase::ConversationStart
                }
                ReindexTimeBase::UpdatedAt => TimeBase::UpdatedAt,
            };
            Some(TimeWindow { start, end, base })
        }
    };
    let conversation_ids =
        validate::conversation_ids(&field("conversation_ids"), &p.conversation_ids, MAX_IDS_PER_BATCH)?;
    let batch = |name: &str, value: i32| -> Checked<Option<u32>> {
        match value {
            0 => Ok(None),
            n if (1..=MAX_BATCH_SIZE).contains(&n) => Ok(Some(n as u32)),
            _ => Err(Invalid::new(field(name), format!("must be in [0, {MAX_BATCH_SIZE}]"))),
        }
    };
    let scorecard_types = p
        .reindex_scorecard_types
        .iter()
        .enumerate()
        .map(|(i, t)| template_type_from_wire(&field(&format!("reindex_scorecard_types[{i}]")), *t))
        .collect::<Checked<Vec<TemplateType>>>()?;
    Ok(ReindexSpec {
        scope: ReindexScope { customer_id, window, conversation_ids },
        scorecard_types,
        conversations_batch_size: batch("conversations_batch_size", p.conversations_batch_size)?,
        process_scorecards_batch_size: batch(
            "process_scorecards_batch_size",
            p.process_scorecards_batch_size,
        )?,
    })
}

/// An audit job's spec: the scope as the Audit call takes it (a customer
/// token audits only its own customer; 0 is all customers, admin tokens
/// only), within the same per-customer limit of audits a minute.
async fn audit_spec(state: &ApiState, principal: Principal, p: &AuditPayload) -> ApiResult<AuditSpec> {
    let request = AuditRequest {
        customer_id: p.customer_id,
        all_customers: p.customer_id == 0,
        start_time: p.start_time,
        end_time: p.end_time,
        repair: p.repair,
    };
    let scope = crate::services::analytics::audit_scope(principal, &request)?;
    crate::services::analytics::admit_audit(state, principal).await?;
    Ok(AuditSpec { scope, repair: p.repair })
}

fn payload_to_wire(job_type: i16, payload: &serde_json::Value) -> Option<JobPayload> {
    if i32::from(job_type) == JobType::Audit as i32 {
        let spec: AuditSpec = serde_json::from_value(payload.clone()).ok()?;
        let window = spec.scope.window;
        return Some(JobPayload {
            payload: Some(Payload::Audit(AuditPayload {
                customer_id: spec.scope.customer_id.map_or(0, |c| c.0),
                start_time: window.map(|w| to_timestamp(w.start)),
                end_time: window.map(|w| to_timestamp(w.end)),
                repair: spec.repair,
            })),
        });
    }
    if i32::from(job_type) != JobType::ReindexConversations as i32 {
        return None;
    }
    let spec: ReindexSpec = serde_json::from_value(payload.clone()).ok()?;
    let window = spec.scope.window;
    Some(JobPayload {
        payload: Some(Payload::ReindexConversations(ReindexConversationsPayload {
            customer_id: spec.scope.customer_id.map_or(0, |c| c.0),
            start_time: window.map(|w| to_timestamp(w.start)),
            end_time: window.map(|w| to_timestamp(w.end)),
            time_base: match window.map(|w| w.base) {
                None => ReindexTimeBase::Unspecified,
                Some(TimeBase::ConversationStart) => ReindexTimeBase::ConversationStart,
                Some(TimeBase::UpdatedAt) => ReindexTimeBase::UpdatedAt,
            } as i32,
            conversation_ids: spec.scope.conversation_ids.iter().map(|c| c.0).collect(),
            conversations_batch_size: spec.conversations_batch_size.map_or(0, |n| n as i32),
            process_scorecards_batch_size: spec.process_scorecards_batch_size.map_or(0, |n| n as i32),
            reindex_scorecard_types: spec.scorecard_types.iter().map(|t| template_type_to_wire(*t)).collect(),
        })),
    })
}

fn state_to_wire(state: stored::JobState) -> JobState {
    match state {
        stored::JobState::Queued => JobState::Queued,
        stored::JobState::Running => JobState::Running,
        stored::JobState::Succeeded => JobState::Succeeded,
        stored::JobState::Failed => JobState::Failed,
        stored::JobState::Cancelled => JobState::Cancelled,
    }
}

/// What a job failure with `code` says to a customer token: the error
/// chain may name internal databases, tables and servers (a ClickHouse
/// exception does), so a customer gets a sentence per stable code and the
/// correlation id that finds the chain in the server log.
fn customer_message(code: &str) -> &'static str {
    match code {
        "postgres" => "the database failed while the job ran",
        "clickhouse" => "the analytics store failed while the job ran",
        "out_of_mirror_range" => {
            "a row's time lies outside what analytics can hold; an operator must correct it"
        }
        "invalid_payload" => "the job's payload could not be read",
        "invalid_checkpoint" => {
            "the job's stored checkpoint could not be read; create a new job for this range"
        }
        "invalid" => "the job's input was refused",
        _ => "the job failed",
    }
}

/// A stored failure as `principal` may see it: the full chain for an
/// admin token, a safe sentence for a customer token; the code, whether it
/// may pass and the correlation id for both.
fn error_to_wire(error: &stored::JobError, principal: Principal) -> JobError {
    let correlation_id = error.correlation_id().unwrap_or_default().to_owned();
    let message = match (principal.is_admin, correlation_id.is_empty()) {
        (true, _) => error.message.clone(),
        (false, true) => customer_message(&error.code).to_owned(),
        (false, false) => format!("{} (correlation id {correlation_id})", customer_message(&error.code)),
    };
    JobError { code: error.code.clone(), message, retryable: error.retryable, correlation_id }
}

/// The job as the API answers it. `ActivityProgress.batches_done` is
/// deprecated on the wire but still filled, with the meaning it always had
/// (checkpoint commits), for clients built before `pages_done` and
/// `checkpoints_done`.
/// A failure shows as [`error_to_wire`] says for `principal`.
#[allow(deprecated)]
fn job_to_wire(job: &stored::Job, principal: Principal) -> Job {
    let time = |t: Option<DateTime<Utc>>| t.map(to_timestamp);
    Job {
        id: job.id.to_string(),
        customer_id: job.customer_id.map_or(0, |c| c.0),
        r#type: i32::from(job.job_type),
        payload: payload_to_wire(job.job_type, &job.payload),
        state: state_to_wire(job.state) as i32,
        attempts: job.attempts_made(),
        progress: job
            .activities
            .iter()
            .map(|a| ActivityProgress {
                activity: a.activity.clone(),
                rows_done: a.rows_done,
                pages_done: a.pages_done,
                checkpoints_done: a.checkpoints_done,
                batches_done: a.checkpoints_done,
                rows_per_second: a.rows_per_second(),
                checkpoint: a.checkpoint.as_ref().map(ToString::to_string).unwrap_or_default(),
                finished: a.finished,
                rows_estimated: a.rows_estimated,
                partitions: a.partitions.iter().map(|p| partition_to_wire(p, principal)).collect(),
                partitions_done: i32::try_from(a.partitions_done()).unwrap_or(i32::MAX),
                partitions_total: i32::try_from(a.partitions.len()).unwrap_or(i32::MAX),
            })
            .collect(),
        error: job.error.as_ref().map(|e| error_to_wire(e, principal)),
        created_at: Some(to_timestamp(job.created_at)),
        started_at: time(job.started_at),
        finished_at: time(job.finished_at),
    }
}

/// A partition as the API answers it. Which worker holds it names a host
/// of the operator's: admin tokens only.
fn partition_to_wire(p: &stored::PartitionProgress, principal: Principal) -> PartitionProgress {
    PartitionProgress {
        index: p.n,
        state: p.state.as_str().to_owned(),
        rows_done: p.rows_done,
        rows_estimated: p.rows_estimated,
        pages_done: p.pages_done,
        rows_per_second: p.rows_per_second(),
        worker: if principal.is_admin { p.lease_owner.clone().unwrap_or_default() } else { String::new() },
        attempts: p.attempts,
        range: p.range.to_string(),
        checkpoint: p.checkpoint.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

fn job_id(field: &str, text: &str) -> Checked<Uuid> {
    Uuid::parse_str(text).map_err(|_| Invalid::new(field, "not a job id"))
}

/// Page tokens of ListJobs: `<created_at micros>:<id>` of the last job.
fn page_token(job: &stored::Job) -> String {
    format!("{}:{}", job.created_at.timestamp_micros(), job.id)
}

fn parse_page_token(token: &str) -> Checked<Option<(DateTime<Utc>, Uuid)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Invalid::new("page_token", "not a token this server issued");
    let (micros, id) = token.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    // A time Postgres cannot hold would fail there, as INTERNAL.
    validate::timestamp("page_token", &to_timestamp(at)).map_err(|_| bad())?;
    Ok(Some((at, Uuid::parse_str(id).map_err(|_| bad())?)))
}

/// What a ListJobs asks for: the filter (a customer token sees only its own
/// customer's jobs), the page size and where the page starts.
struct JobsPage {
    filter: JobFilter,
    size: usize,
    after: Option<(DateTime<Utc>, Uuid)>,
}

fn jobs_page(principal: Principal, r: &ListJobsRequest) -> Checked<JobsPage> {
    let state = match validate::known_enum::<JobState>("state", r.state, true)? {
        JobState::Unspecified => None,
        JobState::Queued => Some(stored::JobState::Queued),
        JobState::Running => Some(stored::JobState::Running),
        JobState::Succeeded => Some(stored::JobState::Succeeded),
        JobState::Failed => Some(stored::JobState::Failed),
        JobState::Cancelled => Some(stored::JobState::Cancelled),
    };
    let job_type = match validate::known_enum::<JobType>("type", r.r#type, true)? {
        JobType::Unspecified => None,
        t => Some(t as i16),
    };
    let customer_id = listed_customer(principal, r.customer_id, "jobs")?;
    let (size, _) = validate::page(r.page_size, "")?;
    Ok(JobsPage {
        filter: JobFilter { state, job_type, customer_id },
        size,
        after: parse_page_token(&r.page_token)?,
    })
}

#[tonic::async_trait]
impl JobService for Jobs {
    async fn create_job(
        &self,
        request: Request<CreateJobRequest>,
    ) -> Result<Response<CreateJobResponse>, Status> {
        respond(async {
            let principal = self.0.auth.principal(&request).await?;
            create_job(&self.0, principal, request.get_ref()).await
        })
        .await
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<GetJobResponse>, Status> {
        respond(async {
            let principal = self.0.auth.principal(&request).await?;
            get_job(&self.0, principal, request.get_ref()).await
        })
        .await
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        respond(async {
            let principal = self.0.auth.principal(&request).await?;
            list_jobs(&self.0, principal, request.get_ref()).await
        })
        .await
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        respond(async {
            let principal = self.0.auth.principal(&request).await?;
            cancel_job(&self.0, principal, request.get_ref()).await
        })
        .await
    }
}

pub(crate) async fn create_job(
    state: &ApiState,
    principal: Principal,
    r: &CreateJobRequest,
) -> ApiResult<CreateJobResponse> {
    let job_type = validate::known_enum::<JobType>("type", r.r#type, false)?;
    if !i16::try_from(r.r#type).is_ok_and(|t| state.jobs.is_registered(t)) {
        return Err(Invalid::new(
            "type",
            format!("job type {} is not registered on this server", job_type.as_str_name()),
        )
        .into());
    }
    let (new, customer, customer_field) = match r.payload.as_ref().and_then(|p| p.payload.as_ref()) {
        Some(Payload::ReindexConversations(p)) if job_type == JobType::ReindexConversations => {
            let spec = reindex_spec(principal, p)?;
            // The one builder of reindex jobs, as the schedule's and the
            // audit's repair: type, activities and attempts from the job type.
            let customer = spec.scope.customer_id;
            (scorekeeper_sync::reindex::new_job(&spec, customer), customer, payload_field("customer_id"))
        }
        Some(Payload::Audit(p)) if job_type == JobType::Audit => {
            let spec = audit_spec(state, principal, p).await?;
            let customer = spec.scope.customer_id;
            (
                scorekeeper_sync::audit::job::new_job(&spec, customer),
                customer,
                "payload.audit.customer_id".into(),
            )
        }
        _ => {
            return Err(Invalid::new(
                "payload",
                format!("a {} job needs its payload", job_type.as_str_name()),
            )
            .into());
        }
    };
    // An admin may name any customer; one that does not exist is the
    // caller's mistake, not a server failure.
    if let Some(customer) = customer
        && !state.store.customer_exists(customer).await?
    {
        return Err(Invalid::new(customer_field, format!("unknown customer {customer}")).into());
    }
    let (job, _) = if principal.is_admin {
        state.job_store.create_job(&new).await?
    } else {
        let limit = state.limits.max_queued_jobs_per_customer;
        state.job_store.create_job_within(&new, limit).await?.ok_or_else(|| {
            ApiError::ResourceExhausted(format!(
                "this customer already has {limit} queued jobs (JOBS_MAX_QUEUED_PER_CUSTOMER); \
                 wait for them to start or cancel some"
            ))
        })?
    };
    Ok(CreateJobResponse { job: Some(job_to_wire(&job, principal)) })
}

pub(crate) async fn get_job(
    state: &ApiState,
    principal: Principal,
    r: &GetJobRequest,
) -> ApiResult<GetJobResponse> {
    let id = job_id("id", &r.id)?;
    let job = state
        .job_store
        .get_job(id, visible_customer(principal))
        .await?
        .ok_or(ApiError::NotFound { what: "job", id: id.to_string() })?;
    Ok(GetJobResponse { job: Some(job_to_wire(&job, principal)) })
}

pub(crate) async fn list_jobs(
    state: &ApiState,
    principal: Principal,
    r: &ListJobsRequest,
) -> ApiResult<ListJobsResponse> {
    let JobsPage { filter, size, after } = jobs_page(principal, r)?;
    let jobs = state.job_store.list_jobs(&filter, after, size).await?;
    let next_page_token = match jobs.last() {
        Some(last) if jobs.len() == size => page_token(last),
        _ => String::new(),
    };
    Ok(ListJobsResponse {
        jobs: jobs.iter().map(|job| job_to_wire(job, principal)).collect(),
        next_page_token,
    })
}

pub(crate) async fn cancel_job(
    state: &ApiState,
    principal: Principal,
    r: &CancelJobRequest,
) -> ApiResult<CancelJobResponse> {
    let id = job_id("id", &r.id)?;
    let job = state
        .job_store
        .request_cancel(id, visible_customer(principal))
        .await?
        .ok_or(ApiError::NotFound { what: "job", id: id.to_string() })?;
    Ok(CancelJobResponse { job: Some(job_to_wire(&job, principal)) })
}
