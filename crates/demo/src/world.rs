//! The demo's world: the two scorecard templates, and the deterministic
//! generator (a tiny RNG) of the synthetic conversations and transcripts
//! that are uploaded, each remembering which rules it was written to pass.

use std::time::Instant;

use anyhow::{Context, ensure};
use chrono::{DateTime, SubsecRound, Utc};
use scorekeeper_proto::coaching::auto_qa_rule::{Kind, PatternType};
use scorekeeper_proto::coaching::{
    AutoQaRule, CreateScorecardTemplateRequest, Criterion, ScorecardTemplate, ScorecardTemplateType,
    auto_qa_rule,
};
use scorekeeper_proto::v1::{Conversation, Message, Speaker, UpsertConversationsRequest};

use super::api::{Api, RpcOutcome};
use scorekeeper_proto::time::{from_timestamp, to_timestamp};

use super::{AGENTS, CONTENT_SEED, HISTORY_DAYS, UPSERT_BATCH, section};

// ---------------------------------------------------------------------------
// Step 2: templates.

/// A template's criteria as the server stored them (ids assigned by it).
pub(super) struct DemoTemplate {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) criteria: Vec<Criterion>,
}

pub(super) struct Templates {
    pub(super) conversation: DemoTemplate,
    pub(super) process: DemoTemplate,
}

impl Templates {
    pub(super) fn name_of(&self, id: i64) -> Option<&str> {
        [&self.conversation, &self.process].into_iter().find(|t| t.id == id).map(|t| t.name.as_str())
    }
}

/// Phrases the rules look for, also used to write the transcripts.
pub(super) const GREETING: &str = "thank you for calling";
pub(super) const FURTHER_HELP: &str = "anything else";
pub(super) const PROFANITY: &str = r"(?i)\b(damn|crap|bloody)\b";

pub(super) async fn create_templates(api: &mut Api) -> anyhow::Result<Templates> {
    section("2. Scorecard templates");
    let conversation = create_template(
        api,
        "Call quality (demo)",
        ScorecardTemplateType::Conversation,
        vec![
            rule_criterion("Greets the caller", 2.0, Kind::Present, PatternType::Phrase, GREETING, 3),
            rule_criterion("No profanity", 3.0, Kind::Absent, PatternType::Regex, PROFANITY, 0),
            rule_criterion("Offers further help", 1.0, Kind::Present, PatternType::Phrase, FURTHER_HELP, 0),
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
    Ok(Templates { conversation, process })
}

/// A pass/fail criterion: AutoQA gives max_value (1) when the rule (on what
/// the agent says) passes.
fn rule_criterion(
    name: &str,
    weight: f64,
    kind: Kind,
    pattern_type: PatternType,
    pattern: &str,
    within_first_messages: u32,
) -> Criterion {
    let rule = AutoQaRule {
        kind: kind as i32,
        pattern_type: pattern_type as i32,
        pattern: pattern.to_owned(),
        speaker: auto_qa_rule::Speaker::Agent as i32,
        within_first_messages,
        within_first_seconds: 0,
    };
    Criterion { autoqa_rule: Some(rule), ..manual_criterion(name, weight, 0.0, 1.0) }
}

fn manual_criterion(name: &str, weight: f64, min_value: f64, max_value: f64) -> Criterion {
    Criterion { name: name.to_owned(), weight, min_value, max_value, autoqa_rule: None, ..Default::default() }
}

fn describe_rule(rule: &AutoQaRule) -> String {
    let kind = if rule.kind == Kind::Absent as i32 { "absent" } else { "present" };
    let pattern = if rule.pattern_type == PatternType::Regex as i32 { "regex" } else { "phrase" };
    let mut text = format!("{pattern} {:?} {kind} (agent)", rule.pattern);
    if rule.within_first_messages > 0 {
        text.push_str(&format!(" in the first {} messages", rule.within_first_messages));
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
    let ScorecardTemplate { id, name, criteria, .. } =
        created.template.context("CreateScorecardTemplate returned no template")?;
    Ok(DemoTemplate { id, name, criteria })
}

// ---------------------------------------------------------------------------
// Step 3: synthetic conversations.

/// xorshift64*: a tiny deterministic generator, plenty for demo data.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
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
    pub(super) fn below(&mut self, n: u64) -> u64 {
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
pub(super) struct Written {
    pub(super) greets_early: bool,
    pub(super) clean: bool,
    pub(super) offers_help: bool,
}

/// A stored conversation, as the later steps need it.
pub(super) struct DemoConversation {
    pub(super) id: i64,
    pub(super) agent_id: String,
    pub(super) started_at: DateTime<Utc>,
    pub(super) written: Written,
}

/// What the upload step produced.
pub(super) struct Uploaded {
    pub(super) conversations: Vec<DemoConversation>,
    pub(super) messages: usize,
}

impl Uploaded {
    /// Percentage of the conversations written with `flag` set.
    fn per_cent(&self, flag: impl Fn(&Written) -> bool) -> f64 {
        let with = self.conversations.iter().filter(|c| flag(&c.written)).count();
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
        texts[0] = format!("Thank you for calling Acme support, this is {agent_id}. How can I help?");
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
    let written = Written { greets_early, clean, offers_help };

    let mut offset_ms = 0;
    let messages = texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            if i > 0 {
                offset_ms += rng.between(3_000, 40_000) as i64;
            }
            let speaker = if i % 2 == 0 { Speaker::Agent } else { Speaker::Customer };
            Message { speaker: speaker as i32, text, offset_ms }
        })
        .collect();
    (messages, written)
}

pub(super) async fn upsert_conversations(api: &mut Api, total: usize) -> anyhow::Result<Uploaded> {
    section("3. Conversations");
    let step_started = Instant::now();
    let mut rng = Rng::new(CONTENT_SEED);
    // Whole seconds, like a telephony system reports them.
    let now = Utc::now().trunc_subsecs(0);
    let mut uploaded = Uploaded { conversations: Vec::with_capacity(total), messages: 0 };
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
        let ended_at =
            started_at + chrono::Duration::milliseconds(last_offset + rng.between(5_000, 60_000) as i64);
        uploaded.messages += messages.len();
        batch.push(Conversation {
            external_id: format!("demo-call-{:06}", n + 1),
            agent_id,
            started_at: Some(to_timestamp(started_at)),
            ended_at: Some(to_timestamp(ended_at)),
            messages,
            ..Default::default()
        });
        if batch.len() == UPSERT_BATCH || n + 1 == total {
            let sent = std::mem::take(&mut batch);
            let stored = api
                .conversations
                .upsert_conversations(UpsertConversationsRequest { conversations: sent })
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
            for (c, written) in stored.conversations.into_iter().zip(batch_written.drain(..)) {
                let started_at = c.started_at.and_then(|t| from_timestamp(&t).ok()).with_context(|| {
                    format!("UpsertConversations returned conversation {} without started_at", c.id)
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
