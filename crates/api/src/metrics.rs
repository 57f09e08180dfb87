//! The metrics of the API: their names, in one place, and their
//! descriptions (`scorekeeper_service::telemetry::describe` gives them to
//! the recorder).

use metrics::Unit;

/// Counter, label `reason` (`missing`, `malformed`, `unknown`, `revoked`,
/// `throttled`): calls refused for their credentials.
pub const AUTH_FAILURES_TOTAL: &str = "scorekeeper_auth_failures_total";

/// Histogram (a summary on `/metrics`), labels `method` (`Service/Method`,
/// or `unknown`) and `code` (`ok`, or the status the server answered
/// with): seconds from a call's request to its response.
pub const API_REQUEST_SECONDS: &str = "scorekeeper_api_request_seconds";

pub const COUNTERS: &[Described] = &[(
    AUTH_FAILURES_TOTAL,
    Unit::Count,
    "Calls refused for their credentials, by reason (missing, malformed, unknown, revoked, throttled).",
)];
pub const GAUGES: &[Described] = &[];
pub const HISTOGRAMS: &[Described] = &[(
    API_REQUEST_SECONDS,
    Unit::Seconds,
    "Seconds from a gRPC call's request to its response, by method and status code.",
)];

/// A metric's name, unit and help text.
pub type Described = (&'static str, Unit, &'static str);

/// Every metric this crate publishes, by name.
pub fn all() -> impl Iterator<Item = &'static str> {
    [COUNTERS, GAUGES, HISTOGRAMS].into_iter().flatten().map(|&(name, _, _)| name)
}
