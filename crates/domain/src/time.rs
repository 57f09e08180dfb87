//! Unix seconds and UTC times: the audit cuts time in whole seconds, and
//! ClickHouse's `DateTime` columns hold seconds.

use chrono::{DateTime, Utc};

/// The UTC time `seconds` after the Unix epoch. Seconds outside chrono's
/// range (never a time either database holds) give the epoch.
pub fn utc_at_second(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_map_to_utc_and_out_of_range_to_the_epoch() {
        assert_eq!(utc_at_second(86_400).to_rfc3339(), "1970-01-02T00:00:00+00:00");
        assert_eq!(utc_at_second(i64::MAX), DateTime::UNIX_EPOCH);
    }
}
