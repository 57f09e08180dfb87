//! The metrics of AutoQA scoring: their names, in one place, and their
//! descriptions (`scorekeeper_service::telemetry::describe` gives them to
//! the recorder).

use metrics::Unit;

/// Counter, label `outcome`: AutoscoreConversations calls by how they
/// ended (`ok`, `invalid`, `client_deadline`, `ceiling`, `cancelled`,
/// `busy`, `error`).
pub const AUTOQA_CALLS_TOTAL: &str = "scorekeeper_autoqa_calls_total";
/// Gauge: bytes of compiled templates the rule cache holds.
pub const AUTOQA_RULE_CACHE_BYTES: &str = "scorekeeper_autoqa_rule_cache_bytes";

/// A metric's name, unit and help text.
pub type Described = (&'static str, Unit, &'static str);

pub const COUNTERS: &[Described] =
    &[(AUTOQA_CALLS_TOTAL, Unit::Count, "AutoscoreConversations calls, by outcome.")];
pub const GAUGES: &[Described] =
    &[(AUTOQA_RULE_CACHE_BYTES, Unit::Bytes, "Bytes of compiled AutoQA templates held by the rule cache.")];
pub const HISTOGRAMS: &[Described] = &[];

/// Every metric this crate publishes, by name.
pub fn all() -> impl Iterator<Item = &'static str> {
    [COUNTERS, GAUGES, HISTOGRAMS].into_iter().flatten().map(|&(name, _, _)| name)
}
