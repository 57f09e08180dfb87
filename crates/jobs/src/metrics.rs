//! The metrics of the job engine (workers and schedulers): their names, in
//! one place, and their descriptions
//! (`scorekeeper_service::telemetry::describe` gives them to the recorder).

use metrics::Unit;

/// Counter, label `job_type` (the number): job attempts started.
pub const JOB_ATTEMPTS_TOTAL: &str = "scorekeeper_job_attempts_total";
/// Counter, labels `job_type` and `outcome`: job attempts run to an end
/// (`succeeded`, `failed`, `retry`, `cancelled`, `lease_lost`); `failed` is
/// a job failed for good.
pub const JOB_ATTEMPTS_ENDED_TOTAL: &str = "scorekeeper_job_attempts_ended_total";
/// Counter, labels `job_type` and `outcome`: partition claims run to an
/// end (`succeeded`, `failed`, `retry`, `cancelled`, `lease_lost`).
pub const JOB_PARTITIONS_TOTAL: &str = "scorekeeper_job_partitions_total";
/// Counter, label `schedule`: jobs a scheduler created for its ticks.
pub const SCHEDULE_JOBS_TOTAL: &str = "scorekeeper_schedule_jobs_total";
/// Counter, label `schedule`: ticks that failed to fire (each is retried).
pub const SCHEDULE_FAILURES_TOTAL: &str = "scorekeeper_schedule_failures_total";
/// Gauge, label `schedule`: Unix time of the last tick this process's
/// scheduler handled (fired, found fired, or failed to fire and retrying).
/// It stops moving when the scheduler is stuck.
pub const SCHEDULE_LAST_TICK_TIMESTAMP_SECONDS: &str = "scorekeeper_schedule_last_tick_timestamp_seconds";
/// Gauge, label `schedule`: seconds from that tick to the next one, as the
/// cron expression gives them; the wait an alert compares the time since
/// the last tick with.
pub const SCHEDULE_INTERVAL_SECONDS: &str = "scorekeeper_schedule_interval_seconds";

/// The counters, gauges and histograms this crate publishes: name, unit,
/// help text.
pub const COUNTERS: &[Described] = &[
    (JOB_ATTEMPTS_TOTAL, Unit::Count, "Job attempts started, by job type."),
    (
        JOB_ATTEMPTS_ENDED_TOTAL,
        Unit::Count,
        "Job attempts run to an end, by job type and outcome (failed: the job failed for good).",
    ),
    (JOB_PARTITIONS_TOTAL, Unit::Count, "Partition claims run to an end, by job type and outcome."),
    (SCHEDULE_JOBS_TOTAL, Unit::Count, "Jobs created by a schedule's ticks, by schedule."),
    (
        SCHEDULE_FAILURES_TOTAL,
        Unit::Count,
        "Schedule ticks that failed to fire and will be retried, by schedule.",
    ),
];
pub const GAUGES: &[Described] = &[
    (
        SCHEDULE_LAST_TICK_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "Unix time of the last tick this process's scheduler handled (fired, found fired or failed), by schedule.",
    ),
    (
        SCHEDULE_INTERVAL_SECONDS,
        Unit::Seconds,
        "Seconds from the last handled tick to the next, as the cron expression gives them, by schedule.",
    ),
];
pub const HISTOGRAMS: &[Described] = &[];

/// A metric's name, unit and help text.
pub type Described = (&'static str, Unit, &'static str);

/// Every metric this crate publishes, by name.
pub fn all() -> impl Iterator<Item = &'static str> {
    [COUNTERS, GAUGES, HISTOGRAMS].into_iter().flatten().map(|&(name, _, _)| name)
}
