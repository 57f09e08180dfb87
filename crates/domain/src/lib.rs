//! The scorekeeper domain: ids, scorecard kinds, validation limits, scoring
//! and AutoQA rules. Pure code, no I/O, so every other crate can share it.

pub mod autoqa;
pub mod ids;
pub mod limits;
pub mod scoring;
pub mod transcript;

pub use ids::{ConversationId, CriterionId, CustomerId, ScorecardId, TemplateId};
pub use scoring::{ScorecardSource, TemplateType};
