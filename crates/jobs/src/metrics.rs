//! The metrics of the job engine (workers and schedulers): their names, in
//! one place, and their descriptions.

use metrics::{Unit, describe_counter};

/// Counter, label `job_type` (the number): job attempts started.
pub const JOB_ATTEMPTS_TOTAL: &str = "scorekeeper_job_attempts_total";
/// Counter, label `schedule`: jobs a scheduler created for its ticks.
pub const SCHEDULE_JOBS_TOTAL: &str = "scorekeeper_schedule_jobs_total";
/// Counter, label `schedule`: ticks that failed to fire (each is retried).
pub const SCHEDULE_FAILURES_TOTAL: &str = "scorekeeper_schedule_failures_total";

/// Every metric this crate publishes.
pub const ALL: &[&str] = &[JOB_ATTEMPTS_TOTAL, SCHEDULE_JOBS_TOTAL, SCHEDULE_FAILURES_TOTAL];

/// Gives the installed recorder the unit and help text of every metric in
/// [`ALL`]. Call once, after installing the recorder; calling again only
/// repeats the descriptions.
pub fn describe() {
    describe_counter!(JOB_ATTEMPTS_TOTAL, Unit::Count, "Job attempts started, by job type.");
    describe_counter!(SCHEDULE_JOBS_TOTAL, Unit::Count, "Jobs created by a schedule's ticks, by schedule.");
    describe_counter!(
        SCHEDULE_FAILURES_TOTAL,
        Unit::Count,
        "Schedule ticks that failed to fire and will be retried, by schedule."
    );
}
