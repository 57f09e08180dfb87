//! Cron schedules that create jobs: a [`Scheduler`] per schedule and process
//! watches the clock and, at each tick, creates the job its `make_job`
//! builds, through [`JobStore::fire_tick`].
//!
//! Contract:
//! * **Exactly one job per tick**, however many processes run a scheduler
//!   for the same schedule: the tick is fired by the one transaction that
//!   moves the schedule's `last_tick` (table `schedules`) forward to it, and
//!   that transaction creates the job. Other schedulers find the tick fired
//!   and create nothing. Running a scheduler in every `serve` process is
//!   therefore safe, and keeps the schedule going while any one runs.
//! * **Catch-up, not a flood**: a scheduler only ever fires the latest tick
//!   at or before now. After downtime, the ticks missed are not fired one by
//!   one: the latest of them is, once, and `make_job` gets the tick fired
//!   before the downtime as `previous`, so that one job can cover them all.
//! * **First start**: when the schedule has never fired anywhere (no row in
//!   `schedules`), the latest past tick is recorded *without* creating a job;
//!   the first job is made at the next tick. Installing or enabling a
//!   schedule thus never starts a surprise run (say, a full reindex) at
//!   deploy time; and since that first job's `previous` is the recorded
//!   tick, it covers only the interval since installation.
//! * **Never fatal**: a failed tick (Postgres unreachable...) is logged and
//!   retried with backoff until it succeeds or the scheduler is stopped.
//!   Once Postgres is back the latest tick is fired: ticks missed during the
//!   outage are caught up by that one job.
//! * **Seen ticking**: each time a scheduler has handled a tick (fired it,
//!   found it fired, or failed and will retry) it sets the gauges
//!   `scorekeeper_schedule_last_tick_timestamp_seconds` (that tick) and
//!   `scorekeeper_schedule_interval_seconds` (from it to the next tick).
//!   A scheduler stuck in a call to Postgres sets neither, so an alert can
//!   tell a schedule that went quiet from one that waits for its next tick.
//!
//! Times are UTC. A process turns its scheduler off by not running it; the
//! other processes' schedulers keep firing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_store::StoreError;
use tokio::sync::watch;
use tracing::Instrument;

use crate::job::NewJob;
use crate::store::JobStore;

pub use croner::Cron;
pub use croner::errors::CronError;
use croner::parser::{CronParser, Year};
use scorekeeper_retry::Backoff;

/// Why a cron expression cannot be a [`Schedule`].
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{expression:?} is not a cron expression of 5 fields (minute first) or 6 (second first)")]
    Invalid {
        expression: String,
        #[source]
        source: CronError,
    },
    /// Valid, but no time matches it (say, February 30th).
    #[error("{expression:?} never fires")]
    NeverFires { expression: String },
}

/// A named cron schedule, in UTC. The name keys the schedule's state in
/// Postgres and its jobs' dedupe keys: schedulers with the same name (in
/// any process) share their ticks.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub name: String,
    pub cron: Cron,
}

impl Schedule {
    pub fn new(name: impl Into<String>, cron: Cron) -> Schedule {
        Schedule { name: name.into(), cron }
    }

    /// Parses a cron expression of 5 fields (`minute hour day month
    /// weekday`, e.g. `0 2 * * *`) or 6 (a seconds field first, e.g.
    /// `*/10 * * * * *`); croner's `@daily`-style nicknames work too.
    /// Refuses expressions that never match.
    pub fn parse(name: impl Into<String>, expression: &str) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|source| ScheduleError::Invalid { expression: expression.to_owned(), source })?;
        let schedule = Schedule::new(name, cron);
        if schedule.next_tick(Utc::now()).is_none() {
            return Err(ScheduleError::NeverFires { expression: expression.to_owned() });
        }
        Ok(schedule)
    }

    /// The latest tick at or before `now`; `None` if there is none within
    /// croner's search range.
    pub fn latest_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&now, true).ok()
    }

    /// The first tick strictly after `now`; `None` if there is none within
    /// croner's search range.
    pub fn next_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&now, false).ok()
    }

    /// The wait from `tick` to the tick after it, as the cron expression
    /// gives it: how long a schedule is quiet after `tick` when all is well.
    /// For an irregular expression (say weekdays only) this is the gap that
    /// follows `tick` (Friday's is three days), not the next two ticks'.
    /// `None` if no tick follows within croner's search range.
    pub fn interval_after(&self, tick: DateTime<Utc>) -> Option<Duration> {
        self.next_tick(tick).and_then(|next| (next - tick).to_std().ok())
    }
}

/// Builds the job of a tick: `(tick, previous)`, where `previous` is the
/// tick fired before this one, `None` when this is the schedule's first.
/// A job that covers `previous..tick` covers every tick missed in between.
pub type MakeJob = Arc<dyn Fn(DateTime<Utc>, Option<DateTime<Utc>>) -> NewJob + Send + Sync>;

/// Timing of a [`Scheduler`].
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Longest sleep between two looks at the clock, so that a wall clock
    /// that jumps is noticed.
    pub max_sleep: Duration,
    /// Delay after consecutive failed ticks (the n-th: `backoff.delay(n)`).
    pub backoff: Backoff,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_sleep: Duration::from_secs(60),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }
}

/// Fires one [`Schedule`]'s ticks in this process (see the module docs for
/// the guarantees).
pub struct Scheduler {
    store: JobStore,
    schedule: Schedule,
    make_job: MakeJob,
    config: SchedulerConfig,
}

/// What this process knows of its schedule.
#[derive(Default)]
struct State {
    /// The first-start check (seed the schedule's row) is done.
    started: bool,
    /// The newest tick this process fired or saw fired.
    last_fired: Option<DateTime<Utc>>,
}

impl Scheduler {
    pub fn new(store: JobStore, schedule: Schedule, make_job: MakeJob) -> Scheduler {
        Scheduler { store, schedule, make_job, config: SchedulerConfig::default() }
    }

    pub fn with_config(mut self, config: SchedulerConfig) -> Scheduler {
        self.config = config;
        self
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Fires the schedule's ticks until `shutdown` turns true (or its
    /// sender is dropped). On start, catches up: fires the latest past tick
    /// unless it was fired already, or records it without a job if the
    /// schedule never fired anywhere (first start). Never returns early on
    /// errors.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let span = tracing::info_span!("scheduler", schedule = %self.schedule.name);
        async move {
            let mut state = State::default();
            let mut failures = 0u32;
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let tick = self.schedule.latest_tick(Utc::now());
                let outcome = tokio::select! {
                    outcome = self.step(&mut state, tick) => outcome,
                    _ = shutdown.wait_for(|stop| *stop) => break,
                };
                // Handled, well or not: this scheduler is alive and ticking
                // (failures have their own counter).
                if let Some(tick) = tick {
                    publish_tick(&self.schedule, tick);
                }
                let pause = match outcome {
                    Ok(()) => {
                        failures = 0;
                        self.until_next_tick(Utc::now())
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        let pause = self.config.backoff.delay(failures);
                        metrics::counter!(crate::metrics::SCHEDULE_FAILURES_TOTAL, "schedule" => self.schedule.name.clone())
                            .increment(1);
                        tracing::warn!(error = %scorekeeper_domain::report::error_chain(&error), ?pause, "firing the schedule's tick failed; will retry");
                        pause
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
            tracing::info!("scheduler stopped");
        }
        .instrument(span)
        .await
    }

    /// Fires `tick`, the latest tick at or before now, if this process has
    /// not fired (or seen fired) it yet.
    async fn step(&self, state: &mut State, tick: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let name = self.schedule.name.as_str();
        let Some(tick) = tick else {
            // No past tick: the first one to come fires normally.
            state.started = true;
            return Ok(());
        };
        if !state.started {
            if self.store.seed_schedule(name, tick).await? {
                tracing::info!(%tick, "first start of this schedule anywhere: recorded its latest tick without a job; jobs start at the next tick");
                state.last_fired = Some(tick);
            }
            state.started = true;
        }
        if state.last_fired.is_some_and(|fired| fired >= tick) {
            return Ok(());
        }
        let make_job = &self.make_job;
        match self.store.fire_tick(name, tick, |previous| make_job(tick, previous)).await? {
            Some(job) => {
                metrics::counter!(crate::metrics::SCHEDULE_JOBS_TOTAL, "schedule" => name.to_owned())
                    .increment(1);
                tracing::info!(%tick, job = %job.id, "tick fired: job created");
            }
            None => tracing::debug!(%tick, "tick already fired (by another scheduler)"),
        }
        state.last_fired = Some(tick);
        Ok(())
    }

    /// How long to sleep from `now` until the next tick, at most
    /// `max_sleep`.
    fn until_next_tick(&self, now: DateTime<Utc>) -> Duration {
        self.schedule
            .next_tick(now)
            .and_then(|next| (next - now).to_std().ok())
            .map_or(self.config.max_sleep, |d| d.min(self.config.max_sleep))
            .max(Duration::from_millis(1))
    }
}

/// Sets the gauges of a handled tick of `schedule`: its time, and the wait
/// until the tick after it.
fn publish_tick(schedule: &Schedule, tick: DateTime<Utc>) {
    let name = &schedule.name;
    metrics::gauge!(crate::metrics::SCHEDULE_LAST_TICK_TIMESTAMP_SECONDS, "schedule" => name.clone())
        .set(tick.timestamp() as f64);
    if let Some(interval) = schedule.interval_after(tick) {
        metrics::gauge!(crate::metrics::SCHEDULE_INTERVAL_SECONDS, "schedule" => name.clone())
            .set(interval.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, h, m, s).unwrap()
    }

    #[test]
    fn five_and_six_field_expressions_parse() {
        let daily = Schedule::parse("r", "0 2 * * *").unwrap();
        assert_eq!(daily.latest_tick(at(10, 0, 0)), Some(at(2, 0, 0)));
        assert_eq!(daily.next_tick(at(10, 0, 0)), Some(at(2, 0, 0) + chrono::Duration::days(1)));
        let every_ten_seconds = Schedule::parse("r", "*/10 * * * * *").unwrap();
        assert_eq!(every_ten_seconds.latest_tick(at(10, 0, 15)), Some(at(10, 0, 10)));
    }

    #[test]
    fn the_latest_tick_includes_now_and_the_next_excludes_it() {
        let hourly = Schedule::parse("r", "0 * * * *").unwrap();
        assert_eq!(hourly.latest_tick(at(10, 0, 0)), Some(at(10, 0, 0)));
        assert_eq!(hourly.next_tick(at(10, 0, 0)), Some(at(11, 0, 0)));
    }

    #[test]
    fn bad_expressions_are_refused_with_croners_reason() {
        for bad in ["", "0 2 * *", "0 0 2 * * * 2030", "61 * * * *", "every day"] {
            let error = Schedule::parse("r", bad).unwrap_err();
            assert!(matches!(error, ScheduleError::Invalid { .. }), "{bad:?}: {error}");
            assert!(std::error::Error::source(&error).is_some(), "{bad:?}: no reason");
        }
        assert!(matches!(Schedule::parse("r", "0 0 31 2 *"), Err(ScheduleError::NeverFires { .. })));
    }

    #[test]
    fn the_interval_is_the_wait_after_a_tick() {
        let every_ten_minutes = Schedule::parse("r", "*/10 * * * *").unwrap();
        assert_eq!(every_ten_minutes.interval_after(at(10, 0, 0)), Some(Duration::from_secs(600)));
        // Weekdays at 02:00: Friday's tick is followed by three days'
        // quiet, Monday's by one.
        let weekdays = Schedule::parse("r", "0 2 * * 1-5").unwrap();
        let friday = Utc.with_ymd_and_hms(2025, 6, 13, 2, 0, 0).unwrap();
        let monday = Utc.with_ymd_and_hms(2025, 6, 16, 2, 0, 0).unwrap();
        assert_eq!(weekdays.interval_after(friday), Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(weekdays.interval_after(monday), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn a_handled_tick_sets_both_gauges() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let hourly = Schedule::parse("reindex", "0 * * * *").unwrap();
        metrics::with_local_recorder(&recorder, || publish_tick(&hourly, at(10, 0, 0)));
        let text = handle.render();
        let last = format!(
            "{}{{schedule=\"reindex\"}} {}",
            crate::metrics::SCHEDULE_LAST_TICK_TIMESTAMP_SECONDS,
            at(10, 0, 0).timestamp()
        );
        let interval = format!("{}{{schedule=\"reindex\"}} 3600", crate::metrics::SCHEDULE_INTERVAL_SECONDS);
        assert!(text.lines().any(|l| l == last), "no `{last}` in:\n{text}");
        assert!(text.lines().any(|l| l == interval), "no `{interval}` in:\n{text}");
    }

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let config = SchedulerConfig::default();
        assert_eq!(config.backoff.delay(1), Duration::from_secs(1));
        assert_eq!(config.backoff.delay(3), Duration::from_secs(4));
        assert_eq!(config.backoff.delay(100), Duration::from_secs(60));
    }
}
