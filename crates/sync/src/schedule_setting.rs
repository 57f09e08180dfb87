//! The settings both scheduled jobs take, a cron expression and a lookback,
//! parsed one way, each error naming its setting (`REINDEX_SCHEDULE`,
//! `AUDIT_LOOKBACK`, …) with the parser's reason as its source.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use scorekeeper_jobs::scheduler::{CronError, Schedule, ScheduleError};

/// A bad schedule setting; the message starts with the setting's name.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleSettingError {
    #[error("{setting}: {value:?} is not a cron expression of 5 fields (minute first) or 6 (second first)")]
    Cron {
        setting: &'static str,
        value: String,
        #[source]
        source: CronError,
    },
    #[error("{setting}: {value:?} never fires")]
    NeverFires { setting: &'static str, value: String },
    #[error("{setting}: {value:?} is not a duration such as {example}")]
    Lookback {
        setting: &'static str,
        /// Durations to show, e.g. `24h or 90m`.
        example: &'static str,
        value: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error("{setting}: {value:?} is too long")]
    LookbackTooLong { setting: &'static str, value: String },
}

/// The cron `expression` of setting `setting` as the schedule `name`.
pub fn cron(setting: &'static str, name: &str, expression: &str) -> Result<Schedule, ScheduleSettingError> {
    Schedule::parse(name, expression).map_err(|error| match error {
        ScheduleError::Invalid { expression, source } => {
            ScheduleSettingError::Cron { setting, value: expression, source }
        }
        ScheduleError::NeverFires { expression } => {
            ScheduleSettingError::NeverFires { setting, value: expression }
        }
    })
}

/// The duration `value` of setting `setting` (`24h`, `90m`, `1h 30m`,
/// `7days`); `example` is shown when it is not one.
pub fn lookback(
    setting: &'static str,
    example: &'static str,
    value: &str,
) -> Result<Duration, ScheduleSettingError> {
    humantime::parse_duration(value).map_err(|source| ScheduleSettingError::Lookback {
        setting,
        example,
        value: value.to_owned(),
        source,
    })
}

/// `lookback` before `time`, never before the Unix epoch (a lookback of
/// years reaches back to it).
pub fn start_before(time: DateTime<Utc>, lookback: Duration) -> DateTime<Utc> {
    let lookback = TimeDelta::from_std(lookback).unwrap_or(TimeDelta::MAX);
    time.checked_sub_signed(lookback).unwrap_or(DateTime::UNIX_EPOCH).max(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_name_the_setting_and_keep_the_reason() {
        let error = cron("X_SCHEDULE", "x", "0 2 * *").unwrap_err();
        assert!(error.to_string().starts_with(r#"X_SCHEDULE: "0 2 * *" is not a cron"#), "{error}");
        assert!(error.source().is_some());
        let error = cron("X_SCHEDULE", "x", "0 0 31 2 *").unwrap_err();
        assert_eq!(error.to_string(), r#"X_SCHEDULE: "0 0 31 2 *" never fires"#);
        let error = lookback("X_LOOKBACK", "1h", "a day").unwrap_err();
        assert_eq!(error.to_string(), r#"X_LOOKBACK: "a day" is not a duration such as 1h"#);
        assert!(error.source().is_some());
    }

    #[test]
    fn the_start_is_clamped_to_the_epoch() {
        let time = DateTime::from_timestamp(3_600, 0).unwrap();
        assert_eq!(start_before(time, Duration::from_secs(600)), DateTime::from_timestamp(3_000, 0).unwrap());
        assert_eq!(start_before(time, Duration::from_secs(7_200)), DateTime::UNIX_EPOCH);
        assert_eq!(start_before(time, Duration::MAX), DateTime::UNIX_EPOCH);
    }
}
