//! The cron scheduler of the reindex on real Postgres: exactly one job per
//! tick however many schedulers fire it, and each job's window starting at
//! the tick fired before it (less the lookback), so the windows chain with
//! no gap; one catch-up job after downtime; the first start records the
//! latest tick without a job; a tick fired twice makes one job; an
//! unreachable Postgres does not end a scheduler.

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use scorekeeper_domain::TemplateType;
use scorekeeper_domain::reindex::{ReindexSpec, TimeBase};
use scorekeeper_jobs::store::tick_dedupe_key;
use scorekeeper_jobs::{Job, JobFilter, JobStore};
use scorekeeper_retry::Backoff;
use scorekeeper_store::Store;
use scorekeeper_sync::reindex::schedule::{
    ReindexScheduleSettings, SCHEDULE_NAME, Scheduler, SchedulerConfig,
};
use scorekeeper_tests::TestEnv;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const HOUR: TimeDelta = TimeDelta::hours(1);

/// A job as the scheduler wrote it: its dedupe key and its window, read
/// straight from the stored payload.
#[derive(Debug)]
struct Scheduled {
    key: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Every job, oldest window end (tick) first.
async fn scheduled(store: &JobStore) -> Vec<Scheduled> {
    let jobs = store.list_jobs(&JobFilter::default(), None, 10_000).await.expect("reading the jobs");
    let mut scheduled: Vec<Scheduled> = jobs
        .iter()
        .map(|job| {
            let spec: ReindexSpec = serde_json::from_value(job.payload.clone()).expect("a reindex payload");
            let window = spec.scope.window.expect("a scheduled job has a window");
            let key = job.dedupe_key.clone().expect("a scheduled job has a dedupe key");
            Scheduled { key, start: window.start, end: window.end }
        })
        .collect();
    scheduled.sort_by(|a, b| (a.end, &a.key).cmp(&(b.end, &b.key)));
    scheduled
}

/// Asserts one job per tick and windows that chain: each job's key is its
/// tick's, and its window starts at the tick before it (`first_previous`
/// for the first, when known), less the lookback.
fn assert_chained(jobs: &[Scheduled], lookback: TimeDelta, first_previous: Option<DateTime<Utc>>) {
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job.key, tick_dedupe_key(SCHEDULE_NAME, job.end), "job {i}: {jobs:#?}");
        let previous = match i {
            0 => match first_previous {
                Some(previous) => previous,
                None => continue,
            },
            _ => jobs[i - 1].end,
        };
        assert!(previous < job.end, "job {i}: two jobs for one tick: {jobs:#?}");
        assert_eq!(
            job.start,
            previous - lookback,
            "job {i} does not start where the tick before it left off: {jobs:#?}"
        );
    }
}

/// Fires `tick` of the reindex schedule as a scheduler does.
async fn fire(store: &JobStore, settings: &ReindexScheduleSettings, tick: DateTime<Utc>) -> Option<Job> {
    store
        .fire_tick(SCHEDULE_NAME, tick, |previous| settings.reindex_job(tick, previous))
        .await
        .expect("firing a tick")
}

fn every_second(lookback: &str) -> ReindexScheduleSettings {
    ReindexScheduleSettings::parse("all", "* * * * * *", lookback).expect("valid settings")
}

/// A second pool on the same database, as another `serve` process has.
fn another_process(env: &TestEnv) -> JobStore {
    JobStore::new(&Store::connect(&env.database_url(), 4).expect("a second pool"))
}

fn spawn(scheduler: Scheduler, stop: &watch::Sender<bool>) -> JoinHandle<()> {
    tokio::spawn(scheduler.run(stop.subscribe()))
}

async fn stop_all(stop: watch::Sender<bool>, schedulers: Vec<JoinHandle<()>>) {
    stop.send(true).expect("schedulers listen");
    for scheduler in schedulers {
        tokio::time::timeout(Duration::from_secs(5), scheduler)
            .await
            .expect("a scheduler stops when told")
            .expect("a scheduler does not panic");
    }
}

async fn wait_for_jobs(store: &JobStore, at_least: usize, within: Duration) -> Vec<Scheduled> {
    let started = Instant::now();
    loop {
        let jobs = scheduled(store).await;
        if jobs.len() >= at_least || started.elapsed() > within {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn concurrent_fires_of_a_tick_create_one_job() {
    let env = TestEnv::start().await;
    let settings = every_second("1h");
    let t0 = Utc::now().trunc_subsecs(0) - TimeDelta::seconds(30);
    let race = |tick: DateTime<Utc>| {
        let (store, settings) = (another_process(&env), settings.clone());
        tokio::spawn(async move { fire(&store, &settings, tick).await.is_some() })
    };

    // Eight schedulers fire the same (first ever) tick at once.
    let racers: Vec<_> = (0..8).map(|_| race(t0)).collect();
    let mut created = 0;
    for racer in racers {
        created += usize::from(racer.await.expect("no panic"));
    }
    assert_eq!(created, 1, "exactly one of eight fires creates the job");
    let jobs = scheduled(&env.jobs).await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0].end, t0);
    assert_eq!(jobs[0].start, t0 - HOUR, "the first tick ever reaches back the lookback");

    // Two ticks raced by four schedulers each: the later one always gets
    // its job; the earlier one gets one only if it committed first, and
    // then the later one's window starts from it, never from t0.
    let (t1, t2) = (t0 + TimeDelta::seconds(1), t0 + TimeDelta::seconds(2));
    let racers: Vec<_> = (0..8).map(|i| race(if i % 2 == 0 { t1 } else { t2 })).collect();
    let mut created = 0;
    for racer in racers {
        created += usize::from(racer.await.expect("no panic"));
    }
    let jobs = scheduled(&env.jobs).await;
    assert_eq!(jobs.len(), 1 + created, "one job per successful fire: {jobs:#?}");
    assert_eq!(jobs.last().map(|j| j.end), Some(t2), "{jobs:#?}");
    assert!(jobs.len() <= 3, "{jobs:#?}");
    assert_chained(&jobs, HOUR, None);
    assert_eq!(env.jobs.schedule_last_tick(SCHEDULE_NAME).await.unwrap(), Some(t2));
}

#[tokio::test]
async fn firing_a_tick_twice_creates_one_job() {
    let env = TestEnv::start().await;
    let settings = every_second("90m");
    let tick = Utc::now().trunc_subsecs(0);
    let job = fire(&env.jobs, &settings, tick).await.expect("the first fire creates the job");
    assert_eq!(job.customer_id, None);
    assert_eq!(job.job_type, 1);
    assert_eq!(job.max_attempts, 10);
    let names: Vec<&str> = job.activities.iter().map(|a| a.activity.as_str()).collect();
    assert_eq!(names, ["reindex_conversations", "reindex_process_scorecards"]);
    let spec = ReindexSpec::deserialize(job.payload.clone()).expect("a reindex payload");
    assert_eq!(spec.scorecard_types, [TemplateType::Conversation, TemplateType::Process]);
    let window = spec.scope.window.expect("a window");
    assert_eq!(window.base, TimeBase::UpdatedAt);
    assert_eq!((window.start, window.end), (tick - TimeDelta::minutes(90), tick));

    assert!(fire(&env.jobs, &settings, tick).await.is_none(), "the same tick again");
    let older = tick - TimeDelta::seconds(1);
    assert!(fire(&env.jobs, &settings, older).await.is_none(), "an older tick");
    let jobs = env.jobs.list_jobs(&JobFilter::default(), None, 10).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    assert_eq!(env.jobs.schedule_last_tick(SCHEDULE_NAME).await.unwrap(), Some(tick));
}

#[tokio::test]
async fn two_schedulers_create_one_job_per_tick() {
    let env = TestEnv::start().await;
    let settings = every_second("1h");
    let began = Utc::now();
    let (stop, _) = watch::channel(false);
    let schedulers = vec![
        spawn(settings.scheduler(env.jobs.clone()), &stop),
        spawn(settings.scheduler(another_process(&env)), &stop),
    ];
    tokio::time::sleep(Duration::from_millis(3500)).await;
    stop_all(stop, schedulers).await;
    let ended = Utc::now();

    let jobs = scheduled(&env.jobs).await;
    // Ticks came every second for 3.5 s; the first start only records.
    assert!(jobs.len() >= 2, "{jobs:#?}");
    assert!(jobs.len() <= 4, "more jobs than ticks: {jobs:#?}");
    assert_chained(&jobs, HOUR, None);
    let first_previous = jobs[0].start + HOUR;
    assert!(
        first_previous >= began.trunc_subsecs(0) - TimeDelta::seconds(1),
        "the first job reaches back to the tick recorded at the first start: {jobs:#?}"
    );
    assert!(jobs.last().is_some_and(|j| j.end <= ended));
    assert_eq!(env.jobs.schedule_last_tick(SCHEDULE_NAME).await.unwrap(), jobs.last().map(|j| j.end));
}

#[tokio::test]
async fn schedulers_down_across_many_ticks_create_one_catch_up_job() {
    let env = TestEnv::start().await;
    // Daily at midnight: no tick comes while the test runs (unless it
    // runs across midnight UTC, which the assertions allow for).
    let settings = ReindexScheduleSettings::parse("process", "0 0 * * *", "24h").unwrap();
    let latest = || settings.schedule.latest_tick(Utc::now()).expect("a past midnight");
    let latest_before = latest();
    let last_fired = latest_before - TimeDelta::days(10);
    assert!(env.jobs.seed_schedule(SCHEDULE_NAME, last_fired).await.unwrap());

    // Both processes come back at once.
    let (stop, _) = watch::channel(false);
    let schedulers = vec![
        spawn(settings.scheduler(env.jobs.clone()), &stop),
        spawn(settings.scheduler(another_process(&env)), &stop),
    ];
    let jobs = wait_for_jobs(&env.jobs, 1, Duration::from_secs(5)).await;
    // Give a flood, if there were one, time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_all(stop, schedulers).await;

    let jobs_after = scheduled(&env.jobs).await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    if latest() == latest_before {
        assert_eq!(jobs_after.len(), 1, "ten missed ticks make one job: {jobs_after:#?}");
    }
    let catch_up = &jobs_after[0];
    assert_eq!(catch_up.end, latest_before, "the catch-up job is the latest tick's");
    assert_eq!(
        catch_up.start,
        last_fired - TimeDelta::hours(24),
        "it reaches back to the last tick fired before the downtime"
    );
    assert_chained(&jobs_after, TimeDelta::hours(24), Some(last_fired));

    let stored: Vec<Job> = env.jobs.list_jobs(&JobFilter::default(), None, 10).await.unwrap();
    let names: Vec<&str> = stored[0].activities.iter().map(|a| a.activity.as_str()).collect();
    assert_eq!(names, ["reindex_process_scorecards"], "REINDEX_MODE=process");
}

#[tokio::test]
async fn the_first_start_records_the_latest_tick_without_a_job() {
    let env = TestEnv::start().await;
    let settings = ReindexScheduleSettings::parse("all", "0 0 1 1 *", "24h").unwrap();
    let latest = settings.schedule.latest_tick(Utc::now()).expect("a past new year");

    for start in ["first", "second"] {
        let (stop, _) = watch::channel(false);
        let scheduler = spawn(settings.scheduler(env.jobs.clone()), &stop);
        let began = Instant::now();
        while env.jobs.schedule_last_tick(SCHEDULE_NAME).await.unwrap().is_none()
            && began.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Time enough to (wrongly) fire the recorded tick.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop_all(stop, vec![scheduler]).await;
        assert_eq!(env.jobs.schedule_last_tick(SCHEDULE_NAME).await.unwrap(), Some(latest), "{start} start");
        assert_eq!(env.jobs.count_jobs(&JobFilter::default()).await.unwrap(), 0, "{start} start: no job");
    }
}

#[tokio::test]
async fn a_scheduler_outlives_an_unreachable_postgres() {
    // Nothing listens on port 1: every tick fails at once.
    let store = JobStore::new(&Store::connect("postgres://postgres@127.0.0.1:1/none", 1).expect("a pool"));
    let scheduler = every_second("1h").scheduler(store).with_config(SchedulerConfig {
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(200)),
        ..SchedulerConfig::default()
    });
    let (stop, _) = watch::channel(false);
    let running = spawn(scheduler, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!running.is_finished(), "the scheduler gave up on Postgres errors");
    stop_all(stop, vec![running]).await;
}
