//! Unix seconds and UTC times: the audit cuts time in whole seconds, and
//! ClickHouse's `DateTime` columns hold seconds, within [`MIRROR_SECONDS`].

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};

/// The times the ClickHouse mirror can hold, as whole seconds since the
/// Unix epoch: its `DateTime` is a `UInt32`, 1970-01-01T00:00:00Z to
/// 2106-02-07T06:28:15Z. The one definition: the API refuses a mirrored
/// time outside it, the row encoder refuses rather than clamps, and the
/// audit reports rows outside it.
pub const MIRROR_SECONDS: RangeInclusive<i64> = 0..=u32::MAX as i64;

/// `time` as the mirror stores it, whole seconds since the epoch (the
/// sub-second part cut), or `None` when it lies outside [`MIRROR_SECONDS`].
pub fn mirror_seconds(time: DateTime<Utc>) -> Option<u32> {
    // `timestamp` rounds down, so a time just before the epoch is -1.
    u32::try_from(time.timestamp()).ok()
}

/// [`MIRROR_SECONDS`] as the text of an error message.
pub fn mirror_range_text() -> String {
    format!(
        "{} to {}",
        utc_at_second(*MIRROR_SECONDS.start()).format("%Y-%m-%dT%H:%M:%SZ"),
        utc_at_second(*MIRROR_SECONDS.end()).format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// The UTC time `seconds` after the Unix epoch. Seconds outside chrono's
/// range (never a time either database holds) give the epoch.
pub fn utc_at_second(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_holds_clickhouse_datetime_s_range_and_nothing_else() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        assert_eq!(mirror_seconds(at("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(mirror_seconds(at("2106-02-07T06:28:15.999Z")), Some(u32::MAX));
        assert_eq!(mirror_seconds(at("1969-12-31T23:59:59.999Z")), None);
        assert_eq!(mirror_seconds(at("2106-02-07T06:28:16Z")), None);
        assert_eq!(mirror_seconds(at("1900-01-01T00:00:00Z")), None);
        assert_eq!(mirror_range_text(), "1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z");
    }

    #[test]
    fn seconds_map_to_utc_and_out_of_range_to_the_epoch() {
        assert_eq!(utc_at_second(86_400).to_rfc3339(), "1970-01-02T00:00:00+00:00");
        assert_eq!(utc_at_second(i64::MAX), DateTime::UNIX_EPOCH);
    }
}
