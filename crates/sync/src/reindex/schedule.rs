//! The scheduled reindex: a cron schedule (`REINDEX_SCHEDULE`, UTC) that
//! queues a reindex job of all customers, for the scorecard types of
//! `REINDEX_MODE`, over the rows updated in the last `REINDEX_LOOKBACK`
//! before each tick.
//!
//! It runs on the generic [`Scheduler`] (see `scorekeeper_jobs::scheduler`
//! for the guarantees): exactly one job per tick across all processes, one
//! catch-up job after downtime (its window starts at the last tick fired
//! before the downtime, less the lookback, so it covers every tick missed),
//! and on the very first start the latest past tick is only recorded, so
//! enabling the schedule does not queue a job at deploy time.
//!
//! Settings are checked at start-up: [`ReindexScheduleSettings::parse`]
//! fails with an error whose message starts with the setting's name, the
//! underlying reason (croner's, humantime's) as its source.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use scorekeeper_domain::reindex::{ReindexMode, ReindexScope, ReindexSpec, TimeBase, TimeWindow};
pub use scorekeeper_jobs::scheduler::{Schedule, Scheduler, SchedulerConfig};
use scorekeeper_jobs::{JobStore, NewJob};

use crate::schedule_setting::{self, ScheduleSettingError};

/// The schedule's name: its row in `schedules` and its jobs' dedupe keys
/// (`schedule:reindex:<tick>`).
pub const SCHEDULE_NAME: &str = "reindex";

/// A bad setting of the scheduled reindex. The message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("REINDEX_MODE: {reason}")]
    Mode { reason: String },
    /// `REINDEX_SCHEDULE` or `REINDEX_LOOKBACK`.
    #[error(transparent)]
    Schedule(#[from] ScheduleSettingError),
}

/// `REINDEX_MODE`, `REINDEX_SCHEDULE` and `REINDEX_LOOKBACK`, checked.
#[derive(Clone, Debug)]
pub struct ReindexScheduleSettings {
    pub mode: ReindexMode,
    /// Named [`SCHEDULE_NAME`].
    pub schedule: Schedule,
    pub lookback: Duration,
}

impl ReindexScheduleSettings {
    /// Checks the three settings: `mode` is `conversation`, `process` or
    /// `all`; `schedule` a cron expression of 5 fields or 6 (seconds
    /// first), in UTC; `lookback` a duration such as `24h`, `90m` or
    /// `1h 30m`.
    pub fn parse(mode: &str, schedule: &str, lookback: &str) -> Result<Self, SettingError> {
        let mode = mode.parse::<ReindexMode>().map_err(|reason| SettingError::Mode { reason })?;
        let schedule = schedule_setting::cron("REINDEX_SCHEDULE", SCHEDULE_NAME, schedule)?;
        let value = lookback;
        let lookback = schedule_setting::lookback("REINDEX_LOOKBACK", "24h or 90m", value)?;
        if TimeDelta::from_std(lookback).is_err() {
            let too_long =
                ScheduleSettingError::LookbackTooLong { setting: "REINDEX_LOOKBACK", value: value.into() };
            return Err(too_long.into());
        }
        Ok(ReindexScheduleSettings { mode, schedule, lookback })
    }

    /// The reindex job of `tick`: all customers, the mode's scorecard
    /// types, rows updated in `[previous - lookback, tick)`, where
    /// `previous` is the tick fired before (the job's own tick when there
    /// is none). After downtime `previous` lies several ticks back, and the
    /// window widens to cover them all. The start is clamped to the Unix
    /// epoch. `dedupe_key` is left to the scheduler.
    pub fn reindex_job(&self, tick: DateTime<Utc>, previous: Option<DateTime<Utc>>) -> NewJob {
        let start = schedule_setting::start_before(previous.unwrap_or(tick).min(tick), self.lookback);
        let spec = ReindexSpec {
            scope: ReindexScope {
                customer_id: None,
                window: Some(TimeWindow { start, end: tick, base: TimeBase::UpdatedAt }),
                conversation_ids: vec![],
            },
            scorecard_types: self.mode.scorecard_types(),
            conversations_batch_size: None,
            process_scorecards_batch_size: None,
        };
        super::new_job(&spec, None)
    }

    /// The scheduler of the reindex schedule on `store`. Run it (in each
    /// process that should take part) with [`Scheduler::run`].
    pub fn scheduler(&self, store: JobStore) -> Scheduler {
        let settings = self.clone();
        Scheduler::new(
            store,
            self.schedule.clone(),
            Arc::new(move |tick, previous| settings.reindex_job(tick, previous)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use chrono::TimeZone;
    use scorekeeper_domain::TemplateType;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, day, hour, 0, 0).unwrap()
    }

    fn window(job: &NewJob) -> TimeWindow {
        let spec: ReindexSpec = serde_json::from_value(job.payload.clone()).unwrap();
        spec.scope.window.unwrap()
    }

    #[test]
    fn good_settings_parse() {
        let settings = ReindexScheduleSettings::parse("all", "0 2 * * *", "24h").unwrap();
        assert_eq!(settings.mode, ReindexMode::All);
        assert_eq!(settings.schedule.name, SCHEDULE_NAME);
        assert_eq!(settings.lookback, Duration::from_secs(24 * 3600));
        let settings = ReindexScheduleSettings::parse("process", "*/30 * * * * *", "90m").unwrap();
        assert_eq!(settings.mode, ReindexMode::Process);
        assert_eq!(settings.lookback, Duration::from_secs(90 * 60));
    }

    #[test]
    fn each_bad_setting_is_named_in_its_error() {
        let error = ReindexScheduleSettings::parse("both", "0 2 * * *", "24h").unwrap_err();
        assert_eq!(error.to_string(), r#"REINDEX_MODE: "both" is not one of conversation, process, all"#);

        let error = ReindexScheduleSettings::parse("all", "0 2 * *", "24h").unwrap_err();
        assert!(error.to_string().starts_with(r#"REINDEX_SCHEDULE: "0 2 * *""#), "{error}");
        let reason = error.source().expect("croner's reason as the source").to_string();
        assert!(reason.contains("5 or 6 fields"), "{reason}");

        let error = ReindexScheduleSettings::parse("all", "0 0 31 2 *", "24h").unwrap_err();
        assert!(error.to_string().starts_with("REINDEX_SCHEDULE: "), "{error}");

        for bad in ["24", "a day", "", "-1h"] {
            let error = ReindexScheduleSettings::parse("all", "0 2 * * *", bad).unwrap_err();
            assert!(error.to_string().starts_with("REINDEX_LOOKBACK: "), "{bad:?}: {error}");
            assert!(error.source().is_some(), "{bad:?}: humantime's reason as the source");
        }
        let error = ReindexScheduleSettings::parse("all", "0 2 * * *", "100000000000years").unwrap_err();
        assert!(error.to_string().starts_with("REINDEX_LOOKBACK: "), "{error}");
    }

    #[test]
    fn the_job_covers_all_customers_and_the_modes_types() {
        let settings = ReindexScheduleSettings::parse("all", "0 2 * * *", "24h").unwrap();
        let job = settings.reindex_job(at(10, 2), Some(at(9, 2)));
        assert_eq!(job.customer_id, None);
        assert_eq!(job.job_type, 1);
        assert_eq!(job.max_attempts, 10);
        assert_eq!(job.activities, vec!["reindex_conversations", "reindex_process_scorecards"]);
        let spec: ReindexSpec = serde_json::from_value(job.payload).unwrap();
        assert_eq!(spec.scorecard_types, vec![TemplateType::Conversation, TemplateType::Process]);
        assert!(spec.scope.conversation_ids.is_empty());

        let settings = ReindexScheduleSettings::parse("process", "0 2 * * *", "24h").unwrap();
        let job = settings.reindex_job(at(10, 2), Some(at(9, 2)));
        assert_eq!(job.activities, vec!["reindex_process_scorecards"]);
    }

    #[test]
    fn the_window_reaches_back_from_the_previous_tick() {
        let settings = ReindexScheduleSettings::parse("conversation", "0 2 * * *", "24h").unwrap();
        // On time: the day before, less the lookback.
        let on_time = window(&settings.reindex_job(at(10, 2), Some(at(9, 2))));
        assert_eq!(on_time, TimeWindow { start: at(8, 2), end: at(10, 2), base: TimeBase::UpdatedAt });
        // After five days down: one job back to the last tick fired.
        let catch_up = window(&settings.reindex_job(at(10, 2), Some(at(5, 2))));
        assert_eq!((catch_up.start, catch_up.end), (at(4, 2), at(10, 2)));
        // No previous tick: the lookback alone.
        let first = window(&settings.reindex_job(at(10, 2), None));
        assert_eq!((first.start, first.end), (at(9, 2), at(10, 2)));
        // A previous tick after this one (clock skew) never shortens it.
        let skewed = window(&settings.reindex_job(at(10, 2), Some(at(11, 2))));
        assert_eq!((skewed.start, skewed.end), (at(9, 2), at(10, 2)));
    }

    #[test]
    fn a_huge_lookback_starts_at_the_epoch() {
        let settings = ReindexScheduleSettings::parse("all", "0 2 * * *", "100000years").unwrap();
        let far = window(&settings.reindex_job(at(10, 2), None));
        assert_eq!(far.start, DateTime::UNIX_EPOCH);
    }
}
