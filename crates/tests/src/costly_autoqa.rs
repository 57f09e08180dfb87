//! AutoQA work as costly as a hostile customer can make it: templates of
//! many rules that each cost near the admission budget on text the fast
//! engine cannot scan, and long conversations of such text.

use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::v1;

use crate::env::Customer;
use crate::fixtures::{T0, conversation, criterion};

/// An admitted rule of high cost: counted repetitions between Unicode word
/// boundaries on non-ASCII text keep the regex engine on its NFA, about
/// 3 ms of CPU per 16 KiB message measured here (the budget is 10 ms), and
/// it never matches [`slow_text`], so every message is searched whole.
pub const COSTLY_ADMITTED: &str = r"\b.{1,50}\bq";

/// Refused by the measured cost (about 55 ms per 16 KiB message here)
/// though its counted repetitions (100, in five branches) are within bounds.
pub const COSTLY_REFUSED: &str = r"(?:\b.{1,100}a|\b.{1,100}b|\b.{1,100}c|\b.{1,100}d|\b.{1,100}e)\bq";

/// Refused by its counted repetitions (1,000) before it is measured.
pub const REPETITIVE_REFUSED: &str = r"\b.{1,1000}\bq";

/// A criterion scored by the regex `pattern`.
pub fn regex_criterion(name: &str, pattern: &str) -> pb::Criterion {
    pb::Criterion {
        autoqa_rule: Some(pb::AutoQaRule {
            kind: auto_qa_rule::Kind::Absent as i32,
            pattern_type: auto_qa_rule::PatternType::Regex as i32,
            pattern: pattern.into(),
            ..Default::default()
        }),
        ..criterion(name, 1.0, 1.0)
    }
}

/// A conversation template of `rules` criteria, each the regex `pattern`.
pub fn template_request(rules: usize, pattern: &str) -> pb::CreateScorecardTemplateRequest {
    pb::CreateScorecardTemplateRequest {
        name: format!("{rules} x {pattern}"),
        template_type: pb::ScorecardTemplateType::Conversation as i32,
        criteria: (0..rules).map(|i| regex_criterion(&format!("rule {i}"), pattern)).collect(),
    }
}

/// 16 KiB (less a character) of French text without a `q`.
pub fn slow_text() -> String {
    let sentence = "Héllo, je voudrais un remboursement pour ma commande numéro 4521, merci beaucoup. ";
    let mut text = sentence.repeat(16 * 1024 / sentence.len() + 1);
    let end = (0..=16 * 1024).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.truncate(end);
    text
}

/// Upserts `n` conversations `slow-<tag>-i` of `messages` messages of
/// [`slow_text`] each, and returns their ids.
pub async fn slow_conversations(customer: &Customer, tag: &str, n: usize, messages: usize) -> Vec<i64> {
    let text = slow_text();
    let lines: Vec<(v1::Speaker, &str)> =
        (0..messages).map(|_| (v1::Speaker::Agent, text.as_str())).collect();
    let batch =
        (0..n).map(|i| conversation(&format!("slow-{tag}-{i}"), "agent-1", T0 + i as i64, &lines)).collect();
    customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest { conversations: batch })
        .await
        .expect("upserting slow conversations")
        .into_inner()
        .conversations
        .iter()
        .map(|c| c.id)
        .collect()
}
