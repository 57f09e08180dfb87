//! The metrics of the outbox and the drift audit: their names, in one place,
//! and their descriptions (`scorekeeper_service::telemetry::describe` gives
//! them to the recorder).
//!
//! The outbox's depth and oldest age are read from Postgres by whoever runs
//! the service (`Store::outbox_stats`, every few seconds); they are named
//! here, beside the dispatcher's counters, because they describe the same
//! queue.

use metrics::Unit;

/// Gauge: outbox entries waiting for ClickHouse.
pub const OUTBOX_DEPTH: &str = "scorekeeper_outbox_depth";
/// Gauge: age of the oldest waiting outbox entry, the worst visibility lag.
pub const OUTBOX_OLDEST_AGE_SECONDS: &str = "scorekeeper_outbox_oldest_age_seconds";
/// Counter: outbox entries delivered to ClickHouse.
pub const OUTBOX_DELIVERED_TOTAL: &str = "scorekeeper_outbox_delivered_total";
/// Counter: outbox batches whose delivery failed (each is retried).
pub const OUTBOX_FAILURES_TOTAL: &str = "scorekeeper_outbox_failures_total";
/// Gauge, labels `table`, `kind`: drifted rows the last audit found.
pub const AUDIT_DRIFTED_ROWS: &str = "scorekeeper_audit_drifted_rows";
/// Gauge, label `table`: live Postgres rows the last audit checked.
pub const AUDIT_ROWS_CHECKED: &str = "scorekeeper_audit_rows_checked";
/// Gauge: Unix time this process last finished an audit.
pub const AUDIT_LAST_RUN_TIMESTAMP_SECONDS: &str = "scorekeeper_audit_last_run_timestamp_seconds";
/// Histogram: seconds an audit took.
pub const AUDIT_SECONDS: &str = "scorekeeper_audit_seconds";

/// The counters, gauges and histograms this crate publishes (or names for
/// the service, see the module's head): name, unit, help text.
pub const COUNTERS: &[Described] = &[
    (OUTBOX_DELIVERED_TOTAL, Unit::Count, "Outbox entries delivered to ClickHouse."),
    (OUTBOX_FAILURES_TOTAL, Unit::Count, "Failed outbox delivery batches (each is retried)."),
];
pub const GAUGES: &[Described] = &[
    (OUTBOX_DEPTH, Unit::Count, "Outbox entries waiting for ClickHouse."),
    (
        OUTBOX_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest waiting outbox entry: the worst visibility lag right now.",
    ),
    (AUDIT_DRIFTED_ROWS, Unit::Count, "Drifted rows the last audit found, by table and kind."),
    (AUDIT_ROWS_CHECKED, Unit::Count, "Live Postgres rows the last audit checked, by table."),
    (AUDIT_LAST_RUN_TIMESTAMP_SECONDS, Unit::Seconds, "Unix time this process last finished an audit."),
];
pub const HISTOGRAMS: &[Described] = &[(AUDIT_SECONDS, Unit::Seconds, "Duration of an audit.")];

/// A metric's name, unit and help text.
pub type Described = (&'static str, Unit, &'static str);

/// Every metric this crate publishes, by name.
pub fn all() -> impl Iterator<Item = &'static str> {
    [COUNTERS, GAUGES, HISTOGRAMS].into_iter().flatten().map(|&(name, _, _)| name)
}
