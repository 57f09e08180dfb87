//! AutoscoreConversations: evaluates a template's rule criteria on
//! transcripts and keeps one AUTOQA scorecard per (conversation, template).
//! The scorecards reach ClickHouse through the outbox, like API writes:
//! this crate is an application service on Postgres and never touches
//! ClickHouse itself.
//!
//! One tenant's rules must not stall the others, so a call:
//! * is admitted only while the process runs fewer than `max_calls` calls
//!   and the customer fewer than `max_calls_per_customer` ([`calls`]);
//! * scores with rules that passed the cost model ([`admission`]) when the
//!   template was created, and again when this process first compiled them
//!   ([`cache`]: compiled once per template, bounded by bytes);
//! * reads transcripts in chunks of at most `transcript_chunk_bytes`;
//! * scores on the [`pool`]'s blocking threads, never on the async
//!   runtime, in slices of [`SLICE`], so calls take turns;
//! * stops within one message's search of its [`budget`]: the client's
//!   deadline, the client going away, or the server's `call_timeout`;
//! * writes nothing until every conversation is scored, then writes each
//!   scorecard in its own short transaction, in a task of its own that
//!   finishes even if the client leaves: a stopped call has written
//!   nothing, a finished one everything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use scorekeeper_domain::autoqa::{Rule, score_transcript_unless_stopped};
use scorekeeper_domain::scorecard::{Score, Template};
use scorekeeper_domain::scorecard_write::autoqa_conversations_found;
use scorekeeper_domain::transcript::Message;
use scorekeeper_domain::{ConversationId, CustomerId, Invalid, ScorecardId, TemplateId};
use scorekeeper_store::Store;
use scorekeeper_store::conversations::Conversation;

pub mod admission;
pub mod budget;
pub mod cache;
pub mod calls;
pub mod error;
pub mod metrics;
pub mod pool;

use budget::{Budget, Stopped};
use cache::{CompiledTemplate, TemplateCache};
use calls::CallSlots;
pub use error::{AutoQaError, Result};
use pool::ScoringPool;

/// Scorecard writes in flight at once; results keep request order.
const WRITE_CONCURRENCY: usize = 8;

/// Longest piece of scoring one pool thread does before it lets the next
/// call's slice run (a slice ends between conversations, so a conversation
/// whose rules cost more runs whole).
pub const SLICE: Duration = Duration::from_millis(50);

/// How AutoQA shares the process. Defaults in [`AutoQaSettings::default`];
/// `serve` takes each from a flag or the environment (docs/operations.md).
#[derive(Clone, Debug)]
pub struct AutoQaSettings {
    /// Scoring threads (`AUTOQA_THREADS`).
    pub threads: usize,
    /// Calls running at once in the process (`AUTOQA_MAX_CALLS`).
    pub max_calls: usize,
    /// Calls running at once for one customer (`AUTOQA_MAX_CALLS_PER_CUSTOMER`).
    pub max_calls_per_customer: usize,
    /// The server's limit on one call's scoring (`AUTOQA_CALL_TIMEOUT`).
    pub call_timeout: Duration,
    /// Compiled templates kept, in bytes (`AUTOQA_RULE_CACHE_BYTES`).
    pub rule_cache_bytes: u64,
    /// Transcript text one call holds at once, in bytes
    /// (`AUTOQA_TRANSCRIPT_CHUNK_BYTES`); a larger conversation is read whole.
    pub transcript_chunk_bytes: u64,
}

impl Default for AutoQaSettings {
    fn default() -> Self {
        AutoQaSettings {
            threads: default_threads(),
            max_calls: 8,
            max_calls_per_customer: 2,
            call_timeout: Duration::from_secs(60),
            rule_cache_bytes: 64 << 20,
            transcript_chunk_bytes: 8 << 20,
        }
    }
}

/// Half the cores (at least one): the other half stays with the async
/// runtime, which serves every other tenant.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1)
}

#[derive(Clone, Debug, PartialEq)]
pub struct AutoscoreResult {
    pub conversation_id: ConversationId,
    pub scorecard_id: ScorecardId,
    pub total_score: f64,
    /// False when the stored AUTOQA scorecard already had these scores.
    pub changed: bool,
}

/// AutoQA for one process: its pool, its rule cache and its call slots.
/// Cheap to clone; clones share all three.
#[derive(Clone)]
pub struct AutoQa {
    store: Store,
    pool: ScoringPool,
    templates: TemplateCache,
    calls: CallSlots,
    settings: AutoQaSettings,
}

impl AutoQa {
    pub fn new(store: Store, settings: AutoQaSettings) -> AutoQa {
        AutoQa {
            store,
            pool: ScoringPool::new(settings.threads),
            templates: TemplateCache::new(settings.rule_cache_bytes),
            calls: CallSlots::new(settings.max_calls, settings.max_calls_per_customer),
            settings,
        }
    }

    /// Admits the rules of a template about to be created, by the cost
    /// model of [`admission`], on the scoring pool; `rules` are the
    /// template's criteria that carry one, by index. The first refused rule
    /// is named as `criteria[i].autoqa_rule.pattern`.
    pub async fn admit_rules(&self, rules: Vec<(usize, Rule)>) -> Result<(), Invalid> {
        self.pool
            .run(move || {
                for (index, rule) in &rules {
                    admission::admit(rule).map_err(|refusal| {
                        Invalid::new(
                            format!("criteria[{index}].autoqa_rule.pattern"),
                            scorekeeper_domain::report::error_chain(&refusal),
                        )
                    })?;
                }
                Ok(())
            })
            .await
    }

    /// Scores each conversation with the template's rule criteria, within
    /// the budget of the crate's head; `client_deadline` is what the
    /// client's deadline leaves of the call. The template must be a
    /// conversation template with at least one rule; unknown conversations
    /// are invalid input, checked before anything is read or written.
    pub async fn autoscore(
        &self,
        customer_id: CustomerId,
        template_id: TemplateId,
        conversation_ids: &[ConversationId],
        client_deadline: Option<Duration>,
    ) -> Result<Vec<AutoscoreResult>> {
        let mut counted = CountedCall(None);
        let result = async {
            let slot = self.calls.enter(customer_id)?;
            let budget = Budget::start(client_deadline, self.settings.call_timeout);
            let _cancel_when_abandoned = budget.cancel_on_drop();
            let stored = self.store.get_template(customer_id, template_id).await?;
            let compiled = self.compiled(customer_id, template_id, stored.as_ref()).await?;
            let template = stored.expect("a template that compiled exists");
            let conversations = self.store.conversations(customer_id, conversation_ids).await?;
            let found: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
            autoqa_conversations_found(conversation_ids, &found)?;
            let sizes = self.store.transcript_bytes(customer_id, &found).await?;
            let mut scores = Vec::with_capacity(conversations.len());
            for chunk in chunks_by_bytes(&conversations, &sizes, self.settings.transcript_chunk_bytes) {
                let ids: Vec<ConversationId> = chunk.iter().map(|c| c.id).collect();
                let mut transcripts = self.store.transcripts(customer_id, &ids).await?;
                let chunk: Arc<Vec<Vec<Message>>> =
                    Arc::new(ids.iter().map(|id| transcripts.remove(id).unwrap_or_default()).collect());
                let mut next = 0;
                while next < chunk.len() {
                    budget.check()?;
                    let (compiled, chunk, budget) = (compiled.clone(), chunk.clone(), budget.clone());
                    let (scored, reached) =
                        self.pool.run(move || score_slice(&compiled, &chunk, next, &budget)).await?;
                    scores.extend(scored);
                    next = reached;
                }
            }
            let writes =
                tokio::spawn(write(self.store.clone(), customer_id, template, conversations, scores, slot));
            match writes.await {
                Ok(written) => written,
                Err(panic) => std::panic::resume_unwind(panic.into_panic()),
            }
        }
        .await;
        counted.0 = Some(error::outcome(result.as_ref().err()));
        result
    }

    /// The template's compiled rules: from the cache, or compiled and
    /// admitted on the pool (then kept).
    async fn compiled(
        &self,
        customer_id: CustomerId,
        template_id: TemplateId,
        stored: Option<&Template>,
    ) -> Result<Arc<CompiledTemplate>> {
        // The template is copied to the pool only on a miss.
        let compile = || {
            let stored = stored.cloned();
            self.pool.run(move || CompiledTemplate::compile(stored.as_ref(), template_id))
        };
        let compiled = self.templates.get_or_compile(customer_id, template_id, compile).await?;
        ::metrics::gauge!(crate::metrics::AUTOQA_RULE_CACHE_BYTES).set(self.templates.bytes() as f64);
        Ok(compiled)
    }
}

/// Counts a call in `scorekeeper_autoqa_calls_total` when dropped: by its
/// outcome, or as `cancelled` when its future was dropped before it ended
/// (the client went away or its deadline passed).
struct CountedCall(Option<&'static str>);

impl Drop for CountedCall {
    fn drop(&mut self) {
        let outcome = self.0.unwrap_or("cancelled");
        ::metrics::counter!(crate::metrics::AUTOQA_CALLS_TOTAL, "outcome" => outcome).increment(1);
    }
}

/// Conversations in order, cut into runs whose transcripts add up to at
/// most `limit` bytes (a conversation larger than `limit` is a run alone).
fn chunks_by_bytes<'c>(
    conversations: &'c [Conversation],
    sizes: &std::collections::HashMap<ConversationId, u64>,
    limit: u64,
) -> Vec<&'c [Conversation]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (index, conversation) in conversations.iter().enumerate() {
        let size = sizes.get(&conversation.id).copied().unwrap_or(0);
        if index > start && bytes.saturating_add(size) > limit {
            chunks.push(&conversations[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes = bytes.saturating_add(size);
    }
    if start < conversations.len() {
        chunks.push(&conversations[start..]);
    }
    chunks
}

/// Scores `transcripts[from..]` until done or [`SLICE`] is used; returns
/// the scores and the index reached. Runs on a pool thread.
fn score_slice(
    compiled: &CompiledTemplate,
    transcripts: &[Vec<Message>],
    from: usize,
    budget: &Budget,
) -> std::result::Result<(Vec<Vec<Score>>, usize), Stopped> {
    let started = Instant::now();
    let criteria = compiled.criteria();
    let mut scored = Vec::new();
    let mut reached = from;
    let mut stopped = None;
    for messages in &transcripts[from..] {
        let scores = score_transcript_unless_stopped(&criteria, messages, || match budget.check() {
            Ok(()) => false,
            Err(why) => {
                stopped = Some(why);
                true
            }
        });
        let Some(scores) = scores else { break };
        scored.push(scores.into_iter().map(|(criterion_id, value)| Score { criterion_id, value }).collect());
        reached += 1;
        if started.elapsed() >= SLICE {
            break;
        }
    }
    match stopped {
        Some(why) => Err(why),
        None => Ok((scored, reached)),
    }
}

/// Writes one AUTOQA scorecard per conversation; `scores` are in the order
/// of `conversations`. Holds the call's slot until the writes are done.
async fn write(
    store: Store,
    customer_id: CustomerId,
    template: Template,
    conversations: Vec<Conversation>,
    scores: Vec<Vec<Score>>,
    _slot: calls::CallSlot,
) -> Result<Vec<AutoscoreResult>> {
    let (store, template) = (&store, &template);
    futures::stream::iter(conversations.into_iter().zip(scores))
        .map(|(conversation, scores)| async move {
            let (scorecard, changed) = store
                .upsert_autoqa_scorecard(
                    customer_id,
                    template,
                    conversation.id,
                    &conversation.agent_id,
                    &scores,
                )
                .await?;
            Ok(AutoscoreResult {
                conversation_id: conversation.id,
                scorecard_id: scorecard.id,
                total_score: scorecard.total_score,
                changed,
            })
        })
        .buffered(WRITE_CONCURRENCY)
        .try_collect()
        .await
}
