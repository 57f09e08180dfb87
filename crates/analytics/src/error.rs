//! Errors of the ClickHouse side, classified by ClickHouse's numeric error
//! codes (never by message text) into transient or not.

pub type Result<T, E = AnalyticsError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    #[error("CLICKHOUSE_DATABASE {0:?} is not a plain identifier")]
    BadDatabaseName(String),
    #[error("CLICKHOUSE_CLUSTER {0:?} is not a plain identifier")]
    BadClusterName(String),
    /// The server knows neither name of the synchronous Distributed insert
    /// setting; writing asynchronously would acknowledge rows not yet on
    /// their shard, so nothing is written.
    #[error(
        "ClickHouse knows no synchronous Distributed insert setting (insert_distributed_sync, distributed_foreground_insert)"
    )]
    NoSynchronousInsert,
    /// A hand-made `ALTER TABLE … DELETE` (tests, tools) still left rows.
    #[error("the deletion from {table} was not applied within {within:?}")]
    MutationNotApplied { table: String, within: std::time::Duration },
    /// ClickHouse answered with an exception (`code` is its numeric code).
    #[error("ClickHouse refused the request (code {code})")]
    Server {
        code: u32,
        #[source]
        source: clickhouse::error::Error,
    },
    /// No answer: connection refused or cut, timeout.
    #[error("ClickHouse is unreachable")]
    Unreachable(#[source] clickhouse::error::Error),
    /// Anything else the client reports (encoding, bad rows).
    #[error("ClickHouse client error")]
    Client(#[source] clickhouse::error::Error),
    /// A row whose time ClickHouse's `DateTime` cannot hold; nothing of
    /// it was sent. Only an operator can fix the Postgres row.
    #[error("a row cannot be mirrored")]
    OutOfMirrorRange(#[from] crate::rows::OutOfMirrorRange),
}

impl AnalyticsError {
    pub(crate) fn from_query(error: clickhouse::error::Error) -> AnalyticsError {
        use clickhouse::error::Error as E;
        match &error {
            E::Network(_) | E::TimedOut => AnalyticsError::Unreachable(error),
            E::BadResponse(text) => match exception_code(text) {
                Some(code) => AnalyticsError::Server { code, source: error },
                // An HTTP failure without an exception body: a proxy or a
                // server going down; worth another try.
                None => AnalyticsError::Unreachable(error),
            },
            _ => AnalyticsError::Client(error),
        }
    }

    /// Whether the same request may succeed later by itself.
    pub fn is_transient(&self) -> bool {
        match self {
            AnalyticsError::Unreachable(_) => true,
            AnalyticsError::Server { code, .. } => is_transient_code(*code),
            AnalyticsError::BadDatabaseName(_)
            | AnalyticsError::BadClusterName(_)
            | AnalyticsError::NoSynchronousInsert
            | AnalyticsError::MutationNotApplied { .. }
            | AnalyticsError::Client(_)
            | AnalyticsError::OutOfMirrorRange(_) => false,
        }
    }
}

/// The numeric code of a ClickHouse exception body, `Code: 60. DB::Exception: ...`.
fn exception_code(body: &str) -> Option<u32> {
    let start = body.find("Code: ")? + "Code: ".len();
    let digits: String = body[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// ClickHouse error codes that describe load or a passing fault rather than a
/// wrong request (see ClickHouse's `src/Common/ErrorCodes.cpp`).
fn is_transient_code(code: u32) -> bool {
    matches!(
        code,
        3       // UNEXPECTED_END_OF_FILE: body cut mid-way
        | 32    // ATTEMPT_TO_READ_AFTER_EOF: a shard's connection cut mid-insert
        | 159   // TIMEOUT_EXCEEDED (also ON CLUSTER DDL a node did not answer in time)
        | 164   // READONLY (a replica in read-only mode)
        | 202   // TOO_MANY_SIMULTANEOUS_QUERIES
        | 203   // NO_FREE_CONNECTION
        | 209   // SOCKET_TIMEOUT
        | 210   // NETWORK_ERROR
        | 225   // NO_ZOOKEEPER: a replicated table without its ZooKeeper session
        | 241   // MEMORY_LIMIT_EXCEEDED
        | 242   // TABLE_IS_READ_ONLY
        | 252   // TOO_MANY_PARTS
        | 279   // ALL_CONNECTION_TRIES_FAILED: a shard down under a Distributed table
        | 319   // UNKNOWN_STATUS_OF_INSERT
        | 425   // SYSTEM_ERROR
        | 999 // KEEPER_EXCEPTION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_exception_bodies() {
        assert_eq!(exception_code("Code: 60. DB::Exception: Table x doesn't exist"), Some(60));
        assert_eq!(exception_code("Code: 252, e.displayText() = DB::Exception: Too many parts"), Some(252));
        assert_eq!(exception_code("502 Bad Gateway"), None);
        assert!(is_transient_code(252));
        // A synchronous Distributed insert with its shard down (18.16).
        let shard_down = "Code: 279, e.displayText() = DB::NetException: All connection tries failed.";
        assert_eq!(exception_code(shard_down), Some(279));
        assert!(is_transient_code(279));
        assert!(!is_transient_code(60));
    }
}
