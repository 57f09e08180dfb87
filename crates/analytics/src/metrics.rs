//! The metrics of the ClickHouse insert path: their names, in one place, and
//! their descriptions. Every writer goes through [`crate::writer`], so these
//! are labelled by the write `path` (`api`, `batch_index`, `autoqa`,
//! `reindex`) and, per insert, the `table`.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

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

/// Every metric this crate publishes.
pub const ALL: &[&str] = &[
    CLICKHOUSE_ROWS_WRITTEN_TOTAL,
    CLICKHOUSE_INSERT_ERRORS_TOTAL,
    CLICKHOUSE_INSERT_SECONDS,
    CLICKHOUSE_LAST_WRITE_TIMESTAMP_SECONDS,
];

/// Gives the installed recorder the unit and help text of every metric in
/// [`ALL`]. Call once, after installing the recorder; calling again only
/// repeats the descriptions.
pub fn describe() {
    describe_counter!(
        CLICKHOUSE_ROWS_WRITTEN_TOTAL,
        Unit::Count,
        "Rows ClickHouse acknowledged, by write path and table."
    );
    describe_counter!(
        CLICKHOUSE_INSERT_ERRORS_TOTAL,
        Unit::Count,
        "Failed ClickHouse inserts, by write path and table."
    );
    describe_histogram!(
        CLICKHOUSE_INSERT_SECONDS,
        Unit::Seconds,
        "ClickHouse insert latency, by write path and table."
    );
    describe_gauge!(
        CLICKHOUSE_LAST_WRITE_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "Unix time of the last acknowledged ClickHouse write, by write path."
    );
}
