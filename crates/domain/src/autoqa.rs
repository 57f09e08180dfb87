//! AutoQA rules: deterministic checks of a transcript that score a criterion.
//!
//! A rule is stored as JSON in `criteria.autoqa_rule`; the serde shape below is
//! that stored format, so changing it needs a migration.

use crate::transcript::{Message, Speaker};

/// Whether the pattern must occur or must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Present,
    Absent,
}

/// How `pattern` is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternType {
    /// Case-insensitive phrase on word boundaries; runs of whitespace in the
    /// phrase match any run of whitespace in the text.
    Phrase,
    /// A Rust `regex` expression, matched as written.
    Regex,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub kind: RuleKind,
    pub pattern_type: PatternType,
    pub pattern: String,
    /// Only this speaker's messages; `None` for any speaker.
    pub speaker: Option<Speaker>,
    /// Only the first N messages of the transcript (counted over all
    /// speakers, before the speaker filter); 0 for all.
    pub within_first_messages: u32,
    /// Only messages with `offset_ms < N * 1000`; 0 for no limit.
    pub within_first_seconds: u32,
}
