//! The scorekeeper domain: ids, scorecard kinds, validation limits, scoring,
//! templates and scorecards, the rules that decide what a scorecard write
//! writes, the mirrored row shapes and AutoQA rules. Pure code, no I/O, so
//! every other crate can share it.

pub mod audit;
pub mod autoqa;
pub mod ids;
pub mod limits;
pub mod mirror;
pub mod reindex;
pub mod report;
pub mod scorecard;
pub mod scorecard_write;
pub mod scoring;
pub mod time;
pub mod transcript;

pub use ids::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};
pub use scorecard::Invalid;
pub use scoring::{ScorecardSource, TemplateType};
