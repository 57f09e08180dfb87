//! API responses as the CLI prints them: a text form for people and a
//! serialisable view for `--json`. The JSON field names are a contract of
//! the CLI's output: scripts read them.

pub mod audit;
pub mod job;

use scorekeeper_proto::time::from_timestamp;

/// A protobuf time as RFC 3339, if set and valid.
fn rfc3339(t: &Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref().and_then(|t| from_timestamp(t).ok()).map(|t| t.to_rfc3339())
}
