//! Generated requests through the real server. Three properties:
//!
//! * every RPC of every service, on wild requests (hostile text, any
//!   number, unknown enums, ids that exist or not), answers from a closed
//!   set of codes, never INTERNAL, UNKNOWN or a dropped connection; an
//!   INVALID_ARGUMENT names a field of that request type (checked against
//!   the compiled descriptors);
//! * valid requests with one field broken are INVALID_ARGUMENT naming
//!   exactly that field and write nothing: Postgres (the bad_input
//!   fingerprint plus the job tables) and ClickHouse stay as they were;
//! * job payloads, as arbitrary bytes and as mutated valid encodings,
//!   decode into a request the server judges cleanly or fail to decode; the
//!   payload stored as JSON (what `sync::reindex` reads back), arbitrary or
//!   mutated, gives the activities of a valid spec or a clean error.
//!
//! The pure checks behind these are fuzzed much harder, without a server,
//! in `crates/api/src/convert/props.rs`. Each property prints its case
//! count; `PROPTEST_CASES=N` runs N cases of each instead.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use prost::Message as _;
use prost::bytes::{Buf, BufMut};
use scorekeeper_domain::limits::{MAX_MESSAGE_TEXT_BYTES, MAX_NAME_BYTES, MAX_PATTERN_BYTES};
use scorekeeper_domain::reindex::ReindexSpec;
use scorekeeper_proto::coaching as pb;
use scorekeeper_proto::v1;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_service::TenantLimits;
use scorekeeper_sync::reindex::{JOB_TYPE, ReindexSettings};
use scorekeeper_tests::env::Options;
use scorekeeper_tests::fixtures::*;
use scorekeeper_tests::jobs::{Jobs, reindex_request};
use scorekeeper_tests::rejection::{Call, Expect, assert_rejected, named_field};
use scorekeeper_tests::snapshot::Snapshot;
use scorekeeper_tests::{Customer, TestEnv};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

mod broken;
mod generate;
mod payloads;
mod schema;
mod wild;

use generate::*;
use schema::judge;

/// Cases of a property: its default, or `PROPTEST_CASES` when set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the async `test` on `count` generated values; on failure shrinks
/// (each step calls the server again) and panics with the smallest value
/// that still fails. Returns the count, which the caller prints.
async fn run_cases<S, F, Fut>(name: &str, count: u32, strategy: S, test: F) -> u32
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    for _ in 0..count {
        let mut tree = strategy.new_tree(&mut runner).expect("a generated value");
        let Err(error) = test(tree.current()).await else { continue };
        let mut smallest = (format!("{:?}", tree.current()), error);
        for _ in 0..200 {
            if !tree.simplify() {
                break;
            }
            match test(tree.current()).await {
                Err(error) => smallest = (format!("{:?}", tree.current()), error),
                Ok(()) if !tree.complicate() => break,
                Ok(()) => {}
            }
        }
        panic!("{name}: {}\nsmallest failing input: {}", smallest.1, shorten(&smallest.0));
    }
    eprintln!("property {name}: {count} cases");
    count
}

/// How often each answer came, for the printed summary.
#[derive(Debug, Default)]
struct Tally(std::sync::Mutex<BTreeMap<String, u32>>);

impl Tally {
    fn count(&self, result: &Result<(), Status>) {
        self.note(match result {
            Ok(()) => "OK".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        });
    }

    fn note(&self, key: String) {
        *self.0.lock().expect("an unpoisoned tally").entry(key).or_default() += 1;
    }

    fn print(&self, what: &str) {
        eprintln!("  {what}: {:?}", self.0.lock().expect("an unpoisoned tally"));
    }
}

fn shorten(text: &str) -> String {
    if text.len() <= 600 {
        return text.to_owned();
    }
    let cut = (0..=600).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    format!("{}… ({} bytes)", &text[..cut], text.len())
}
// ---------------------------------------------------------------------------
// The world the requests refer to.

struct World {
    customer: Customer,
    conv_template: pb::ScorecardTemplate,
    proc_template: pb::ScorecardTemplate,
    conversations: Vec<v1::Conversation>,
    scorecard: pb::Scorecard,
}

impl World {
    async fn build(env: &TestEnv) -> World {
        let customer = env.customer("fuzz").await;
        let conv_template = conversation_template(&customer).await;
        let proc_template = process_template(&customer).await;
        let conversations = conversations(&customer, 3).await;
        let scorecard = create_scorecard(
            &customer,
            conversation_scorecard(&conv_template, conversations[0].id, &[4.0, 7.0]),
        )
        .await;
        env.outbox_drained(std::time::Duration::from_secs(20)).await.expect("the world reaches ClickHouse");
        World { customer, conv_template, proc_template, conversations, scorecard }
    }

    fn conversation_ids(&self) -> Vec<i64> {
        self.conversations.iter().map(|c| c.id).collect()
    }

    fn template_ids(&self) -> Vec<i64> {
        vec![self.conv_template.id, self.proc_template.id]
    }

    fn criterion_ids(&self) -> Vec<i64> {
        self.conv_template.criteria.iter().chain(&self.proc_template.criteria).map(|c| c.id).collect()
    }

    fn jobs(&self) -> Jobs {
        self.customer.jobs()
    }
}

/// A valid template: a manual criterion and a rule criterion.
fn valid_template() -> pb::CreateScorecardTemplateRequest {
    manual_and_rule_template("fuzz template")
}

/// Two valid new conversations.
fn valid_upsert() -> v1::UpsertConversationsRequest {
    let lines = [(v1::Speaker::Agent, "Good morning"), (v1::Speaker::Customer, "Hello")];
    v1::UpsertConversationsRequest {
        conversations: vec![
            conversation("fz-0", "agent-a", T0, &lines),
            conversation("fz-1", "agent-b", T0 + 60, &lines),
        ],
    }
}

fn valid_reindex(customer: &Customer) -> v1::ReindexConversationsPayload {
    v1::ReindexConversationsPayload {
        customer_id: customer.id.0,
        start_time: ts(T0),
        end_time: ts(T0 + 3600),
        time_base: v1::ReindexTimeBase::UpdatedAt as i32,
        conversations_batch_size: 100,
        reindex_scorecard_types: vec![pb::ScorecardTemplateType::Conversation as i32],
        ..Default::default()
    }
}

/// A call of any RPC, the job service's included.
#[derive(Clone, Debug)]
enum AnyCall {
    Api(Call),
    CreateJob(v1::CreateJobRequest),
    GetJob(v1::GetJobRequest),
    ListJobs(v1::ListJobsRequest),
    CancelJob(v1::CancelJobRequest),
}

impl AnyCall {
    /// The request message's full protobuf name.
    fn request_type(&self) -> &'static str {
        match self {
            AnyCall::Api(call) => match call {
                Call::CreateTemplate(_) => "scorekeeper.v1.coaching.CreateScorecardTemplateRequest",
                Call::GetTemplate(_) => "scorekeeper.v1.coaching.GetScorecardTemplateRequest",
                Call::ListTemplates(_) => "scorekeeper.v1.coaching.ListScorecardTemplatesRequest",
                Call::CreateScorecard(_) => "scorekeeper.v1.coaching.CreateScorecardRequest",
                Call::GetScorecard(_) => "scorekeeper.v1.coaching.GetScorecardRequest",
                Call::UpdateScorecard(_) => "scorekeeper.v1.coaching.UpdateScorecardRequest",
                Call::DeleteScorecard(_) => "scorekeeper.v1.coaching.DeleteScorecardRequest",
                Call::ListScorecards(_) => "scorekeeper.v1.coaching.ListScorecardsRequest",
                Call::Upsert(_) => "scorekeeper.v1.UpsertConversationsRequest",
                Call::GetConversation(_) => "scorekeeper.v1.GetConversationRequest",
                Call::BatchIndex(_) => "scorekeeper.v1.BatchIndexConversationsRequest",
                Call::Autoscore(_) => "scorekeeper.v1.AutoscoreConversationsRequest",
                Call::Stats(_) => "scorekeeper.v1.GetScoreStatsRequest",
            },
            AnyCall::CreateJob(_) => "scorekeeper.v1.CreateJobRequest",
            AnyCall::GetJob(_) => "scorekeeper.v1.GetJobRequest",
            AnyCall::ListJobs(_) => "scorekeeper.v1.ListJobsRequest",
            AnyCall::CancelJob(_) => "scorekeeper.v1.CancelJobRequest",
        }
    }

    /// Makes the call, keeping only the status.
    async fn make(self, customer: &Customer, jobs: &mut Jobs) -> Result<(), Status> {
        match self {
            AnyCall::Api(call) => call.make(customer).await,
            AnyCall::CreateJob(r) => jobs.create_job(r).await.map(drop),
            AnyCall::GetJob(r) => jobs.get_job(r).await.map(drop),
            AnyCall::ListJobs(r) => jobs.list_jobs(r).await.map(drop),
            AnyCall::CancelJob(r) => jobs.cancel_job(r).await.map(drop),
        }
    }
}

/// The job tables' contents, which the bad_input snapshot does not cover.
async fn job_tables(env: &TestEnv) -> Vec<scorekeeper_jobs::Job> {
    // Every job with every activity's progress, read through the job
    // engine's store: equal lists mean nothing was created or changed.
    env.jobs
        .list_jobs(&scorekeeper_jobs::JobFilter::default(), None, 100_000)
        .await
        .unwrap_or_else(|e| panic!("reading the job tables: {e}"))
}
