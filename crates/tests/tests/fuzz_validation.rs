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
use scorekeeper_jobs::JobHandler;
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::v1;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_sync::reindex::{ReindexHandler, ReindexSettings};
use scorekeeper_tests::env::Options;
use scorekeeper_tests::{Customer, TestEnv};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use crate::bad_input::{Call, Expect, Snapshot, assert_rejected};
use crate::fixtures::*;
use crate::job_api::{Jobs, jobs, reindex_request};

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
// Generators.

/// Characters that break naive SQL, logs, terminals or byte counting.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '\0', '\'', '"', '\\', '%', '_', ';', '\t', '\n', '\r', '\u{7f}', '\u{200f}', '\u{202e}',
            '\u{301}', '\u{feff}', '\u{3000}', 'ع', '中', '😀',
        ]),
    ]
}

/// A string of exactly `bytes` bytes: `fill` repeated, padded with `a`.
fn sized(bytes: usize, fill: char) -> String {
    let mut s = String::with_capacity(bytes);
    while s.len() + fill.len_utf8() <= bytes {
        s.push(fill);
    }
    while s.len() < bytes {
        s.push('a');
    }
    s
}

/// Any text for a field limited to `max_bytes`, valid or not.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9 -]{1,12}",
        3 => vec(hostile_char(), 0..16).prop_map(String::from_iter),
        1 => bad_text(max_bytes),
    ]
}

/// Text a required field must refuse: blank, holding a NUL, or longer than
/// `max_bytes` (by a few bytes, in multi-byte characters too).
fn bad_text(max_bytes: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[ \t\n\r\u{3000}]{1,4}",
        ("[a-z'%_;]{0,8}", "[a-z\"\\\\]{0,8}").prop_map(|(a, b)| format!("{a}\0{b}")),
        (max_bytes + 1..=max_bytes + 4, prop::sample::select(vec!['x', 'é', '中', '😀']))
            .prop_map(|(n, c)| sized(n, c)),
    ]
}

/// Text an optional field must refuse (empty is "not given" there).
fn bad_optional_text(max_bytes: usize) -> impl Strategy<Value = String> {
    bad_text(max_bytes).prop_filter("empty text is valid here", |s| !s.is_empty())
}

/// Text an optional free-text field must refuse: a NUL or too long.
fn bad_free_text(max_bytes: usize) -> impl Strategy<Value = String> {
    bad_text(max_bytes).prop_filter("blank text is valid here", |s| !s.trim().is_empty())
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..10.0f64,
        1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 1e10]),
        1 => any::<f64>(),
    ]
}

fn not_finite() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -f64::NAN])
}

fn enum_value(known: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![4 => known, 1 => Just(0), 1 => any::<i32>()]
}

/// An enum value no server knows.
fn unknown_enum(known_max: i32) -> impl Strategy<Value = i32> {
    prop_oneof![i32::MIN..0, known_max + 1..=i32::MAX]
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let t = |(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos });
    prop_oneof![
        4 => (T0 - 86_400..T0 + 86_400, 0..1_000_000_000i32).prop_map(t),
        1 => Just(None),
        1 => (any::<i64>(), any::<i32>()).prop_map(t),
    ]
}

/// An id of the world's rows (`known`), or any other number.
fn id(known: Vec<i64>) -> impl Strategy<Value = i64> {
    prop_oneof![3 => prop::sample::select(known), 1 => Just(0i64), 1 => any::<i64>()]
}

fn ids(known: Vec<i64>) -> impl Strategy<Value = Vec<i64>> {
    vec(id(known), 0..4)
}

fn page_token() -> impl Strategy<Value = String> {
    // ListJobs tokens are `<created_at micros>:<job id>`.
    // Only times of years 1 to 9999: a token beyond what Postgres can hold
    // is a known bug (RELIABILITY.md), pinned by
    // `a_list_jobs_token_postgres_cannot_hold_is_invalid_argument`.
    let micros = prop_oneof![
        -62_135_596_800_000_000..=253_402_300_799_999_999i64,
        prop::sample::select(vec![-62_135_596_800_000_000, 0, 253_402_300_799_999_999]),
    ];
    prop_oneof![
        2 => Just(String::new()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => text(40),
        1 => micros.prop_map(|m| format!("{m}:5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e")),
    ]
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
        let scorecard = crate::bad_input::create_scorecard(
            &customer,
            pb::CreateScorecardRequest {
                template_id: conv_template.id,
                conversation_id: conversations[0].id,
                scores: scores(&conv_template, &[4.0, 7.0]),
                ..Default::default()
            },
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

    fn jobs(&self, env: &TestEnv) -> Jobs {
        jobs(env, &self.customer.token)
    }
}

/// A valid template: a manual criterion and a rule criterion.
fn valid_template() -> pb::CreateScorecardTemplateRequest {
    pb::CreateScorecardTemplateRequest {
        name: "fuzz template".into(),
        template_type: pb::ScorecardTemplateType::Conversation as i32,
        criteria: vec![
            criterion("empathy", 1.0, 5.0),
            rule_criterion("greeting", auto_qa_rule::Kind::Present, "good morning"),
        ],
    }
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
        let (s, c) = (customer.scorecards(), customer.conversations());
        match self {
            AnyCall::Api(call) => match call {
                Call::CreateTemplate(r) => s.clone().create_scorecard_template(r).await.map(drop),
                Call::GetTemplate(r) => s.clone().get_scorecard_template(r).await.map(drop),
                Call::ListTemplates(r) => s.clone().list_scorecard_templates(r).await.map(drop),
                Call::CreateScorecard(r) => s.clone().create_scorecard(r).await.map(drop),
                Call::GetScorecard(r) => s.clone().get_scorecard(r).await.map(drop),
                Call::UpdateScorecard(r) => s.clone().update_scorecard(r).await.map(drop),
                Call::DeleteScorecard(r) => s.clone().delete_scorecard(r).await.map(drop),
                Call::ListScorecards(r) => s.clone().list_scorecards(r).await.map(drop),
                Call::Upsert(r) => c.clone().upsert_conversations(r).await.map(drop),
                Call::GetConversation(r) => c.clone().get_conversation(r).await.map(drop),
                Call::BatchIndex(r) => c.clone().batch_index_conversations(r).await.map(drop),
                Call::Autoscore(r) => customer.autoqa().autoscore_conversations(r).await.map(drop),
                Call::Stats(r) => customer.analytics().get_score_stats(r).await.map(drop),
            },
            AnyCall::CreateJob(r) => jobs.create_job(r).await.map(drop),
            AnyCall::GetJob(r) => jobs.get_job(r).await.map(drop),
            AnyCall::ListJobs(r) => jobs.list_jobs(r).await.map(drop),
            AnyCall::CancelJob(r) => jobs.cancel_job(r).await.map(drop),
        }
    }
}

// ---------------------------------------------------------------------------
// The request schema, from the descriptors the server was built with.

/// Message name → field name → (type name of a message field, repeated).
type Schema = BTreeMap<String, BTreeMap<String, (Option<String>, bool)>>;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let set = prost_types::FileDescriptorSet::decode(scorekeeper_proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes");
        let mut schema = Schema::new();
        fn add(schema: &mut Schema, prefix: &str, message: &prost_types::DescriptorProto) {
            let name = format!("{prefix}.{}", message.name());
            let fields = message
                .field
                .iter()
                .map(|f| {
                    let repeated = f.label() == prost_types::field_descriptor_proto::Label::Repeated;
                    let nested = f.type_name.as_ref().map(|t| t.trim_start_matches('.').to_owned());
                    (f.name().to_owned(), (nested, repeated))
                })
                .collect();
            schema.insert(name.clone(), fields);
            for nested in &message.nested_type {
                add(schema, &name, nested);
            }
        }
        for file in &set.file {
            for message in &file.message_type {
                add(&mut schema, file.package(), message);
            }
        }
        schema
    })
}

/// Whether `path` (`a.b[3].c`) names a field of message `request_type`,
/// with an index exactly where the field is repeated.
fn names_a_field(request_type: &str, path: &str) -> bool {
    let mut message = Some(request_type.to_owned());
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (name, indexed) = match part.split_once('[') {
            Some((name, rest)) if rest.strip_suffix(']').is_some_and(|i| i.parse::<usize>().is_ok()) => {
                (name, true)
            }
            Some(_) => return false,
            None => (*part, false),
        };
        let Some(fields) = message.as_ref().and_then(|m| schema().get(m)) else { return false };
        let Some((nested, repeated)) = fields.get(name) else { return false };
        let last = i + 1 == parts.len();
        // An index exactly on lists, and a list entered only by an index.
        if (indexed && !repeated) || (*repeated && !indexed && !last) {
            return false;
        }
        message = nested.clone();
    }
    true
}

/// The field an INVALID_ARGUMENT names: messages are `field: reason`.
fn named_field(status: &Status) -> &str {
    status.message().split_once(": ").map_or("", |(field, _)| field)
}

/// The codes a call may answer with while both databases are up.
fn judge(request_type: &str, result: &Result<(), Status>) -> Result<(), String> {
    let Err(status) = result else { return Ok(()) };
    match status.code() {
        Code::InvalidArgument if names_a_field(request_type, named_field(status)) => Ok(()),
        Code::InvalidArgument => {
            Err(format!("INVALID_ARGUMENT names no field of {request_type}: {:?}", status.message()))
        }
        Code::NotFound | Code::PermissionDenied | Code::Aborted => Ok(()),
        code => Err(format!("answered {code:?}: {:?}", status.message())),
    }
}

// ---------------------------------------------------------------------------
// Property 1: wild requests of every RPC.

fn rule() -> impl Strategy<Value = pb::AutoQaRule> {
    (enum_value(1..=2), enum_value(1..=2), text(MAX_PATTERN_BYTES), enum_value(0..=2), 0..10u32, 0..100u32)
        .prop_map(|(kind, pattern_type, pattern, speaker, messages, seconds)| pb::AutoQaRule {
            kind,
            pattern_type,
            pattern,
            speaker,
            within_first_messages: messages,
            within_first_seconds: seconds,
        })
}

fn wild_call(w: &World) -> impl Strategy<Value = AnyCall> + use<> {
    let (conversation_ids, template_ids, criterion_ids) =
        (w.conversation_ids(), w.template_ids(), w.criterion_ids());
    let scorecard_ids = vec![w.scorecard.id];
    let customer_id = w.customer.id.0;
    let criterion = (text(MAX_NAME_BYTES), number(), number(), number(), prop::option::weighted(0.3, rule()))
        .prop_map(|(name, weight, min_value, max_value, autoqa_rule)| pb::Criterion {
            name,
            weight,
            min_value,
            max_value,
            autoqa_rule,
            ..Default::default()
        });
    let template = (text(MAX_NAME_BYTES), enum_value(1..=2), vec(criterion, 0..3)).prop_map(
        |(name, template_type, criteria)| {
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { name, template_type, criteria })
        },
    );
    let scores = move || {
        vec((id(criterion_ids.clone()), number()), 0..3).prop_map(|s| {
            s.into_iter().map(|(criterion_id, value)| pb::Score { criterion_id, value }).collect()
        })
    };
    let create_scorecard = (
        id(template_ids.clone()),
        id(conversation_ids.clone()),
        ids(conversation_ids.clone()),
        text(MAX_NAME_BYTES),
        scores(),
    )
        .prop_map(|(template_id, conversation_id, linked_conversation_ids, agent_id, scores)| {
            Call::CreateScorecard(pb::CreateScorecardRequest {
                template_id,
                conversation_id,
                linked_conversation_ids,
                agent_id,
                scores,
            })
        });
    let update_scorecard = (
        id(scorecard_ids.clone()),
        scores(),
        ids(conversation_ids.clone()),
        text(MAX_NAME_BYTES),
        prop_oneof![Just(0i64), any::<i64>()],
    )
        .prop_map(|(id, scores, linked_conversation_ids, agent_id, expected_version)| {
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id,
                scores,
                linked_conversation_ids,
                agent_id,
                expected_version,
            })
        });
    let message = (enum_value(1..=2), text(MAX_MESSAGE_TEXT_BYTES), prop_oneof![0..100_000i64, any::<i64>()])
        .prop_map(|(speaker, text, offset_ms)| v1::Message { speaker, text, offset_ms });
    let conversation =
        (text(MAX_NAME_BYTES), text(MAX_NAME_BYTES), timestamp(), timestamp(), vec(message, 0..3)).prop_map(
            |(external_id, agent_id, started_at, ended_at, messages)| v1::Conversation {
                external_id,
                agent_id,
                started_at,
                ended_at,
                messages,
                ..Default::default()
            },
        );
    let upsert = vec(conversation, 0..3)
        .prop_map(|conversations| Call::Upsert(v1::UpsertConversationsRequest { conversations }));
    let page = || (prop_oneof![0..600i32, any::<i32>()], page_token());
    let api =
        prop_oneof![
            template,
            id(template_ids.clone()).prop_map(|id| Call::GetTemplate(pb::GetScorecardTemplateRequest { id })),
            page().prop_map(|(page_size, page_token)| Call::ListTemplates(
                pb::ListScorecardTemplatesRequest { page_size, page_token }
            )),
            create_scorecard,
            id(scorecard_ids.clone()).prop_map(|id| Call::GetScorecard(pb::GetScorecardRequest { id })),
            update_scorecard,
            id(scorecard_ids).prop_map(|id| Call::DeleteScorecard(pb::DeleteScorecardRequest { id })),
            (page(), id(template_ids.clone()), id(conversation_ids.clone())).prop_map(
                |((page_size, page_token), template_id, conversation_id)| Call::ListScorecards(
                    pb::ListScorecardsRequest { page_size, page_token, template_id, conversation_id }
                )
            ),
            upsert,
            (id(conversation_ids.clone()), any::<bool>()).prop_map(|(id, include_messages)| {
                Call::GetConversation(v1::GetConversationRequest { id, include_messages })
            }),
            (ids(conversation_ids.clone()), timestamp(), timestamp()).prop_map(
                |(conversation_ids, start_time, end_time)| Call::BatchIndex(
                    v1::BatchIndexConversationsRequest { conversation_ids, start_time, end_time }
                )
            ),
            (id(template_ids), ids(conversation_ids.clone())).prop_map(|(template_id, conversation_ids)| {
                Call::Autoscore(v1::AutoscoreConversationsRequest { template_id, conversation_ids })
            }),
            (enum_value(1..=3), timestamp(), timestamp()).prop_map(|(group_by, start_time, end_time)| {
                Call::Stats(v1::GetScoreStatsRequest { group_by, start_time, end_time })
            }),
        ]
        .prop_map(AnyCall::Api);
    let job_id = prop_oneof![
        Just("5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e".to_owned()),
        Just("5F0C3B9E8A514C4E9D7E2F6A1B3C4D5E".to_owned()),
        text(64)
    ];
    let jobs = prop_oneof![
        reindex_payload(customer_id, conversation_ids).prop_map(|p| AnyCall::CreateJob(
            v1::CreateJobRequest {
                r#type: v1::JobType::ReindexConversations as i32,
                payload: Some(v1::JobPayload { payload: Some(Payload::ReindexConversations(p)) }),
            }
        )),
        (enum_value(1..=1), prop::option::of(Just(v1::JobPayload { payload: None })))
            .prop_map(|(r#type, payload)| AnyCall::CreateJob(v1::CreateJobRequest { r#type, payload })),
        job_id.clone().prop_map(|id| AnyCall::GetJob(v1::GetJobRequest { id })),
        job_id.prop_map(|id| AnyCall::CancelJob(v1::CancelJobRequest { id })),
        (enum_value(1..=5), enum_value(1..=1), prop_oneof![Just(0), Just(customer_id), any::<i64>()], page())
            .prop_map(|(state, r#type, customer_id, (page_size, page_token))| AnyCall::ListJobs(
                v1::ListJobsRequest { state, r#type, customer_id, page_size, page_token }
            )),
    ];
    prop_oneof![13 => api, 5 => jobs]
}

fn reindex_payload(
    customer_id: i64,
    conversation_ids: Vec<i64>,
) -> impl Strategy<Value = v1::ReindexConversationsPayload> {
    let batch = prop_oneof![Just(0i32), 1..1000i32, any::<i32>()];
    (
        prop_oneof![3 => Just(customer_id), 1 => Just(0i64), 1 => any::<i64>()],
        timestamp(),
        timestamp(),
        enum_value(1..=2),
        ids(conversation_ids),
        batch.clone(),
        batch,
        vec(enum_value(1..=2), 0..3),
    )
        .prop_map(
            |(
                customer_id,
                start_time,
                end_time,
                time_base,
                conversation_ids,
                conv_batch,
                proc_batch,
                types,
            )| {
                v1::ReindexConversationsPayload {
                    customer_id,
                    start_time,
                    end_time,
                    time_base,
                    conversation_ids,
                    conversations_batch_size: conv_batch,
                    process_scorecards_batch_size: proc_batch,
                    reindex_scorecard_types: types,
                }
            },
        )
}

/// Whether CreateJob would have let `spec` through (the stored payload is
/// decoded without these checks; see RELIABILITY.md).
fn as_the_api_accepts(spec: &ReindexSpec) -> bool {
    let batch_ok = |b: Option<u32>| b.is_none_or(|n| (1..=100_000).contains(&n));
    spec.scope.customer_id.is_none_or(|c| c.0 > 0)
        && spec.scope.window.is_none_or(|w| w.end > w.start)
        && spec.scope.conversation_ids.iter().all(|c| c.0 > 0)
        && batch_ok(spec.conversations_batch_size)
        && batch_ok(spec.process_scorecards_batch_size)
}

/// A ListJobs token is `<created_at micros>:<id>`; a time chrono accepts
/// but Postgres cannot hold (before 4713 BC) reaches Postgres and comes
/// back INTERNAL. The fix belongs in `services/jobs.rs`
/// (`parse_page_token` must refuse times outside years 1 to 9999, as
/// `validate::timestamp` does); until then this is ignored.
#[tokio::test]
#[ignore = "known bug: ListJobs page tokens outside Postgres's range answer INTERNAL (RELIABILITY.md)"]
async fn a_list_jobs_token_postgres_cannot_hold_is_invalid_argument() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let customer = env.customer("tokens").await;
    let mut jobs = jobs(&env, &customer.token);
    for micros in [i64::MIN, -215_513_338_954_073_554, -62_135_596_800_000_001, 253_402_300_800_000_000] {
        let page_token = format!("{micros}:5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e");
        let status = jobs
            .list_jobs(v1::ListJobsRequest { page_token: page_token.clone(), ..Default::default() })
            .await
            .expect_err("a token this server never issued");
        assert_eq!(status.code(), Code::InvalidArgument, "{page_token}: {status:?}");
        assert_eq!(named_field(&status), "page_token", "{page_token}: {status:?}");
    }
}

#[test]
fn field_paths_are_checked_against_the_schema() {
    let request = "scorekeeper.v1.coaching.CreateScorecardTemplateRequest";
    assert!(names_a_field(request, "name"));
    assert!(names_a_field(request, "criteria[3].autoqa_rule.pattern"));
    assert!(names_a_field(request, "criteria"), "a list as a whole");
    assert!(!names_a_field(request, "criteria.autoqa_rule.pattern"), "inside a list without an index");
    assert!(!names_a_field(request, "name[0]"), "an index on a field that is not repeated");
    assert!(!names_a_field(request, "criteria[0].colour"));
    assert!(!names_a_field(request, ""));
    let job = "scorekeeper.v1.CreateJobRequest";
    assert!(names_a_field(job, "payload.reindex_conversations.reindex_scorecard_types[1]"));
    assert!(!names_a_field(job, "payload.reindex_conversations.reindex_scorecard_types[x]"));
}

#[tokio::test]
async fn wild_requests_of_every_rpc_answer_from_a_closed_set_of_codes() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let world = World::build(&env).await;
    let (customer, jobs, tally) = (&world.customer, &world.jobs(&env), &Tally::default());
    run_cases("wild requests of every RPC", cases(600), wild_call(&world), |call| {
        let mut jobs = jobs.clone();
        async move {
            let request_type = call.request_type();
            let result = call.make(customer, &mut jobs).await;
            tally.count(&result);
            judge(request_type, &result)
        }
    })
    .await;
    tally.print("answers");
    // Whatever was accepted reached ClickHouse as Postgres holds it.
    env.outbox_drained(std::time::Duration::from_secs(30)).await.expect("the outbox drains");
    env.assert_scorecards_mirrored().await;
}

// ---------------------------------------------------------------------------
// Property 2: one field broken, named, and nothing written.

/// A valid request with one field broken, and the field the refusal must
/// name.
#[derive(Clone, Debug)]
struct Broken {
    field: String,
    call: AnyCall,
}

fn broken(field: impl Into<String>, call: Call) -> Broken {
    Broken { field: field.into(), call: AnyCall::Api(call) }
}

fn broken_request(w: &World) -> impl Strategy<Value = Broken> + use<> {
    let (conv_scorecard, proc_scorecard, update) = (
        pb::CreateScorecardRequest {
            template_id: w.conv_template.id,
            conversation_id: w.conversations[1].id,
            scores: scores(&w.conv_template, &[3.0, 5.0]),
            ..Default::default()
        },
        pb::CreateScorecardRequest {
            template_id: w.proc_template.id,
            agent_id: "agent-5".into(),
            linked_conversation_ids: vec![w.conversations[0].id],
            scores: scores(&w.proc_template, &[1.0]),
            ..Default::default()
        },
        pb::UpdateScorecardRequest {
            id: w.scorecard.id,
            scores: scores(&w.conv_template, &[2.0, 2.0]),
            ..Default::default()
        },
    );
    let conversation_ids = w.conversation_ids();
    let reindex = valid_reindex(&w.customer);
    let index = 0..2usize;
    let name = || bad_text(MAX_NAME_BYTES);
    let templates = prop_oneof![
        name().prop_map(|name| broken(
            "name",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { name, ..valid_template() })
        )),
        (index.clone(), name()).prop_map(|(i, name)| {
            let mut r = valid_template();
            r.criteria[i].name = name;
            broken(format!("criteria[{i}].name"), Call::CreateTemplate(r))
        }),
        (index.clone(), prop_oneof![not_finite(), Just(0.0), Just(-1.0), Just(1000.5)]).prop_map(|(i, w)| {
            let mut r = valid_template();
            r.criteria[i].weight = w;
            broken(format!("criteria[{i}].weight"), Call::CreateTemplate(r))
        }),
        bad_text(MAX_PATTERN_BYTES).prop_map(|pattern| {
            let mut r = valid_template();
            r.criteria[1].autoqa_rule.as_mut().expect("a rule").pattern = pattern;
            broken("criteria[1].autoqa_rule.pattern", Call::CreateTemplate(r))
        }),
        unknown_enum(2).prop_map(|t| broken(
            "template_type",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { template_type: t, ..valid_template() })
        )),
    ];
    let upserts = prop_oneof![
        (index.clone(), name(), any::<bool>()).prop_map(|(i, value, external)| {
            let mut r = valid_upsert();
            let (field, slot) = if external {
                ("external_id", &mut r.conversations[i].external_id)
            } else {
                ("agent_id", &mut r.conversations[i].agent_id)
            };
            *slot = value;
            broken(format!("conversations[{i}].{field}"), Call::Upsert(r))
        }),
        (index.clone(), index.clone(), bad_free_text(MAX_MESSAGE_TEXT_BYTES)).prop_map(|(i, j, text)| {
            let mut r = valid_upsert();
            r.conversations[i].messages[j].text = text;
            broken(format!("conversations[{i}].messages[{j}].text"), Call::Upsert(r))
        }),
        (index.clone(), index.clone(), i64::MIN..0).prop_map(|(i, j, offset)| {
            let mut r = valid_upsert();
            r.conversations[i].messages[j].offset_ms = offset;
            broken(format!("conversations[{i}].messages[{j}].offset_ms"), Call::Upsert(r))
        }),
        (index.clone(), 1..1_000_000i64).prop_map(|(i, earlier)| {
            let mut r = valid_upsert();
            r.conversations[i].ended_at = ts(T0 - earlier);
            broken(format!("conversations[{i}].ended_at"), Call::Upsert(r))
        }),
    ];
    let scorecards = prop_oneof![
        bad_optional_text(MAX_NAME_BYTES).prop_map(move |agent_id| broken(
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { agent_id, ..proc_scorecard.clone() })
        )),
        (index.clone(), not_finite()).prop_map(move |(i, value)| {
            let mut r = conv_scorecard.clone();
            r.scores[i].value = value;
            broken(format!("scores[{i}].value"), Call::CreateScorecard(r))
        }),
        bad_optional_text(MAX_NAME_BYTES).prop_map({
            let update = update.clone();
            move |agent_id| {
                broken(
                    "agent_id",
                    Call::UpdateScorecard(pb::UpdateScorecardRequest { agent_id, ..update.clone() }),
                )
            }
        }),
        (i64::MIN..0).prop_map(move |v| broken(
            "expected_version",
            Call::UpdateScorecard(pb::UpdateScorecardRequest { expected_version: v, ..update.clone() })
        )),
    ];
    let reads = prop_oneof![
        "[^0-9+-][^\0]{0,8}".prop_map(|page_token| broken(
            "page_token",
            Call::ListScorecards(pb::ListScorecardsRequest { page_token, ..Default::default() })
        )),
        prop_oneof![i32::MIN..0, 501..=i32::MAX].prop_map(|page_size| broken(
            "page_size",
            Call::ListTemplates(pb::ListScorecardTemplatesRequest { page_size, ..Default::default() })
        )),
        (index.clone(), i64::MIN..=0).prop_map({
            let ids = conversation_ids.clone();
            move |(i, bad)| {
                let mut ids = ids.clone();
                ids[i] = bad;
                broken(
                    format!("conversation_ids[{i}]"),
                    Call::BatchIndex(v1::BatchIndexConversationsRequest {
                        conversation_ids: ids,
                        ..Default::default()
                    }),
                )
            }
        }),
        (index.clone(), i64::MIN..=0).prop_map({
            let (ids, template_id) = (conversation_ids.clone(), w.conv_template.id);
            move |(i, bad)| {
                let mut ids = ids.clone();
                ids[i] = bad;
                broken(
                    format!("conversation_ids[{i}]"),
                    Call::Autoscore(v1::AutoscoreConversationsRequest { template_id, conversation_ids: ids }),
                )
            }
        }),
        unknown_enum(3).prop_map(|group_by| broken(
            "group_by",
            Call::Stats(v1::GetScoreStatsRequest { group_by, ..Default::default() })
        )),
        (0..1_000_000i64).prop_map(|back| broken(
            "end_time",
            Call::Stats(v1::GetScoreStatsRequest {
                group_by: 1,
                start_time: ts(T0),
                end_time: ts(T0 - back)
            })
        )),
    ];
    let job = |field: &str, payload: v1::ReindexConversationsPayload| Broken {
        field: format!("payload.reindex_conversations.{field}"),
        call: AnyCall::CreateJob(reindex_request(payload)),
    };
    let jobs = prop_oneof![
        prop_oneof![i32::MIN..0, 100_001..=i32::MAX].prop_map({
            let reindex = reindex.clone();
            move |n| {
                job(
                    "conversations_batch_size",
                    v1::ReindexConversationsPayload { conversations_batch_size: n, ..reindex.clone() },
                )
            }
        }),
        unknown_enum(2).prop_map({
            let reindex = reindex.clone();
            move |t| {
                job(
                    "reindex_scorecard_types[1]",
                    v1::ReindexConversationsPayload {
                        reindex_scorecard_types: vec![1, t],
                        ..reindex.clone()
                    },
                )
            }
        }),
        (0..1_000_000i64).prop_map({
            let reindex = reindex.clone();
            move |back| {
                job(
                    "end_time",
                    v1::ReindexConversationsPayload { end_time: ts(T0 - back), ..reindex.clone() },
                )
            }
        }),
        (index, i64::MIN..=0).prop_map(move |(i, bad)| {
            let mut ids = conversation_ids.clone();
            ids[i] = bad;
            job(
                &format!("conversation_ids[{i}]"),
                v1::ReindexConversationsPayload { conversation_ids: ids, ..reindex.clone() },
            )
        }),
    ];
    prop_oneof![5 => templates, 4 => upserts, 4 => scorecards, 6 => reads, 4 => jobs]
}

/// Row counts and checksums of the job tables, which the bad_input
/// snapshot does not cover.
async fn job_tables(env: &TestEnv) -> Vec<(i64, String)> {
    let client = env.store.pool().get().await.expect("a Postgres connection");
    let mut tables = Vec::new();
    for table in ["jobs", "job_activities"] {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {table} AS x"
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("fingerprinting {table}: {e}"));
        tables.push((row.get(0), row.get(1)));
    }
    tables
}

#[tokio::test]
async fn one_broken_field_is_named_and_nothing_is_written() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let world = World::build(&env).await;
    let jobs = world.jobs(&env);
    let (env, world) = (&env, &world);
    run_cases("one broken field, through the server", cases(150), broken_request(world), |broken| {
        let mut jobs = jobs.clone();
        async move {
            let name = shorten(&format!("{broken:?}"));
            let jobs_before = job_tables(env).await;
            match broken.call {
                AnyCall::Api(call) => {
                    assert_rejected(env, &world.customer, &name, call, &Expect::Invalid(broken.field)).await;
                }
                AnyCall::CreateJob(request) => {
                    let before = Snapshot::take(env).await;
                    let status = jobs.create_job(request).await.err().ok_or("accepted")?;
                    if status.code() != Code::InvalidArgument || named_field(&status) != broken.field {
                        return Err(format!(
                            "expected INVALID_ARGUMENT naming {}, got {status:?}",
                            broken.field
                        ));
                    }
                    let after = Snapshot::take(env).await;
                    if after != before {
                        return Err(format!("the refused job wrote: {}", after.diff(&before)));
                    }
                }
                other => unreachable!("not a broken request: {other:?}"),
            }
            if job_tables(env).await != jobs_before {
                return Err("the refused request changed the job tables".into());
            }
            Ok(())
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Property 3: job payloads as bytes, and as the JSON the workflow reads.

/// Sends bytes as they are, without encoding: what a broken client sends.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// CreateJob with `body` as the request message, bytes as they are.
async fn create_job_raw(env: &TestEnv, token: &str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(env.channel());
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(body);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ASCII"));
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/scorekeeper.v1.JobService/CreateJob");
    grpc.unary(request, path, RawCodec).await.map(drop)
}

/// A byte edit of a valid encoding.
#[derive(Clone, Debug)]
enum Edit {
    Flip {
        at: usize,
        bits: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
    /// Appends a varint field, at the top level or inside the reindex
    /// payload: valid protobuf that merges into (or overrides) what is there.
    Field {
        in_payload: bool,
        number: u32,
        value: u64,
    },
}

fn edit(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Flip { at, bits } if !bytes.is_empty() => bytes[at % len] ^= bits,
            Edit::Truncate { at } => bytes.truncate(at % len),
            Edit::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
            Edit::Remove { at } if !bytes.is_empty() => drop(bytes.remove(at % len)),
            Edit::Field { in_payload, number, value } => {
                let mut field = Vec::new();
                prost::encoding::encode_key(number, prost::encoding::WireType::Varint, &mut field);
                prost::encoding::encode_varint(value, &mut field);
                if in_payload {
                    // CreateJobRequest.payload (2) → JobPayload.reindex_conversations (1).
                    for outer in [1, 2] {
                        let mut wrapped = Vec::new();
                        prost::encoding::encode_key(
                            outer,
                            prost::encoding::WireType::LengthDelimited,
                            &mut wrapped,
                        );
                        prost::encoding::encode_varint(field.len() as u64, &mut wrapped);
                        wrapped.extend_from_slice(&field);
                        field = wrapped;
                    }
                }
                bytes.extend_from_slice(&field);
            }
            _ => {}
        }
    }
}

/// Edits of bytes: most break the encoding.
fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let one = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Edit::Flip { at, bits }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        any::<usize>().prop_map(|at| Edit::Remove { at }),
    ];
    vec(one, 1..4)
}

/// Appended fields: mostly still decodable, with odd values.
fn field_edits() -> impl Strategy<Value = Vec<Edit>> {
    let value = prop_oneof![0..4u64, Just(u64::from(u32::MAX)), any::<u64>()];
    vec(
        (any::<bool>(), 1..16u32, value).prop_map(|(in_payload, number, value)| Edit::Field {
            in_payload,
            number,
            value,
        }),
        1..4,
    )
}

/// The bytes of a CreateJob request: arbitrary, or a valid one edited.
fn job_request_bytes(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..48),
        1 => edits().prop_map({
            let valid = valid.clone();
            move |edits| {
                let mut bytes = valid.clone();
                edit(&mut bytes, &edits);
                bytes
            }
        }),
        1 => field_edits().prop_map(move |edits| {
            let mut bytes = valid.clone();
            edit(&mut bytes, &edits);
            bytes
        }),
    ]
}

#[tokio::test]
async fn job_payloads_decode_to_a_clean_answer() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let customer = env.customer("payloads").await;
    let handler = ReindexHandler::new(env.store.clone(), env.analytics.clone(), ReindexSettings::default());
    let mut valid = valid_reindex(&customer);
    valid.conversation_ids = vec![1, 2, 300];
    valid.reindex_scorecard_types.push(pb::ScorecardTemplateType::Process as i32);
    let encoded = reindex_request(valid).encode_to_vec();
    let jobs = jobs(&env, &customer.token);
    let (env, customer, handler) = (&env, &customer, &handler);
    let tally = &Tally::default();

    // As the server decodes them (prost), then judges them.
    run_cases("CreateJob bytes, arbitrary and edited", cases(400), job_request_bytes(encoded), |bytes| {
        let mut jobs = jobs.clone();
        async move {
            let _ = v1::JobPayload::decode(bytes.as_slice());
            let jobs_before = job_tables(env).await;
            match v1::CreateJobRequest::decode(bytes.as_slice()) {
                Ok(request) => {
                    let answer = jobs.create_job(request).await;
                    tally.count(&answer.as_ref().map(drop).map_err(Clone::clone));
                    let job = match answer {
                        Ok(answer) => answer.into_inner().job.ok_or("CreateJob answered without a job")?,
                        Err(status) => {
                            judge("scorekeeper.v1.CreateJobRequest", &Err(status))?;
                            return match job_tables(env).await == jobs_before {
                                true => Ok(()),
                                false => Err("a refused CreateJob changed the job tables".into()),
                            };
                        }
                    };
                    // Accepted: the stored payload is one the workflow reads.
                    let client = env.store.pool().get().await.map_err(|e| e.to_string())?;
                    let row = client
                        .query_one("SELECT payload FROM jobs WHERE id::text = $1", &[&job.id])
                        .await
                        .map_err(|e| e.to_string())?;
                    let payload: serde_json::Value = row.get(0);
                    handler
                        .activities(&payload)
                        .map_err(|e| format!("a stored payload does not decode: {e}"))?;
                    Ok(())
                }
                Err(_) => {
                    // Undecodable: the server must refuse it without writing
                    // and keep serving. tonic answers INTERNAL for a body
                    // that is not the message (RELIABILITY.md).
                    let status = create_job_raw(env, &customer.token, bytes).await.err().ok_or("accepted")?;
                    tally.note(format!("undecodable, {:?}", status.code()));
                    if !matches!(status.code(), Code::Internal | Code::InvalidArgument) {
                        return Err(format!("undecodable body answered {status:?}"));
                    }
                    if job_tables(env).await != jobs_before {
                        return Err("an undecodable CreateJob changed the job tables".into());
                    }
                    Ok(())
                }
            }
        }
    })
    .await;
    tally.print("answers");
    jobs.clone()
        .list_jobs(v1::ListJobsRequest::default())
        .await
        .expect("the server still answers after the garbage");

    // As the workflow reads them back from the jobs table.
    let spec = ReindexSpec {
        scope: scorekeeper_domain::reindex::ReindexScope {
            customer_id: Some(customer.id),
            window: Some(scorekeeper_domain::reindex::TimeWindow {
                start: chrono::DateTime::from_timestamp(T0, 0).expect("a time"),
                end: chrono::DateTime::from_timestamp(T0 + 3600, 0).expect("a time"),
                base: scorekeeper_domain::reindex::TimeBase::UpdatedAt,
            }),
            conversation_ids: vec![scorekeeper_domain::ConversationId(5)],
        },
        scorecard_types: vec![scorekeeper_domain::TemplateType::Process],
        conversations_batch_size: Some(10),
        process_scorecards_batch_size: None,
    };
    let json = serde_json::to_vec(&spec).expect("a spec serialises");
    let tokens = prop::sample::select(vec![
        "null",
        "-1",
        "0",
        "1e999",
        "4294967296",
        "\"x\"",
        "[]",
        "{}",
        "true",
        "\"conversation\"",
        "\"process\"",
        "\"updated_at\"",
        "\"2026-13-01T00:00:00Z\"",
        "\"+275760-09-13T00:00:00Z\"",
        ",",
        ":",
        "\\u0000",
    ]);
    let json_strategy = prop_oneof![
        1 => vec(any::<u8>(), 0..48),
        2 => edits().prop_map({
            let json = json.clone();
            move |edits| {
                let mut bytes = json.clone();
                edit(&mut bytes, &edits);
                bytes
            }
        }),
        2 => (any::<usize>(), any::<usize>(), tokens).prop_map(move |(at, len, token)| {
            // Replace a span with a JSON token of another type or value.
            let at = at % json.len();
            let end = (at + len % 12).min(json.len());
            let mut bytes = json[..at].to_vec();
            bytes.extend_from_slice(token.as_bytes());
            bytes.extend_from_slice(&json[end..]);
            bytes
        }),
    ];
    let (decoded, unchecked) = (&std::sync::atomic::AtomicU32::new(0), &std::sync::atomic::AtomicU32::new(0));
    run_cases(
        "stored reindex payloads, arbitrary and edited JSON",
        cases(3000),
        json_strategy,
        |bytes| async move {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Ok(()) };
            match (handler.activities(&value), serde_json::from_value::<ReindexSpec>(value)) {
                (Ok(activities), Ok(spec)) => {
                    decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !as_the_api_accepts(&spec) {
                        unchecked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let known = ["reindex_conversations", "reindex_process_scorecards"];
                    if activities.is_empty() || activities.iter().any(|a| !known.contains(&a.as_str())) {
                        return Err(format!("activities {activities:?}"));
                    }
                    // What decodes is a spec: it survives another round trip.
                    let again: ReindexSpec =
                        serde_json::from_value(serde_json::to_value(&spec).map_err(|e| e.to_string())?)
                            .map_err(|e| format!("a decoded spec does not decode again: {e}"))?;
                    (again == spec)
                        .then_some(())
                        .ok_or_else(|| "a decoded spec changed in a round trip".into())
                }
                (Err(message), Err(_)) if !message.is_empty() => Ok(()),
                (activities, spec) => {
                    Err(format!("the handler and the spec disagree: {activities:?} / {spec:?}"))
                }
            }
        },
    )
    .await;
    eprintln!(
        "  of which {} decoded to a spec, {} of them one CreateJob would refuse (the workflow runs it anyway)",
        decoded.load(std::sync::atomic::Ordering::Relaxed),
        unchecked.load(std::sync::atomic::Ordering::Relaxed)
    );
}
