//! The metrics of the ClickHouse insert path: their names, in one place, and
//! their descriptions
//! (`scorekeeper_service::telemetry::describe` gives them to the recorder). Every writer goes through [`crate::writer`], so these
//! are labelled by the write `path` (`api`, `batch_index`, `autoqa`,
//! `reindex`) and, per insert, the `table`.

use metrics::Unit;

/// Counter, labels `path`, `table`: rows ClickHouse acknowledged.
pub const CLICKHOUSE_ROWS_WRITTEN_TOTAL: &str = "scorekeeper_clickhouse_rows_written_total";
/// Counter, labels `path`, `table`: inserts that failed.
pub const CLICKHOUSE_INSERT_ERRORS_TOTAL: &str = "scorekeeper_clickhouse_insert_errors_total";
/// Histogram, labels `path`, `table`: seconds from the insert's start to
/// ClickHouse's answer.
pub const CLICKHOUSE_INSERT_SECONDS: &str = "scorekeeper_clickhouse_insert_seconds";
/// Gauge, label `path`: Unix time of the path's last acknowledged write.
pub const CLICKHOUSE_LAST_WRITE_TIMESTAMP_SECONDS: &str =
    "scorekeeper_clickhouse_last_write_timestamp_seconds";

/// The counters, gauges and histograms this crate publishes: name, unit,
/// help text.
pub const COUNTERS: &[Described] = &[
    (CLICKHOUSE_ROWS_WRITTEN_TOTAL, Unit::Count, "Rows ClickHouse acknowledged, by write path and table."),
    (CLICKHOUSE_INSERT_ERRORS_TOTAL, Unit::Count, "Failed ClickHouse inserts, by write path and table."),
];
pub const GAUGES: &[Described] = &[(
    CLICKHOUSE_LAST_WRITE_TIMESTAMP_SECONDS,
    Unit::Seconds,
    "Unix time of the last acknowledged ClickHouse write, by write path.",
)];
pub const HISTOGRAMS: &[Described] =
    &[(CLICKHOUSE_INSERT_SECONDS, Unit::Seconds, "ClickHouse insert latency, by write path and table.")];

/// A metric's name, unit and help text.
pub type Described = (&'static str, Unit, &'static str);

/// Every metric this crate publishes, by name.
pub fn all() -> impl Iterator<Item = &'static str> {
    [COUNTERS, GAUGES, HISTOGRAMS].into_iter().flatten().map(|&(name, _, _)| name)
}
