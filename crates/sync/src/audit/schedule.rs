//! The scheduled audit: `AUDIT_SCHEDULE` (cron, UTC) queues one
//! `JOB_TYPE_AUDIT` job of all customers per tick, on the same generic
//! [`Scheduler`] as the scheduled reindex (one job per tick across all
//! processes, one catch-up job after downtime, none at first start).
//! `AUDIT_LOOKBACK` limits it to rows whose bucket time (conversation
//! start, scorecard creation) lies within that span before the tick; unset,
//! it audits all time. `AUDIT_REPAIR` makes it repair what it finds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_domain::audit::{AuditScope, AuditSpec, AuditWindow};
use scorekeeper_jobs::scheduler::{Schedule, Scheduler};
use scorekeeper_jobs::{JobStore, NewJob};

use super::job::new_job;
use crate::schedule_setting::{self, ScheduleSettingError};

/// The schedule's name: its row in `schedules` and its jobs' dedupe keys.
pub const SCHEDULE_NAME: &str = "audit";

/// A bad setting of the scheduled audit (`AUDIT_SCHEDULE`,
/// `AUDIT_LOOKBACK`). The message names the setting.
pub type SettingError = ScheduleSettingError;

/// `AUDIT_SCHEDULE`, `AUDIT_LOOKBACK` and `AUDIT_REPAIR`, checked.
#[derive(Clone, Debug)]
pub struct AuditScheduleSettings {
    pub schedule: Schedule,
    /// `None`: all time.
    pub lookback: Option<Duration>,
    pub repair: bool,
}

impl AuditScheduleSettings {
    pub fn parse(schedule: &str, lookback: Option<&str>, repair: bool) -> Result<Self, SettingError> {
        let schedule = schedule_setting::cron("AUDIT_SCHEDULE", SCHEDULE_NAME, schedule)?;
        let lookback = lookback
            .map(|value| schedule_setting::lookback("AUDIT_LOOKBACK", "7days or 24h", value))
            .transpose()?;
        Ok(AuditScheduleSettings { schedule, lookback, repair })
    }

    /// The audit job of `tick`: all customers, the lookback before the tick.
    pub fn audit_job(&self, tick: DateTime<Utc>) -> NewJob {
        let window = self
            .lookback
            .map(|lookback| AuditWindow { start: schedule_setting::start_before(tick, lookback), end: tick });
        let spec = AuditSpec { scope: AuditScope { customer_id: None, window }, repair: self.repair };
        new_job(&spec, None)
    }

    /// The scheduler of the audit schedule on `store`.
    pub fn scheduler(&self, store: JobStore) -> Scheduler {
        let settings = self.clone();
        Scheduler::new(store, self.schedule.clone(), Arc::new(move |tick, _| settings.audit_job(tick)))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn bad_settings_are_named() {
        let error = AuditScheduleSettings::parse("0 2 * *", None, false).unwrap_err();
        assert!(error.to_string().starts_with("AUDIT_SCHEDULE: "), "{error}");
        let error = AuditScheduleSettings::parse("0 2 * * *", Some("a week"), false).unwrap_err();
        assert!(error.to_string().starts_with("AUDIT_LOOKBACK: "), "{error}");
    }

    #[test]
    fn the_job_audits_all_customers_over_the_lookback() {
        let tick = Utc.with_ymd_and_hms(2026, 3, 10, 2, 0, 0).unwrap();
        let settings = AuditScheduleSettings::parse("0 2 * * *", Some("7days"), true).unwrap();
        let job = settings.audit_job(tick);
        assert_eq!((job.job_type, job.customer_id), (super::super::job::JOB_TYPE, None));
        assert_eq!(job.max_attempts, 5, "the audit job type's policy");
        assert_eq!(job.activities, vec!["audit", "repair", "verify"]);
        let spec: AuditSpec = serde_json::from_value(job.payload).unwrap();
        let window = spec.scope.window.unwrap();
        assert_eq!((window.start, window.end), (Utc.with_ymd_and_hms(2026, 3, 3, 2, 0, 0).unwrap(), tick));
        let all_time = AuditScheduleSettings::parse("0 2 * * *", None, false).unwrap().audit_job(tick);
        let spec: AuditSpec = serde_json::from_value(all_time.payload).unwrap();
        assert_eq!(spec.scope.window, None);
        assert_eq!(all_time.activities, vec!["audit"]);
    }
}
