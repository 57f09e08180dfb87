//! JobService end to end: CreateJob, GetJob, ListJobs and CancelJob refuse
//! bad input with INVALID_ARGUMENT naming the field (creating nothing), hide
//! other customers' jobs, stay compatible with old clients' bytes (no
//! scorecard types; the folded process payload, field 59), cancel queued and
//! running jobs. (How jobs fare under ClickHouse errors and outages is in
//! `job_faults`.)

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use scorekeeper_jobs::JobFilter;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::{
    AuditPayload, CancelJobRequest, CreateJobRequest, GetJobRequest, Job, JobPayload, JobState, JobType,
    ListJobsRequest, ReindexConversationsPayload, ReindexTimeBase,
};
use scorekeeper_sync::reindex::ReindexSettings;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::fixtures::{T0, conversations, ts};
use scorekeeper_tests::jobs::{
    CONVERSATION_ACTIVITY, Jobs, cancel_job, create_job, created, get_job, is_terminal, reindex_request,
    run_job, state, wait_for,
};
use scorekeeper_tests::mirror::{assert_clickhouse_holds, clickhouse_rows};
use scorekeeper_tests::rejection::named_field;
use scorekeeper_tests::world::{Truth, World};
use scorekeeper_tests::{Customer, TestEnv};
use tonic::{Code, Status};

/// A well-formed job id no job has.
const UNKNOWN_JOB: &str = "5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e";

fn own_reindex(customer: &Customer) -> CreateJobRequest {
    reindex_request(ReindexConversationsPayload { customer_id: customer.id.0, ..Default::default() })
}

fn activities(job: &Job) -> Vec<&str> {
    job.progress.iter().map(|p| p.activity.as_str()).collect()
}

/// The call failed with `code`; returns the status.
fn refused<T: Debug>(case: &str, result: Result<T, Status>, code: Code) -> Status {
    let status = result.expect_err(&format!("{case}: accepted, expected {code:?}"));
    assert_eq!(status.code(), code, "{case}: wrong code (message {:?})", status.message());
    status
}

/// The call failed with INVALID_ARGUMENT naming `field`.
fn assert_invalid<T: Debug>(case: &str, result: Result<T, Status>, field: &str) {
    let status = refused(case, result, Code::InvalidArgument);
    assert_eq!(
        named_field(&status),
        field,
        "{case}: the message {:?} does not name the field",
        status.message()
    );
}

/// No job and no activity row exists.
async fn assert_no_jobs(env: &TestEnv, case: &str) {
    let jobs = env.jobs.list_jobs(&JobFilter::default(), None, 10_000).await.expect("listing the jobs");
    let activities: usize = jobs.iter().map(|j| j.activities.len()).sum();
    let rows = (jobs.len(), activities);
    assert_eq!(rows, (0, 0), "{case}: a refused request created (jobs, activities)");
}

fn env_without_worker() -> Options {
    Options { worker: false, ..Default::default() }
}

/// `JobPayload` bytes of the folded process-scorecard payload (reserved
/// field 59) holding `{ customer_id: 42 }`, as an old client sends them.
const FIELD_59_PAYLOAD: [u8; 5] = [0xDA, 0x03, 0x02, 0x08, 0x2A];

#[tokio::test]
async fn create_job_refuses_bad_requests_and_creates_nothing() {
    let env = TestEnv::start_with(env_without_worker()).await;
    let customer = env.customer("acme").await;
    let field = |name: &str| format!("payload.reindex_conversations.{name}");
    let base = || ReindexConversationsPayload { customer_id: customer.id.0, ..Default::default() };
    let with_type = |r#type: i32| CreateJobRequest { r#type, ..own_reindex(&customer) };
    let window = |start: i64, end: Option<i64>| ReindexConversationsPayload {
        start_time: ts(start),
        end_time: end.and_then(ts),
        ..base()
    };
    let old_process_payload = JobPayload::decode(&FIELD_59_PAYLOAD[..]).expect("decoding field 59");
    let cases: Vec<(&str, CreateJobRequest, String)> = vec![
        ("type UNSPECIFIED", with_type(JobType::Unspecified as i32), "type".into()),
        ("unknown type 99", with_type(99), "type".into()),
        ("reserved type 61 (the folded process job)", with_type(61), "type".into()),
        ("no payload", CreateJobRequest { payload: None, ..own_reindex(&customer) }, "payload".into()),
        (
            "a payload with no oneof set",
            CreateJobRequest { payload: Some(JobPayload { payload: None }), ..own_reindex(&customer) },
            "payload".into(),
        ),
        (
            "only the folded process payload (field 59)",
            CreateJobRequest { payload: Some(old_process_payload), ..own_reindex(&customer) },
            "payload".into(),
        ),
        (
            "scorecard type UNSPECIFIED",
            reindex_request(ReindexConversationsPayload { reindex_scorecard_types: vec![1, 0], ..base() }),
            field("reindex_scorecard_types[1]"),
        ),
        (
            "unknown scorecard type 7",
            reindex_request(ReindexConversationsPayload { reindex_scorecard_types: vec![7], ..base() }),
            field("reindex_scorecard_types[0]"),
        ),
        ("start without end", reindex_request(window(T0, None)), field("end_time")),
        (
            "end without start",
            reindex_request(ReindexConversationsPayload { end_time: ts(T0), ..base() }),
            field("start_time"),
        ),
        ("end before start", reindex_request(window(T0, Some(T0 - 1))), field("end_time")),
        ("empty window", reindex_request(window(T0, Some(T0))), field("end_time")),
        (
            "unknown time base",
            reindex_request(ReindexConversationsPayload { time_base: 9, ..window(T0, Some(T0 + 60)) }),
            field("time_base"),
        ),
        (
            "negative conversations batch size",
            reindex_request(ReindexConversationsPayload { conversations_batch_size: -1, ..base() }),
            field("conversations_batch_size"),
        ),
        (
            "process batch size over the limit",
            reindex_request(ReindexConversationsPayload { process_scorecards_batch_size: 100_001, ..base() }),
            field("process_scorecards_batch_size"),
        ),
        (
            "a conversation id that is not positive",
            reindex_request(ReindexConversationsPayload { conversation_ids: vec![5, 0], ..base() }),
            field("conversation_ids[1]"),
        ),
    ];
    let mut api = customer.jobs();
    for (case, request, field) in cases {
        assert_invalid(case, create_job(&mut api, request).await, &field);
        assert_no_jobs(&env, case).await;
    }
    // An admin may name any customer, but not one that does not exist.
    let mut admin = env.admin(&customer).await.jobs();
    let unknown =
        reindex_request(ReindexConversationsPayload { customer_id: customer.id.0 + 1000, ..base() });
    assert_invalid(
        "an admin naming an unknown customer",
        create_job(&mut admin, unknown).await,
        &field("customer_id"),
    );
    assert_no_jobs(&env, "an admin naming an unknown customer").await;
    // The same API accepts a valid request, so the refusals above are not
    // a broken service.
    let ok = ReindexConversationsPayload {
        time_base: ReindexTimeBase::UpdatedAt as i32,
        ..window(T0, Some(T0 + 1))
    };
    created(&mut api, reindex_request(ok)).await;
}

#[tokio::test]
async fn get_list_and_cancel_refuse_bad_ids_and_tokens() {
    let env = TestEnv::start_with(env_without_worker()).await;
    let customer = env.customer("acme").await;
    let mut api = customer.jobs();
    for id in ["not-a-job-id", "", "12345"] {
        assert_invalid(&format!("GetJob {id:?}"), api.get_job(GetJobRequest { id: id.into() }).await, "id");
        assert_invalid(
            &format!("CancelJob {id:?}"),
            api.cancel_job(CancelJobRequest { id: id.into() }).await,
            "id",
        );
    }
    refused(
        "GetJob of an unknown id",
        api.get_job(GetJobRequest { id: UNKNOWN_JOB.into() }).await,
        Code::NotFound,
    );
    refused(
        "CancelJob of an unknown id",
        api.cancel_job(CancelJobRequest { id: UNKNOWN_JOB.into() }).await,
        Code::NotFound,
    );
    let cases = [
        (
            "a page token that is not one",
            ListJobsRequest { page_token: "garbage".into(), ..Default::default() },
            "page_token",
        ),
        (
            "a page token with a bad id",
            ListJobsRequest { page_token: "12:x".into(), ..Default::default() },
            "page_token",
        ),
        (
            "a page token with a bad time",
            ListJobsRequest { page_token: format!("x:{UNKNOWN_JOB}"), ..Default::default() },
            "page_token",
        ),
        ("a negative page size", ListJobsRequest { page_size: -1, ..Default::default() }, "page_size"),
        ("a page size over the limit", ListJobsRequest { page_size: 501, ..Default::default() }, "page_size"),
        ("an unknown state", ListJobsRequest { state: 42, ..Default::default() }, "state"),
        ("an unknown type", ListJobsRequest { r#type: 99, ..Default::default() }, "type"),
        ("a negative customer", ListJobsRequest { customer_id: -1, ..Default::default() }, "customer_id"),
    ];
    for (case, request, field) in cases {
        assert_invalid(case, api.list_jobs(request).await, field);
    }
    assert_no_jobs(&env, "bad ids").await;
}

async fn list_ids(jobs: &mut Jobs, request: ListJobsRequest) -> BTreeSet<String> {
    let listed = jobs.list_jobs(request).await.expect("listing jobs").into_inner();
    listed.jobs.into_iter().map(|j| j.id).collect()
}

fn ids<const N: usize>(jobs: [&Job; N]) -> BTreeSet<String> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

#[tokio::test]
async fn customers_see_only_their_own_jobs_and_admins_see_all() {
    let env = TestEnv::start_with(env_without_worker()).await;
    let (a, b) = (env.customer("acme").await, env.customer("globex").await);
    let admin = env.admin(&a).await;
    let (mut as_a, mut as_b, mut as_admin) = (a.jobs(), b.jobs(), admin.jobs());
    let of_a = created(&mut as_a, own_reindex(&a)).await;
    let of_b = created(&mut as_b, own_reindex(&b)).await;
    let everyone = created(&mut as_admin, reindex_request(ReindexConversationsPayload::default())).await;
    assert_eq!((of_a.customer_id, everyone.customer_id), (a.id.0, 0), "jobs carry their customer (0: all)");

    let id = |job: &Job| GetJobRequest { id: job.id.clone() };
    refused("B gets A's job", as_b.get_job(id(&of_a)).await, Code::NotFound);
    refused(
        "B cancels A's job",
        as_b.cancel_job(CancelJobRequest { id: of_a.id.clone() }).await,
        Code::NotFound,
    );
    assert_eq!(
        state(&get_job(&mut as_a, &of_a.id).await),
        JobState::Queued,
        "B's cancel must not touch A's job"
    );
    refused("A gets the all-customers job", as_a.get_job(id(&everyone)).await, Code::NotFound);

    assert_eq!(
        list_ids(&mut as_a, ListJobsRequest::default()).await,
        ids([&of_a]),
        "A lists its own jobs only"
    );
    assert_eq!(
        list_ids(&mut as_b, ListJobsRequest::default()).await,
        ids([&of_b]),
        "B lists its own jobs only"
    );
    assert_invalid(
        "B lists A's jobs",
        as_b.list_jobs(ListJobsRequest { customer_id: a.id.0, ..Default::default() }).await,
        "customer_id",
    );
    let all = ids([&of_a, &of_b, &everyone]);
    assert_eq!(list_ids(&mut as_admin, ListJobsRequest::default()).await, all, "an admin lists every job");
    assert_eq!(
        list_ids(&mut as_admin, ListJobsRequest { customer_id: b.id.0, ..Default::default() }).await,
        ids([&of_b]),
        "an admin filters by customer"
    );
    assert_eq!(get_job(&mut as_admin, &of_b.id).await.id, of_b.id, "an admin gets any job");

    // Pages of one: every job exactly once, then no token.
    let (mut seen, mut token) = (Vec::new(), String::new());
    loop {
        let page = as_admin
            .list_jobs(ListJobsRequest { page_size: 1, page_token: token.clone(), ..Default::default() })
            .await
            .expect("listing a page")
            .into_inner();
        seen.extend(page.jobs.into_iter().map(|j| j.id));
        assert!(seen.len() <= all.len() + 1, "paging does not end: {seen:?}");
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), all.len(), "paging repeats a job: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all, "paging loses a job");
}

/// CreateJobRequest bytes as a client built before `reindex_scorecard_types`
/// (field 13) sends them: type 1 and a payload of just the customer.
fn old_client_request(customer_id: i64) -> Vec<u8> {
    let mut reindex = Vec::new();
    encode_key(1, WireType::Varint, &mut reindex); // customer_id
    encode_varint(customer_id as u64, &mut reindex);
    let mut payload = Vec::new();
    encode_key(1, WireType::LengthDelimited, &mut payload); // reindex_conversations
    encode_varint(reindex.len() as u64, &mut payload);
    payload.extend(reindex);
    let mut request = Vec::new();
    encode_key(1, WireType::Varint, &mut request); // type
    encode_varint(JobType::ReindexConversations as u64, &mut request);
    encode_key(2, WireType::LengthDelimited, &mut request); // payload
    encode_varint(payload.len() as u64, &mut request);
    request.extend(payload);
    request
}

#[tokio::test]
async fn an_old_client_without_scorecard_types_gets_the_conversation_reindex() {
    let (env, world) = World::start().await;
    let a = &world.a;
    let bytes = old_client_request(a.customer.id.0);
    let without_types =
        reindex_request(ReindexConversationsPayload { customer_id: a.customer.id.0, ..Default::default() });
    assert_eq!(without_types.encode_to_vec(), bytes, "prost leaves an empty field 13 out, as old clients do");
    let request = CreateJobRequest::decode(&bytes[..]).expect("old bytes decode as the current message");
    assert_eq!(request, without_types);

    let case = "old client";
    let job = run_job(&mut a.customer.jobs(), request, case).await;
    assert_eq!(activities(&job), [CONVERSATION_ACTIVITY], "{case}: the conversation activity only");
    match job.payload.and_then(|p| p.payload) {
        Some(Payload::ReindexConversations(p)) => {
            assert!(p.reindex_scorecard_types.is_empty(), "{case}: the payload is shown as given: {p:?}")
        }
        other => panic!("{case}: GetJob shows payload {other:?}"),
    }
    let truth = Truth::read(&env, &world).await;
    assert_clickhouse_holds(&env, case, &truth.scope(&a.conversations, &[])).await;

    // The job ran as partitions; which worker ran them names a host of the
    // operator's, shown to admin tokens only.
    let seen = get_job(&mut a.customer.jobs(), &job.id).await;
    let partitions: Vec<_> = seen.progress.iter().flat_map(|p| &p.partitions).collect();
    assert!(!partitions.is_empty(), "{seen:?}");
    assert!(partitions.iter().all(|p| p.state == "succeeded" && p.worker.is_empty()), "{partitions:?}");
    let as_admin = get_job(&mut env.admin(&a.customer).await.jobs(), &job.id).await;
    assert!(
        as_admin.progress.iter().flat_map(|p| &p.partitions).all(|p| !p.worker.is_empty()),
        "{as_admin:?}"
    );
    assert_eq!(seen.progress[0].partitions_done, seen.progress[0].partitions_total);
}

#[test]
fn the_reserved_process_payload_field_59_is_skipped() {
    let mut key = Vec::new();
    encode_key(59, WireType::LengthDelimited, &mut key);
    assert_eq!(key, FIELD_59_PAYLOAD[..2], "the key of field 59, length-delimited");
    let alone = JobPayload::decode(&FIELD_59_PAYLOAD[..]).expect("field 59 alone decodes");
    assert_eq!(alone.payload, None, "field 59 is unknown, so skipped");

    let mut with_reindex = FIELD_59_PAYLOAD.to_vec();
    with_reindex.extend([0x0A, 0x02, 0x08, 0x2A]); // reindex_conversations { customer_id: 42 }
    let both = JobPayload::decode(&with_reindex[..]).expect("field 59 next to field 1 decodes");
    let expected = ReindexConversationsPayload { customer_id: 42, ..Default::default() };
    assert_eq!(both.payload, Some(Payload::ReindexConversations(expected)), "the known field survives");
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once() {
    let env = TestEnv::start_with(env_without_worker()).await;
    let customer = env.customer("acme").await;
    let mut api = customer.jobs();
    let job = created(&mut api, own_reindex(&customer)).await;
    assert_eq!(state(&job), JobState::Queued);
    let cancelled = cancel_job(&mut api, &job.id).await;
    assert_eq!(state(&cancelled), JobState::Cancelled, "CancelJob of a queued job: {cancelled:?}");
    assert!(cancelled.finished_at.is_some(), "a cancelled job has finished: {cancelled:?}");
    assert_eq!(get_job(&mut api, &job.id).await, cancelled, "GetJob agrees with CancelJob");
    assert_eq!(cancel_job(&mut api, &job.id).await, cancelled, "cancelling again changes nothing");
    let by_state = |state: JobState| ListJobsRequest { state: state as i32, ..Default::default() };
    assert_eq!(list_ids(&mut api, by_state(JobState::Cancelled)).await, ids([&job]));
    assert!(list_ids(&mut api, by_state(JobState::Queued)).await.is_empty(), "nothing is left queued");
}

fn rows_done(job: &Job) -> i64 {
    job.progress.iter().map(|p| p.rows_done).sum()
}

#[tokio::test]
async fn a_running_job_stops_at_a_batch_boundary_when_cancelled() {
    // A commit per page: the job must stop at one, not run to the end.
    let reindex = ReindexSettings { write_rows: 1, ..ReindexSettings::default() };
    let env = TestEnv::start_with(Options { reindex, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let total = conversations(&customer, 200).await.len() as i64;
    let mut api = customer.jobs();
    let one_at_a_time = reindex_request(ReindexConversationsPayload {
        customer_id: customer.id.0,
        conversations_batch_size: 1,
        ..Default::default()
    });
    let job = created(&mut api, one_at_a_time).await;
    wait_for(&mut api, &job.id, "running with progress", |j| rows_done(j) > 0).await;
    cancel_job(&mut api, &job.id).await;
    let stopped = wait_for(&mut api, &job.id, "finished", is_terminal).await;
    assert_eq!(state(&stopped), JobState::Cancelled, "the cancelled job: {stopped:?}");
    let done = rows_done(&stopped);
    assert!(done < total, "the job ran to the end ({done} of {total} rows) instead of stopping");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = get_job(&mut api, &job.id).await;
    assert_eq!(later.progress, stopped.progress, "progress still moves after the cancel");
    let written = env.clickhouse_row_count("conversations").await as i64;
    assert!(
        (done..=done + 1).contains(&written),
        "ClickHouse holds {written} conversations; the job recorded {done} (one unrecorded batch at most)"
    );

    // A finished job is left as it is.
    let first = clickhouse_rows(&env).await.conversations.first().map(|c| c.id).expect("a conversation");
    let small = reindex_request(ReindexConversationsPayload {
        customer_id: customer.id.0,
        conversation_ids: vec![first],
        ..Default::default()
    });
    let finished = run_job(&mut api, small, "a small job").await;
    assert_eq!(cancel_job(&mut api, &finished.id).await, finished, "cancelling a finished job changes it");
}

fn audit_request(customer_id: i64, repair: bool) -> CreateJobRequest {
    CreateJobRequest {
        r#type: JobType::Audit as i32,
        payload: Some(JobPayload {
            payload: Some(Payload::Audit(AuditPayload { customer_id, repair, ..Default::default() })),
        }),
    }
}

/// CreateJob takes audit jobs (the console starts its audits and repairs
/// so) under the Audit call's rules: a customer token audits only its own
/// customer, all customers (0) only an admin, a window needs both ends, and
/// the job answers with its payload and activities.
#[tokio::test]
async fn audit_jobs_are_created_under_the_audit_calls_rules() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let acme = env.customer("acme").await;
    let beta = env.customer("beta").await;
    let mut jobs = acme.jobs();

    refused(
        "all customers from a customer token",
        create_job(&mut jobs, audit_request(0, false)).await,
        Code::PermissionDenied,
    );
    refused(
        "another customer",
        create_job(&mut jobs, audit_request(beta.id.0, false)).await,
        Code::PermissionDenied,
    );
    let mut half = audit_request(acme.id.0, false);
    if let Some(JobPayload { payload: Some(Payload::Audit(p)) }) = half.payload.as_mut() {
        p.start_time = ts(T0);
    }
    assert_invalid("a window without its end", create_job(&mut jobs, half).await, "end_time");
    assert_no_jobs(&env, "refused audit jobs").await;

    let job = created(&mut jobs, audit_request(acme.id.0, true)).await;
    assert_eq!(job.r#type, JobType::Audit as i32);
    assert_eq!(activities(&job), ["audit", "repair", "verify"]);
    match job.payload.and_then(|p| p.payload) {
        Some(Payload::Audit(p)) => assert_eq!((p.customer_id, p.repair), (acme.id.0, true)),
        other => panic!("the audit job answered with payload {other:?}"),
    }
    let admin = env.admin(&acme).await;
    let all = created(&mut admin.jobs(), audit_request(0, false)).await;
    assert_eq!((all.customer_id, activities(&all)), (0, vec!["audit"]));
    refused(
        "an unknown customer",
        create_job(&mut admin.jobs(), audit_request(999_999, false)).await,
        Code::InvalidArgument,
    );
}
