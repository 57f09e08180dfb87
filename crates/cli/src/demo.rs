//! `scorekeeper demo`: walks a new user through the product against a running
//! `scorekeeper serve` (which `scripts/demo` starts on the local stack).
//!
//! The story, one function per step: an operator creates a customer and an
//! API token; the customer defines a conversation template (with AutoQA
//! rules) and a process template; uploads a few thousand synthetic
//! conversations; indexes them into ClickHouse; lets AutoQA score them
//! (checking every score against what its transcript was written to earn,
//! then running it again to show it is idempotent); has reviewers create,
//! update and delete manual scorecards; and finally reads the analytics from
//! ClickHouse and checks them against the same statistics computed from
//! Postgres, the source of truth.
//!
//! Everything except the operator step goes through the public gRPC API with
//! the customer's token, exactly as a client would. The synthetic content is
//! deterministic (fixed seeds), so two runs differ only in ids and times.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::{DateTime, SubsecRound, Utc};
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::scoring::{CriterionScale, total_score};
use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::coaching::{
    AutoQaRule, CreateScorecardRequest, CreateScorecardTemplateRequest, Criterion,
    DeleteScorecardRequest, Score, Scorecard, ScorecardTemplate, ScorecardTemplateType,
    UpdateScorecardRequest, auto_qa_rule,
};
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::auto_qa_service_client::AutoQaServiceClient;
use scorekeeper_proto::v1::conversation_service_client::ConversationServiceClient;
use scorekeeper_proto::v1::{
    AutoscoreConversationsRequest, AutoscoreResult, BatchIndexConversationsRequest, Conversation,
    GetScoreStatsRequest, Message, ScoreStatsRow, Speaker, StatsGroupBy,
    UpsertConversationsRequest,
};
use scorekeeper_store::Store;
use scorekeeper_store::stats::{ScoreStats, StatsGroupBy as PgGroupBy};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::settings::PostgresArgs;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// gRPC endpoint of a running `scorekeeper serve`.
    #[arg(long, env = "SK_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    grpc_url: String,
    /// Postgres of that server: the demo creates the customer and token there
    /// (the operator step) and reads the truth to compare ClickHouse with.
    #[command(flatten)]
    postgres: PostgresArgs,
    /// How many synthetic conversations to upload.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    conversations: u32,
    /// Customer name; default `demo-<unix seconds>`, so every run starts
    /// from an empty customer.
    #[arg(long)]
    customer: Option<String>,
}

/// Server limit on conversations per UpsertConversations call
/// (`limits::MAX_CONVERSATIONS_PER_UPSERT`).
const UPSERT_BATCH: usize = scorekeeper_domain::limits::MAX_CONVERSATIONS_PER_UPSERT;
/// Conversation ids per AutoscoreConversations call. The server takes up to
/// 10 000; smaller calls keep each one short and show progress.
const AUTOSCORE_BATCH: usize = 1000;
/// How many synthetic agents handle the conversations.
const AGENTS: u64 = 10;
/// Conversations start within this many days before now.
const HISTORY_DAYS: i64 = 14;
/// How long the analytics step waits for ClickHouse to catch up.
const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Averages computed by the two databases may differ in the last bits
/// (different summation order), never more than this, relative.
const AVERAGE_TOLERANCE: f64 = 1e-9;

/// Seeds of the pseudo-random streams: fixed, so the content of every run
/// is the same. Separate streams, so changing one step's choices leaves the
/// other steps' data as it was.
const CONTENT_SEED: u64 = 0x5C0E_4EE9_0000_0001;
const REVIEW_SEED: u64 = 0x5C0E_4EE9_0000_0002;

/// Runs every step in order; fails on the first step that fails, or when
/// ClickHouse does not agree with Postgres in time.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let customer = args
        .customer
        .clone()
        .unwrap_or_else(|| format!("demo-{}", Utc::now().timestamp()));
    println!(
        "scorekeeper demo: customer {customer:?}, server {}",
        args.grpc_url
    );

    let store = args.postgres.store()?;
    let (customer_id, token) = create_tenant(&store, &customer).await?;
    let mut api = Api::connect(&args.grpc_url, &token).await?;

    let templates = create_templates(&mut api).await?;
    let uploaded = upsert_conversations(&mut api, args.conversations as usize).await?;
    index_conversations(&mut api, &uploaded.conversations).await?;
    let autoqa = autoscore(&mut api, &templates.conversation, &uploaded.conversations).await?;
    let reviews = manual_scorecards(&mut api, &templates, &uploaded.conversations).await?;
    let live_scorecards = compare_analytics(&mut api, &store, customer_id, &templates).await?;

    print_summary(&Summary {
        customer: &customer,
        customer_id,
        token: &token,
        grpc_url: &args.grpc_url,
        uploaded: &uploaded,
        autoqa: &autoqa,
        reviews: &reviews,
        live_scorecards,
        elapsed: started.elapsed(),
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// The gRPC clients, all carrying the customer's token.

/// Adds `authorization: Bearer <token>` to every request; the server
/// derives the customer from the token, never from the request body.
#[derive(Clone)]
struct BearerToken(MetadataValue<Ascii>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, BearerToken>;

struct Api {
    scorecards: ScorecardServiceClient<Authed>,
    conversations: ConversationServiceClient<Authed>,
    autoqa: AutoQaServiceClient<Authed>,
    analytics: AnalyticsServiceClient<Authed>,
}

impl Api {
    async fn connect(url: &str, token: &str) -> anyhow::Result<Api> {
        let auth = BearerToken(
            format!("Bearer {token}")
                .parse()
                .context("the API token is not a valid header value")?,
        );
        // Generous per-call timeout: autoscoring a thousand transcripts on a
        // debug build takes a while, but a hung server should still end the
        // demo rather than leave it waiting forever.
        let channel = Endpoint::from_shared(url.to_owned())
            .with_context(|| format!("--grpc-url {url:?} is not a valid URL"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            .connect()
            .await
            .with_context(|| {
                format!("connecting to scorekeeper serve at {url} (is it running? scripts/demo starts one)")
            })?;
        Ok(Api {
            scorecards: ScorecardServiceClient::with_interceptor(channel.clone(), auth.clone()),
            conversations: ConversationServiceClient::with_interceptor(
                channel.clone(),
                auth.clone(),
            ),
            autoqa: AutoQaServiceClient::with_interceptor(channel.clone(), auth.clone()),
            analytics: AnalyticsServiceClient::with_interceptor(channel, auth),
        })
    }
}

/// Turns a gRPC outcome into the response message or an error naming the
/// step and the status code and message (not tonic's long `Debug` form with
/// metadata and details).
trait RpcOutcome<T> {
    fn during(self, step: impl Display) -> anyhow::Result<T>;
}

impl<T> RpcOutcome<T> for Result<Response<T>, Status> {
    fn during(self, step: impl Display) -> anyhow::Result<T> {
        self.map(Response::into_inner)
            .map_err(|status| anyhow!("{step}: {}", describe(&status)))
    }
}

fn describe(status: &Status) -> String {
    format!("gRPC status {:?}: {}", status.code(), status.message())
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

// ---------------------------------------------------------------------------
// Step 1: the operator creates the customer and its token.

async fn create_tenant(store: &Store, customer: &str) -> anyhow::Result<(CustomerId, String)> {
    section("1. Operator: customer and API token");
    let customer_id = store
        .ensure_customer(customer)
        .await
        .context("creating the customer in Postgres")?;
    let token = store
        .create_token(customer_id, false, "scorekeeper demo")
        .await
        .context("creating the API token")?;
    println!(
        "customer {customer:?} has id {customer_id}   (what `scorekeeper customer-create` does)"
    );
    println!(
        "API token sk_…{} created   (what `scorekeeper token-create` does; it prints the token once, the demo prints it again at the end)",
        token_tail(&token)
    );
    println!(
        "every call below sends `authorization: Bearer <token>`; the token decides the customer"
    );
    Ok((customer_id, token))
}

/// The last characters of a token, enough to recognise it in a log.
fn token_tail(token: &str) -> &str {
    token.get(token.len().saturating_sub(6)..).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Step 2: templates.

/// A template's criteria as the server stored them (ids assigned by it).
struct DemoTemplate {
    id: i64,
    name: String,
    criteria: Vec<Criterion>,
}

struct Templates {
    conversation: DemoTemplate,
    process: DemoTemplate,
}

impl Templates {
    fn name_of(&self, id: i64) -> Option<&str> {
        [&self.conversation, &self.process]
            .into_iter()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }
}

/// Phrases the rules look for, also used to write the transcripts.
const GREETING: &str = "thank you for calling";
const FURTHER_HELP: &str = "anything else";
const PROFANITY: &str = r"(?i)\b(damn|crap|bloody)\b";

async fn create_templates(api: &mut Api) -> anyhow::Result<Templates> {
    section("2. Scorecard templates");
    let conversation = create_template(
        api,
        "Call quality (demo)",
        ScorecardTemplateType::Conversation,
        vec![
            rule_criterion(
                "Greets the caller",
                2.0,
                rule(
                    auto_qa_rule::Kind::Present,
                    auto_qa_rule::PatternType::Phrase,
                    GREETING,
                    3,
                ),
            ),
            rule_criterion(
                "No profanity",
                3.0,
                rule(
                    auto_qa_rule::Kind::Absent,
                    auto_qa_rule::PatternType::Regex,
                    PROFANITY,
                    0,
                ),
            ),
            rule_criterion(
                "Offers further help",
                1.0,
                rule(
                    auto_qa_rule::Kind::Present,
                    auto_qa_rule::PatternType::Phrase,
                    FURTHER_HELP,
                    0,
                ),
            ),
            manual_criterion("Resolves the issue", 4.0, 0.0, 5.0),
        ],
    )
    .await
    .context("creating the conversation template")?;
    let process = create_template(
        api,
        "Case handling (demo)",
        ScorecardTemplateType::Process,
        vec![
            manual_criterion("Documents the case", 1.0, 0.0, 5.0),
            manual_criterion("Follows the escalation policy", 2.0, 0.0, 1.0),
            manual_criterion("Meets the response-time target", 1.0, 0.0, 1.0),
        ],
    )
    .await
    .context("creating the process template")?;
    for template in [&conversation, &process] {
        println!("template {} {:?}:", template.id, template.name);
        for c in &template.criteria {
            let how = match &c.autoqa_rule {
                Some(r) => format!("AutoQA: {}", describe_rule(r)),
                None => "manual only".to_owned(),
            };
            println!(
                "  criterion {:>6}  {:<32} weight {}  range {}..{}  {how}",
                c.id, c.name, c.weight, c.min_value, c.max_value
            );
        }
    }
    Ok(Templates {
        conversation,
        process,
    })
}

fn rule(
    kind: auto_qa_rule::Kind,
    pattern_type: auto_qa_rule::PatternType,
    pattern: &str,
    within_first_messages: u32,
) -> AutoQaRule {
    AutoQaRule {
        kind: kind as i32,
        pattern_type: pattern_type as i32,
        pattern: pattern.to_owned(),
        speaker: auto_qa_rule::Speaker::Agent as i32,
        within_first_messages,
        within_first_seconds: 0,
    }
}

/// A pass/fail criterion: AutoQA gives max_value (1) when the rule passes.
fn rule_criterion(name: &str, weight: f64, rule: AutoQaRule) -> Criterion {
    Criterion {
        name: name.to_owned(),
        weight,
        min_value: 0.0,
        max_value: 1.0,
        autoqa_rule: Some(rule),
        ..Default::default()
    }
}

fn manual_criterion(name: &str, weight: f64, min_value: f64, max_value: f64) -> Criterion {
    Criterion {
        name: name.to_owned(),
        weight,
        min_value,
        max_value,
        autoqa_rule: None,
        ..Default::default()
    }
}

fn describe_rule(rule: &AutoQaRule) -> String {
    let kind = if rule.kind == auto_qa_rule::Kind::Absent as i32 {
        "absent"
    } else {
        "present"
    };
    let pattern = if rule.pattern_type == auto_qa_rule::PatternType::Regex as i32 {
        "regex"
    } else {
        "phrase"
    };
    let mut text = format!("{pattern} {:?} {kind} (agent)", rule.pattern);
    if rule.within_first_messages > 0 {
        text.push_str(&format!(
            " in the first {} messages",
            rule.within_first_messages
        ));
    }
    text
}

async fn create_template(
    api: &mut Api,
    name: &str,
    template_type: ScorecardTemplateType,
    criteria: Vec<Criterion>,
) -> anyhow::Result<DemoTemplate> {
    let created = api
        .scorecards
        .create_scorecard_template(CreateScorecardTemplateRequest {
            name: name.to_owned(),
            template_type: template_type as i32,
            criteria,
        })
        .await
        .during("CreateScorecardTemplate")?;
    let ScorecardTemplate {
        id, name, criteria, ..
    } = created
        .template
        .context("CreateScorecardTemplate returned no template")?;
    Ok(DemoTemplate { id, name, criteria })
}

// ---------------------------------------------------------------------------
// Step 3: synthetic conversations.

/// xorshift64*: a tiny deterministic generator, plenty for demo data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // xorshift never leaves zero; any other seed is fine.
        Rng(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant at these sizes).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Which of the conversation template's rules a transcript was written to
/// pass: what AutoQA has to find.
#[derive(Clone, Copy, Debug)]
struct Written {
    greets_early: bool,
    clean: bool,
    offers_help: bool,
}

/// A stored conversation, as the later steps need it.
struct DemoConversation {
    id: i64,
    agent_id: String,
    started_at: DateTime<Utc>,
    written: Written,
}

/// What the upload step produced.
struct Uploaded {
    conversations: Vec<DemoConversation>,
    messages: usize,
}

impl Uploaded {
    /// Percentage of the conversations written with `flag` set.
    fn per_cent(&self, flag: impl Fn(&Written) -> bool) -> f64 {
        let with = self
            .conversations
            .iter()
            .filter(|c| flag(&c.written))
            .count();
        100.0 * with as f64 / self.conversations.len().max(1) as f64
    }
}

const OPENERS: &[&str] = &[
    "Hi, my order hasn't arrived yet.",
    "I was charged twice this month.",
    "Can you reset my password? I'm locked out.",
    "The app keeps crashing when I log in.",
    "I'd like to change my delivery address.",
    "My internet has been down since this morning.",
];
const CUSTOMER_LINES: &[&str] = &[
    "Okay, thanks.",
    "That makes sense.",
    "Could you check again, please?",
    "It's the one ending in 4411.",
    "Yes, that's my email address.",
    "How long will that take?",
];
const AGENT_LINES: &[&str] = &[
    "Let me look into that for you.",
    "I can see the order in our system.",
    "I've issued a refund; it takes three to five days.",
    "Could you confirm the email on your account?",
    "I've reset it; you should get a link shortly.",
    "I'm escalating this to our technical team.",
];

/// One transcript: alternating agent (even positions) and customer (odd),
/// 4–12 messages, with the rule phrases in some of them.
fn transcript(rng: &mut Rng, agent_id: &str) -> (Vec<Message>, Written) {
    let count = rng.between(4, 12) as usize;
    let mut texts: Vec<String> = (0..count)
        .map(|i| match (i, i % 2) {
            (1, _) => rng.pick(OPENERS).to_owned(),
            (_, 1) => rng.pick(CUSTOMER_LINES).to_owned(),
            _ => rng.pick(AGENT_LINES).to_owned(),
        })
        .collect();
    let agent_positions: Vec<usize> = (0..count).step_by(2).collect();
    let last_agent = agent_positions[agent_positions.len() - 1];

    // Greeting: mostly right away (passes), sometimes only later in the call,
    // outside the first three messages (fails the rule), sometimes never.
    let greeting = rng.below(100);
    let greets_early = greeting < 75;
    if greets_early {
        texts[0] =
            format!("Thank you for calling Acme support, this is {agent_id}. How can I help?");
    } else {
        texts[0] = format!("Hi, {agent_id} here.");
        if greeting < 88 && count > 4 {
            texts[4].push_str(" Thank you for calling us about this, by the way.");
        }
    }
    // Closing: usually offers further help.
    let offers_help = rng.chance(0.7);
    if offers_help {
        texts[last_agent].push_str(" Is there anything else I can help you with?");
    } else {
        texts[last_agent].push_str(" Goodbye.");
    }
    // A few agents lose their temper.
    let clean = !rng.chance(0.06);
    if !clean {
        let at = agent_positions[rng.below(agent_positions.len() as u64) as usize];
        texts[at].push_str(" Damn, the system is slow today.");
    }
    let written = Written {
        greets_early,
        clean,
        offers_help,
    };

    let mut offset_ms = 0;
    let messages = texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            if i > 0 {
                offset_ms += rng.between(3_000, 40_000) as i64;
            }
            let speaker = if i % 2 == 0 {
                Speaker::Agent
            } else {
                Speaker::Customer
            };
            Message {
                speaker: speaker as i32,
                text,
                offset_ms,
            }
        })
        .collect();
    (messages, written)
}

async fn upsert_conversations(api: &mut Api, total: usize) -> anyhow::Result<Uploaded> {
    section("3. Conversations");
    let step_started = Instant::now();
    let mut rng = Rng::new(CONTENT_SEED);
    // Whole seconds, like a telephony system reports them.
    let now = Utc::now().trunc_subsecs(0);
    let mut uploaded = Uploaded {
        conversations: Vec::with_capacity(total),
        messages: 0,
    };
    let mut batch = Vec::with_capacity(UPSERT_BATCH);
    // What each conversation of the batch in flight was written to contain.
    let mut batch_written = Vec::with_capacity(UPSERT_BATCH);
    for n in 0..total {
        let agent_id = format!("agent-{:02}", rng.between(1, AGENTS));
        let started_at =
            now - chrono::Duration::seconds(rng.below((HISTORY_DAYS * 86_400) as u64) as i64 + 60);
        let (messages, written) = transcript(&mut rng, &agent_id);
        batch_written.push(written);
        let last_offset = messages.last().map_or(0, |m| m.offset_ms);
        let ended_at = started_at
            + chrono::Duration::milliseconds(last_offset + rng.between(5_000, 60_000) as i64);
        uploaded.messages += messages.len();
        batch.push(Conversation {
            external_id: format!("demo-call-{:06}", n + 1),
            agent_id,
            started_at: Some(timestamp(started_at)),
            ended_at: Some(timestamp(ended_at)),
            messages,
            ..Default::default()
        });
        if batch.len() == UPSERT_BATCH || n + 1 == total {
            let sent = std::mem::take(&mut batch);
            let stored = api
                .conversations
                .upsert_conversations(UpsertConversationsRequest {
                    conversations: sent,
                })
                .await
                .during(format!(
                    "UpsertConversations (conversations {}..={})",
                    uploaded.conversations.len() + 1,
                    n + 1
                ))?;
            ensure!(
                stored.conversations.len() == batch_written.len(),
                "UpsertConversations returned {} conversations for {} sent",
                stored.conversations.len(),
                batch_written.len()
            );
            // The response lists the conversations in request order.
            for (c, written) in stored
                .conversations
                .into_iter()
                .zip(batch_written.drain(..))
            {
                let started_at = c
                    .started_at
                    .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
                    .with_context(|| {
                        format!(
                            "UpsertConversations returned conversation {} without started_at",
                            c.id
                        )
                    })?;
                uploaded.conversations.push(DemoConversation {
                    id: c.id,
                    agent_id: c.agent_id,
                    started_at,
                    written,
                });
            }
            println!("  upserted {:>6} of {total}", uploaded.conversations.len());
        }
    }
    println!(
        "{total} conversations, {} messages, {AGENTS} agents, over the last {HISTORY_DAYS} days ({:.1?}, batches of {UPSERT_BATCH})",
        uploaded.messages,
        step_started.elapsed()
    );
    println!(
        "written so that {:.0}% greet within the first 3 messages, {:.0}% offer further help, {:.0}% swear",
        uploaded.per_cent(|w| w.greets_early),
        uploaded.per_cent(|w| w.offers_help),
        uploaded.per_cent(|w| !w.clean)
    );
    Ok(uploaded)
}

// ---------------------------------------------------------------------------
// Step 4: batch index into ClickHouse.

async fn index_conversations(
    api: &mut Api,
    conversations: &[DemoConversation],
) -> anyhow::Result<()> {
    section("4. Batch index into ClickHouse");
    let step_started = Instant::now();
    let (Some(first), Some(last)) = (
        conversations.iter().map(|c| c.started_at).min(),
        conversations.iter().map(|c| c.started_at).max(),
    ) else {
        return Ok(());
    };
    // The window is [start, end): one second past the last start covers it.
    let end = last + chrono::Duration::seconds(1);
    let indexed = api
        .conversations
        .batch_index_conversations(BatchIndexConversationsRequest {
            conversation_ids: Vec::new(),
            start_time: Some(timestamp(first)),
            end_time: Some(timestamp(end)),
        })
        .await
        .during("BatchIndexConversations over the whole window")?;
    println!(
        "window {} .. {}: {} conversations, {} scorecards, {} scores indexed ({:.1?})",
        first.format("%Y-%m-%d %H:%M:%S"),
        end.format("%Y-%m-%d %H:%M:%S"),
        indexed.conversations_indexed,
        indexed.scorecards_indexed,
        indexed.scores_indexed,
        step_started.elapsed()
    );
    println!(
        "(no scorecards yet; from now on every scorecard change reaches ClickHouse through the outbox)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Step 5: AutoQA, and that running it again changes nothing.

struct AutoqaOutcome {
    scorecards: usize,
    changed: usize,
    average: f64,
    rerun: usize,
}

async fn autoscore(
    api: &mut Api,
    template: &DemoTemplate,
    conversations: &[DemoConversation],
) -> anyhow::Result<AutoqaOutcome> {
    section("5. AutoQA");
    let step_started = Instant::now();
    let ids: Vec<i64> = conversations.iter().map(|c| c.id).collect();
    let mut first_run: HashMap<i64, AutoscoreResult> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(AUTOSCORE_BATCH) {
        for result in autoscore_chunk(api, template.id, chunk).await? {
            first_run.insert(result.conversation_id, result);
        }
        println!("  scored {:>6} of {}", first_run.len(), ids.len());
    }
    ensure!(
        first_run.len() == ids.len(),
        "AutoscoreConversations returned results for {} of {} conversations",
        first_run.len(),
        ids.len()
    );
    let changed = first_run.values().filter(|r| r.changed).count();
    let average = first_run.values().map(|r| r.total_score).sum::<f64>() / first_run.len() as f64;
    println!(
        "{} AUTOQA scorecards: {changed} created or changed, {} unchanged; average score {average:.1}% ({:.1?})",
        first_run.len(),
        first_run.len() - changed,
        step_started.elapsed()
    );
    check_against_transcripts(template, conversations, &first_run)?;

    // Again on a spread of a few hundred: the transcripts and the template
    // are unchanged, so AutoQA must find its own scorecards and leave them.
    let sample: Vec<i64> = ids
        .iter()
        .step_by(ids.len().div_ceil(300).max(1))
        .copied()
        .collect();
    let again = autoscore_chunk(api, template.id, &sample).await?;
    let mut problems = Vec::new();
    for result in &again {
        match first_run.get(&result.conversation_id) {
            Some(first) if first.scorecard_id == result.scorecard_id && !result.changed => {}
            Some(first) => problems.push(format!(
                "conversation {}: scorecard {} (changed = {}), first run gave scorecard {}",
                result.conversation_id, result.scorecard_id, result.changed, first.scorecard_id
            )),
            None => problems.push(format!(
                "conversation {}: not scored the first time",
                result.conversation_id
            )),
        }
    }
    if !problems.is_empty() || again.len() != sample.len() {
        for problem in problems.iter().take(10) {
            println!("  {problem}");
        }
        bail!(
            "AutoscoreConversations is not idempotent: {} of {} results differ on the second run ({} results)",
            problems.len(),
            sample.len(),
            again.len()
        );
    }
    println!(
        "again on {} of them: changed = false and the same scorecard ids for all; AutoQA is idempotent",
        sample.len()
    );
    Ok(AutoqaOutcome {
        scorecards: first_run.len(),
        changed,
        average,
        rerun: sample.len(),
    })
}

/// AutoQA is deterministic, so its scores must be exactly what the
/// transcripts were written to earn: the domain's weighted total over the
/// rule criteria (the manual criterion has no score yet and does not count).
fn check_against_transcripts(
    template: &DemoTemplate,
    conversations: &[DemoConversation],
    results: &HashMap<i64, AutoscoreResult>,
) -> anyhow::Result<()> {
    let mut disagreements = Vec::new();
    for conversation in conversations {
        let written = conversation.written;
        let mut scored = Vec::new();
        for c in &template.criteria {
            let Some(rule) = &c.autoqa_rule else { continue };
            let passes = match rule.pattern.as_str() {
                GREETING => written.greets_early,
                PROFANITY => written.clean,
                FURTHER_HELP => written.offers_help,
                other => bail!(
                    "criterion {} has a rule the demo did not write: {other:?}",
                    c.id
                ),
            };
            let scale = CriterionScale {
                weight: c.weight,
                min_value: c.min_value,
                max_value: c.max_value,
            };
            scored.push((scale, if passes { c.max_value } else { c.min_value }));
        }
        let expected = total_score(scored);
        let actual = results
            .get(&conversation.id)
            .map_or(f64::NAN, |r| r.total_score);
        if !nearly_equal(actual, expected) {
            disagreements.push(format!(
                "conversation {}: AutoQA gave {actual:.2}%, the transcript was written for {expected:.2}% ({written:?})",
                conversation.id
            ));
        }
    }
    if !disagreements.is_empty() {
        for line in disagreements.iter().take(10) {
            println!("  {line}");
        }
        bail!(
            "AutoQA disagrees with how {} of {} transcripts were written",
            disagreements.len(),
            conversations.len()
        );
    }
    println!(
        "every AutoQA score is exactly what its transcript was written to earn ({} conversations)",
        conversations.len()
    );
    Ok(())
}

async fn autoscore_chunk(
    api: &mut Api,
    template_id: i64,
    ids: &[i64],
) -> anyhow::Result<Vec<AutoscoreResult>> {
    Ok(api
        .autoqa
        .autoscore_conversations(AutoscoreConversationsRequest {
            template_id,
            conversation_ids: ids.to_vec(),
        })
        .await
        .during(format!(
            "AutoscoreConversations ({} conversations)",
            ids.len()
        ))?
        .results)
}

// ---------------------------------------------------------------------------
// Step 6: reviewers' manual scorecards.

struct ReviewOutcome {
    conversation_scorecards: usize,
    process_scorecards: usize,
    updated: usize,
    deleted: usize,
}

/// Scores for every criterion of a template: whole numbers within each
/// criterion's range, as a reviewer would give them.
fn review_scores(rng: &mut Rng, template: &DemoTemplate) -> Vec<Score> {
    template
        .criteria
        .iter()
        .map(|c| {
            let steps = (c.max_value - c.min_value).floor().max(0.0) as u64;
            Score {
                criterion_id: c.id,
                value: c.min_value + rng.below(steps + 1) as f64,
            }
        })
        .collect()
}

async fn manual_scorecards(
    api: &mut Api,
    templates: &Templates,
    conversations: &[DemoConversation],
) -> anyhow::Result<ReviewOutcome> {
    section("6. Manual scorecards");
    let step_started = Instant::now();
    let mut rng = Rng::new(REVIEW_SEED);
    let mut created: Vec<Scorecard> = Vec::new();

    // Conversation scorecards on a spread of conversations; the agent is
    // taken from the conversation.
    let wanted = (conversations.len() / 10).clamp(1, 300);
    for conversation in conversations
        .iter()
        .step_by(conversations.len() / wanted)
        .take(wanted)
    {
        let scorecard = create_scorecard(
            api,
            CreateScorecardRequest {
                template_id: templates.conversation.id,
                conversation_id: conversation.id,
                scores: review_scores(&mut rng, &templates.conversation),
                ..Default::default()
            },
        )
        .await
        .with_context(|| {
            format!(
                "creating a conversation scorecard for conversation {}",
                conversation.id
            )
        })?;
        created.push(scorecard);
    }
    let conversation_scorecards = created.len();
    println!(
        "{conversation_scorecards} conversation scorecards (template {})",
        templates.conversation.id
    );

    // Process scorecards: a case handled by one agent across 1–3 of their
    // conversations.
    let mut by_agent: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for c in conversations {
        by_agent.entry(c.agent_id.as_str()).or_default().push(c.id);
    }
    let process_wanted = (conversations.len() / 30).clamp(1, 100);
    for _ in 0..process_wanted {
        let anchor = &conversations[rng.below(conversations.len() as u64) as usize];
        let theirs = &by_agent[anchor.agent_id.as_str()];
        let mut linked = vec![anchor.id];
        for _ in 0..rng.below(3) {
            let other = theirs[rng.below(theirs.len() as u64) as usize];
            if !linked.contains(&other) {
                linked.push(other);
            }
        }
        let scorecard = create_scorecard(
            api,
            CreateScorecardRequest {
                template_id: templates.process.id,
                agent_id: anchor.agent_id.clone(),
                linked_conversation_ids: linked,
                scores: review_scores(&mut rng, &templates.process),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating a process scorecard for {}", anchor.agent_id))?;
        created.push(scorecard);
    }
    let process_scorecards = created.len() - conversation_scorecards;
    println!(
        "{process_scorecards} process scorecards (template {}), each linking 1-3 conversations of one agent",
        templates.process.id
    );

    // Second opinions: new scores on some, with the version read at create
    // time (optimistic concurrency; nothing else touches them meanwhile).
    let updates = (created.len() / 4).min(30);
    let mut stale = None;
    for scorecard in created.iter_mut().rev().take(updates) {
        let template = if scorecard.template_id == templates.process.id {
            &templates.process
        } else {
            &templates.conversation
        };
        let old_version = scorecard.version;
        let updated = api
            .scorecards
            .update_scorecard(UpdateScorecardRequest {
                id: scorecard.id,
                scores: review_scores(&mut rng, template),
                expected_version: old_version,
                ..Default::default()
            })
            .await
            .during(format!("updating scorecard {}", scorecard.id))?
            .scorecard
            .with_context(|| format!("UpdateScorecard {} returned no scorecard", scorecard.id))?;
        stale.get_or_insert((scorecard.id, old_version));
        *scorecard = updated;
    }
    println!("{updates} scorecards updated with new scores (expected_version set)");
    if let Some((id, version)) = stale {
        show_stale_update(api, id, version).await;
    }

    // Some reviews are withdrawn: soft deletes, which ClickHouse receives as
    // tombstones.
    let deletes = (created.len() / 4).min(20);
    for scorecard in created.iter().take(deletes) {
        api.scorecards
            .delete_scorecard(DeleteScorecardRequest { id: scorecard.id })
            .await
            .during(format!("deleting scorecard {}", scorecard.id))?;
    }
    println!(
        "{deletes} scorecards deleted ({:.1?} for this step)",
        step_started.elapsed()
    );
    Ok(ReviewOutcome {
        conversation_scorecards,
        process_scorecards,
        updated: updates,
        deleted: deletes,
    })
}

async fn create_scorecard(
    api: &mut Api,
    request: CreateScorecardRequest,
) -> anyhow::Result<Scorecard> {
    api.scorecards
        .create_scorecard(request)
        .await
        .during("CreateScorecard")?
        .scorecard
        .context("CreateScorecard returned no scorecard")
}

/// An update based on an old version must be refused, not silently
/// overwrite the newer scores. Only reported: the stored data is the same
/// either way for the comparison that follows.
async fn show_stale_update(api: &mut Api, id: i64, stale_version: i64) {
    let outcome = api
        .scorecards
        .update_scorecard(UpdateScorecardRequest {
            id,
            expected_version: stale_version,
            ..Default::default()
        })
        .await;
    match outcome {
        Err(status) if status.code() == tonic::Code::Aborted => {
            println!(
                "an update with the stale version {stale_version} of scorecard {id} is refused: {}",
                describe(&status)
            );
        }
        Err(status) => println!(
            "WARNING: a stale update of scorecard {id} failed with {} (expected ABORTED)",
            describe(&status)
        ),
        Ok(_) => println!(
            "WARNING: a stale update of scorecard {id} (version {stale_version}) was accepted (expected ABORTED)"
        ),
    }
}

// ---------------------------------------------------------------------------
// Step 7: analytics from ClickHouse, checked against Postgres.

const GROUPINGS: [(StatsGroupBy, PgGroupBy, &str); 3] = [
    (StatsGroupBy::Agent, PgGroupBy::Agent, "agent"),
    (StatsGroupBy::Template, PgGroupBy::Template, "template"),
    (
        StatsGroupBy::Day,
        PgGroupBy::Day,
        "day (UTC, of scorecard creation)",
    ),
];

/// The statistics of one grouping from both databases.
struct Pair {
    title: &'static str,
    group_by: StatsGroupBy,
    clickhouse: Vec<ScoreStatsRow>,
    postgres: Vec<ScoreStats>,
}

impl Pair {
    fn matches(&self) -> bool {
        self.clickhouse.len() == self.postgres.len()
            && self.clickhouse.iter().zip(&self.postgres).all(|(c, p)| {
                c.key == p.key
                    && c.is_process_scorecard == p.is_process_scorecard
                    && c.scorecards == p.scorecards
                    && nearly_equal(c.average_total_score, p.average_total_score)
            })
    }

    fn totals(&self) -> (i64, i64) {
        (
            self.clickhouse.iter().map(|r| r.scorecards).sum(),
            self.postgres.iter().map(|r| r.scorecards).sum(),
        )
    }
}

/// Equal up to [`AVERAGE_TOLERANCE`], relative (absolute for values below 1).
fn nearly_equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= AVERAGE_TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

async fn fetch_pairs(
    api: &mut Api,
    store: &Store,
    customer_id: CustomerId,
) -> anyhow::Result<Vec<Pair>> {
    let mut pairs = Vec::with_capacity(GROUPINGS.len());
    for (group_by, pg_group_by, title) in GROUPINGS {
        let clickhouse = api
            .analytics
            .get_score_stats(GetScoreStatsRequest {
                group_by: group_by as i32,
                start_time: None,
                end_time: None,
            })
            .await
            .during(format!("GetScoreStats by {title}"))?
            .rows;
        let postgres = store
            .score_stats(customer_id, pg_group_by, None, None)
            .await
            .with_context(|| format!("reading score statistics by {title} from Postgres"))?;
        pairs.push(Pair {
            title,
            group_by,
            clickhouse,
            postgres,
        });
    }
    Ok(pairs)
}

/// Waits until ClickHouse's statistics equal Postgres's for every grouping,
/// prints them side by side, and returns the customer's live scorecards.
async fn compare_analytics(
    api: &mut Api,
    store: &Store,
    customer_id: CustomerId,
    templates: &Templates,
) -> anyhow::Result<i64> {
    section("7. Analytics: ClickHouse against Postgres");
    println!(
        "serve's outbox dispatcher copies every scorecard change to ClickHouse asynchronously; waiting for it"
    );
    let step_started = Instant::now();
    let deadline = step_started + CONVERGENCE_TIMEOUT;
    // Progress is printed when the counts move, and every 10 s while they
    // do not, so a stuck dispatcher does not flood the terminal.
    let mut last_progress: Option<((i64, i64), Instant)> = None;
    let pairs = loop {
        let pairs = fetch_pairs(api, store, customer_id).await?;
        let (in_clickhouse, in_postgres) = pairs[0].totals();
        if pairs.iter().all(Pair::matches) {
            println!(
                "  converged after {:.1?}: {in_clickhouse} live scorecards on both sides",
                step_started.elapsed()
            );
            break pairs;
        }
        if Instant::now() >= deadline {
            println!("  not converged after {CONVERGENCE_TIMEOUT:?}; rows that differ:");
            for pair in &pairs {
                print_table(pair, templates, true);
            }
            bail!(
                "ClickHouse does not match Postgres after {CONVERGENCE_TIMEOUT:?} \
                 ({in_clickhouse} vs {in_postgres} live scorecards); see serve's log for outbox errors"
            );
        }
        let counts = (in_clickhouse, in_postgres);
        let due = last_progress.is_none_or(|(printed, at)| {
            printed != counts || at.elapsed() >= Duration::from_secs(10)
        });
        if due {
            let pending = if in_clickhouse == in_postgres {
                " (some scores still differ)"
            } else {
                ""
            };
            println!(
                "  {:>4.0?}: ClickHouse has {in_clickhouse} live scorecards, Postgres {in_postgres}{pending}",
                step_started.elapsed()
            );
            last_progress = Some((counts, Instant::now()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for pair in &pairs {
        print_table(pair, templates, false);
    }
    println!("\nClickHouse matches Postgres: yes");
    Ok(pairs[0].totals().1)
}

/// One line of the comparison table: the same group from both sides.
#[derive(Default)]
struct Line {
    clickhouse: Option<(i64, f64)>,
    postgres: Option<(i64, f64)>,
}

impl Line {
    fn differs(&self) -> bool {
        match (self.clickhouse, self.postgres) {
            (Some((cn, ca)), Some((pn, pa))) => cn != pn || !nearly_equal(ca, pa),
            _ => true,
        }
    }
}

fn print_table(pair: &Pair, templates: &Templates, only_differences: bool) {
    // Keyed by (key, is_process): BTreeMap's String order is byte order, the
    // order both queries return.
    let mut lines: BTreeMap<(String, bool), Line> = BTreeMap::new();
    for r in &pair.clickhouse {
        lines
            .entry((r.key.clone(), r.is_process_scorecard))
            .or_default()
            .clickhouse = Some((r.scorecards, r.average_total_score));
    }
    for r in &pair.postgres {
        lines
            .entry((r.key.clone(), r.is_process_scorecard))
            .or_default()
            .postgres = Some((r.scorecards, r.average_total_score));
    }
    println!("\nby {}:", pair.title);
    println!(
        "  {:<34} {:<12} {:>10} {:>10} {:>10} {:>10}",
        "key", "kind", "count CH", "count PG", "avg CH", "avg PG"
    );
    let count = |side: Option<(i64, f64)>| side.map_or("-".to_owned(), |(n, _)| n.to_string());
    let average =
        |side: Option<(i64, f64)>| side.map_or("-".to_owned(), |(_, a)| format!("{a:.4}"));
    for ((key, is_process), line) in &lines {
        if only_differences && !line.differs() {
            continue;
        }
        let label = match (
            pair.group_by,
            key.parse::<i64>().ok().and_then(|id| templates.name_of(id)),
        ) {
            (StatsGroupBy::Template, Some(name)) => format!("{key} {name}"),
            _ => key.clone(),
        };
        println!(
            "  {label:<34} {:<12} {:>10} {:>10} {:>10} {:>10}{}",
            if *is_process {
                "process"
            } else {
                "conversation"
            },
            count(line.clickhouse),
            count(line.postgres),
            average(line.clickhouse),
            average(line.postgres),
            if line.differs() { "   <- differs" } else { "" }
        );
    }
}

// ---------------------------------------------------------------------------
// Step 8: summary and what to look at next.

struct Summary<'a> {
    customer: &'a str,
    customer_id: CustomerId,
    token: &'a str,
    grpc_url: &'a str,
    uploaded: &'a Uploaded,
    autoqa: &'a AutoqaOutcome,
    reviews: &'a ReviewOutcome,
    /// All of the customer's, also from earlier runs with the same `--customer`.
    live_scorecards: i64,
    elapsed: Duration,
}

fn print_summary(s: &Summary<'_>) {
    section("8. Summary");
    let r = s.reviews;
    println!("customer            {}", s.customer);
    println!(
        "conversations       {} ({} messages)",
        s.uploaded.conversations.len(),
        s.uploaded.messages
    );
    println!(
        "AutoQA scorecards   {} ({} written, average {:.1}%; re-run on {} changed nothing)",
        s.autoqa.scorecards, s.autoqa.changed, s.autoqa.average, s.autoqa.rerun
    );
    println!(
        "manual scorecards   {} conversation + {} process, {} updated, {} deleted",
        r.conversation_scorecards, r.process_scorecards, r.updated, r.deleted
    );
    println!(
        "live scorecards     {} (the customer's, identical in Postgres and ClickHouse)",
        s.live_scorecards
    );
    println!("time taken          {:.1?}", s.elapsed);
    let host = s
        .grpc_url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    // scripts/demo passes SK_HTTP_ADDR to serve; the same default here.
    let http_addr = std::env::var("SK_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".to_owned());
    println!("\nWhat next:");
    println!("  - what each write path sent to ClickHouse, and the outbox backlog:");
    println!(
        "    curl -s http://{http_addr}/metrics | grep -E 'scorekeeper_(clickhouse_rows_written|outbox)'"
    );
    println!("  - query the API yourself with this demo customer's token:");
    println!("    grpcurl -plaintext -import-path proto -proto scorekeeper/v1/analytics.proto \\");
    println!("      -H 'authorization: Bearer {}' \\", s.token);
    println!(
        "      -d '{{\"group_by\": \"STATS_GROUP_BY_DAY\"}}' {host} scorekeeper.v1.AnalyticsService/GetScoreStats"
    );
    println!("  - the ClickHouse copy itself:");
    println!(
        "    SELECT agent_id, count(), avg(total_score) FROM scorekeeper.scorecards FINAL \
         WHERE customer_id = {} AND is_deleted = 0 GROUP BY agent_id ORDER BY agent_id",
        s.customer_id
    );
}
