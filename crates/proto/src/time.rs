//! The conversions of the wire's `google.protobuf.Timestamp` to and from
//! chrono's `DateTime<Utc>`, in one place for the server and its clients.
//! They sit beside the generated code so that a client converts exactly as
//! the server does without depending on the server.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// Why a wire timestamp stands for no time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("nanos must be in [0, 1e9)")]
    Nanos,
    /// Outside `Timestamp`'s documented range, years 1 to 9999.
    #[error("out of range")]
    OutOfRange,
}

pub type Result<T, E = TimestampError> = std::result::Result<T, E>;

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range the
/// `Timestamp` type documents. chrono accepts far earlier times, which
/// Postgres then refuses.
const SECONDS_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// The wire form of `time`, exact to the nanosecond.
pub fn to_timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: time.timestamp(), nanos: time.timestamp_subsec_nanos() as i32 }
}

/// The time `value` stands for: its nanos must lie in `[0, 1e9)` and its
/// seconds within years 1 to 9999, as `Timestamp` requires.
pub fn from_timestamp(value: &Timestamp) -> Result<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(TimestampError::Nanos);
    }
    DateTime::from_timestamp(value.seconds, value.nanos as u32)
        .filter(|_| SECONDS_RANGE.contains(&value.seconds))
        .ok_or(TimestampError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_goes_to_the_wire_and_back_unchanged() {
        let time = DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(time)), Ok(time));
    }

    #[test]
    fn invalid_timestamps_are_refused() {
        assert_eq!(from_timestamp(&Timestamp { seconds: 0, nanos: -1 }), Err(TimestampError::Nanos));
        assert_eq!(
            from_timestamp(&Timestamp { seconds: 0, nanos: 1_000_000_000 }),
            Err(TimestampError::Nanos)
        );
        assert_eq!(
            from_timestamp(&Timestamp { seconds: -62_135_596_801, nanos: 0 }),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            from_timestamp(&Timestamp { seconds: 253_402_300_800, nanos: 0 }),
            Err(TimestampError::OutOfRange)
        );
        assert!(from_timestamp(&Timestamp { seconds: 253_402_300_799, nanos: 999_999_999 }).is_ok());
    }
}
