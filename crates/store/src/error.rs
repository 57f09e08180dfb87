//! Errors of the Postgres store, and which of them are worth retrying.

use scorekeeper_domain::Invalid;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL is not a valid Postgres URL")]
    BadUrl(#[source] tokio_postgres::Error),
    #[error("cannot set up the Postgres pool: {0}")]
    Setup(String),
    #[error("no Postgres connection available")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("Postgres query failed")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("Postgres migration failed")]
    Migration(#[from] refinery::Error),
    /// The database's history holds a migration this binary does not have
    /// (a newer version migrated it).
    #[error("Postgres migration V{version}__{name} is applied but unknown to this version")]
    UnknownMigration { version: i32, name: String },
    /// A migration of this binary older than the newest applied one never
    /// ran: the history was edited or is from another branch.
    #[error("Postgres migration V{version}__{name} was skipped: an older one than the newest applied")]
    SkippedMigration { version: i32, name: String },
    /// The request conflicts with stored state (unknown template, wrong
    /// kind of scorecard, score out of range...).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No such row for this customer (other customers' rows are not found
    /// either, by design).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    /// Optimistic concurrency failed: the row changed since the caller read it.
    #[error("{what} {id} is at version {actual}, not {expected}")]
    VersionMismatch { what: &'static str, id: i64, expected: i64, actual: i64 },
    /// A stored value no version of the schema writes.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same call may succeed later without anything changing on
    /// our side: lost connections, server restarts, serialisation failures.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Pool(_) => true,
            StoreError::Postgres(e) => match e.code() {
                // No SQLSTATE: the connection itself failed.
                None => true,
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08") // connection exception
                        || code.starts_with("57P") // admin shutdown, crash, cannot connect now
                        || code == "40001" // serialization failure
                        || code == "40P01" // deadlock detected
                        || code == "53300" // too many connections
                }
            },
            _ => false,
        }
    }
}
