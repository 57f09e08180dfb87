//! How fresh ClickHouse is, as the freshness page shows it: the outbox's
//! depth and oldest entry, and per write path the rows written and the last
//! write, over every process.
//!
//! Each process reports what it wrote (`scorekeeper_analytics::activity`)
//! to Postgres (`write_activity`) every [`SAMPLE_PERIOD`], reads the fleet's
//! sums back with the outbox's state, and keeps the last hour of those
//! samples in memory: the chart needs no Prometheus. The same loop
//! publishes the outbox gauges of `/metrics`. A Postgres outage skips
//! samples (logged at debug); the loop goes on.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use scorekeeper_analytics::activity;
use scorekeeper_store::Store;
use scorekeeper_store::console::PathActivity;
use scorekeeper_store::outbox::OutboxStats;
use serde::Serialize;
use tokio::sync::watch;

use crate::Console;
use crate::session::Session;

/// How often a sample is taken.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(5);
/// Samples kept: one hour.
const KEPT: usize = 3600 / SAMPLE_PERIOD.as_secs() as usize;
/// The current rate is taken over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The write paths, in the page's order.
const PATHS: [&str; 4] = ["api", "batch_index", "autoqa", "reindex"];

#[derive(Clone, Debug)]
struct Sample {
    at: DateTime<Utc>,
    outbox: OutboxStats,
    /// Rows written and last write per path, over the fleet.
    paths: BTreeMap<String, (i64, Option<DateTime<Utc>>)>,
}

/// The last hour of samples. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Freshness {
    samples: Arc<Mutex<VecDeque<Sample>>>,
}

impl Freshness {
    fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().expect("the samples' lock is never poisoned");
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().expect("the samples' lock is never poisoned").iter().cloned().collect()
    }

    /// Samples every [`SAMPLE_PERIOD`] until `stop` turns true, reporting
    /// this process's writes as `process`.
    pub async fn run(
        self,
        store: Store,
        process: String,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), Infallible> {
        while !*stop.borrow() {
            if let Err(error) = self.sample(&store, &process).await {
                tracing::debug!(%error, "freshness sample skipped");
            }
            tokio::select! {
                _ = tokio::time::sleep(SAMPLE_PERIOD) => {}
                _ = stop.changed() => {}
            }
        }
        Ok(())
    }

    async fn sample(&self, store: &Store, process: &str) -> scorekeeper_store::Result<()> {
        let own: Vec<PathActivity> = activity::snapshot()
            .iter()
            .map(|w| PathActivity {
                path: w.path.as_str().to_owned(),
                rows_written: i64::try_from(w.rows).unwrap_or(i64::MAX),
                last_write_at: w.last_write_at,
            })
            .collect();
        store.report_write_activity(process, &own).await?;
        let outbox = store.outbox_stats().await?;
        metrics::gauge!(scorekeeper_sync::metrics::OUTBOX_DEPTH).set(outbox.depth as f64);
        metrics::gauge!(scorekeeper_sync::metrics::OUTBOX_OLDEST_AGE_SECONDS).set(outbox.oldest_age_seconds);
        let paths = store
            .write_activity()
            .await?
            .into_iter()
            .map(|p| (p.path, (p.rows_written, p.last_write_at)))
            .collect();
        self.push(Sample { at: Utc::now(), outbox, paths });
        Ok(())
    }
}

#[derive(Serialize)]
pub struct FreshnessView {
    sample_seconds: u64,
    outbox: OutboxView,
    paths: Vec<PathView>,
    history: Vec<Point>,
}

#[derive(Serialize)]
struct OutboxView {
    depth: i64,
    oldest_age_seconds: f64,
}

#[derive(Serialize)]
struct PathView {
    path: &'static str,
    last_write_at: Option<DateTime<Utc>>,
    seconds_since_last_write: Option<f64>,
    rows_per_second: f64,
}

#[derive(Serialize)]
struct Point {
    at: DateTime<Utc>,
    outbox_depth: i64,
    outbox_oldest_age_seconds: f64,
    rows_per_second: BTreeMap<&'static str, f64>,
}

/// Rows per second on `path` from `then` to `now`; a process forgotten in
/// between would make it negative, which counts as 0.
fn rate(then: &Sample, now: &Sample, path: &str) -> f64 {
    let rows = |s: &Sample| s.paths.get(path).map_or(0, |(rows, _)| *rows);
    let seconds = (now.at - then.at).as_seconds_f64();
    if seconds <= 0.0 { 0.0 } else { ((rows(now) - rows(then)) as f64 / seconds).max(0.0) }
}

/// The page's view of `samples` at `now`.
fn view(samples: &[Sample], now: DateTime<Utc>) -> FreshnessView {
    let last = samples.last();
    let window_start = last.map(|l| {
        samples.iter().find(|s| (l.at - s.at).to_std().is_ok_and(|age| age <= RATE_WINDOW)).unwrap_or(l)
    });
    let paths = PATHS
        .iter()
        .map(|&path| {
            let last_write_at = last.and_then(|l| l.paths.get(path)).and_then(|(_, at)| *at);
            PathView {
                path,
                last_write_at,
                seconds_since_last_write: last_write_at.map(|at| (now - at).as_seconds_f64().max(0.0)),
                rows_per_second: match (window_start, last) {
                    (Some(then), Some(last)) => rate(then, last, path),
                    _ => 0.0,
                },
            }
        })
        .collect();
    let history = samples
        .windows(2)
        .map(|pair| Point {
            at: pair[1].at,
            outbox_depth: pair[1].outbox.depth,
            outbox_oldest_age_seconds: pair[1].outbox.oldest_age_seconds,
            rows_per_second: PATHS.iter().map(|&p| (p, rate(&pair[0], &pair[1], p))).collect(),
        })
        .collect();
    FreshnessView {
        sample_seconds: SAMPLE_PERIOD.as_secs(),
        outbox: last.map_or(OutboxView { depth: 0, oldest_age_seconds: 0.0 }, |l| OutboxView {
            depth: l.outbox.depth,
            oldest_age_seconds: l.outbox.oldest_age_seconds,
        }),
        paths,
        history,
    }
}

/// `GET /ui/api/freshness`. Every token sees it: it names no customer.
pub async fn answer(State(console): State<Console>, _session: Session) -> Json<FreshnessView> {
    Json(view(&console.freshness.snapshot(), Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: i64, api_rows: i64) -> Sample {
        Sample {
            at: DateTime::from_timestamp(1_000_000 + seconds, 0).unwrap(),
            outbox: OutboxStats { depth: 3, oldest_age_seconds: 1.5 },
            paths: [("api".to_owned(), (api_rows, DateTime::from_timestamp(1_000_000 + seconds, 0)))].into(),
        }
    }

    #[test]
    fn rates_come_from_the_last_minute_and_never_go_negative() {
        // 0..=100 s, 10 rows a second on api; a process forgotten at 100 s.
        let mut samples: Vec<Sample> = (0..=20).map(|i| sample(i * 5, i * 50)).collect();
        let now = samples.last().unwrap().at;
        let v = view(&samples, now);
        let api = v.paths.iter().find(|p| p.path == "api").unwrap();
        assert!((api.rows_per_second - 10.0).abs() < 1e-9, "{}", api.rows_per_second);
        assert_eq!(api.seconds_since_last_write, Some(0.0));
        assert_eq!(v.paths.iter().find(|p| p.path == "reindex").unwrap().last_write_at, None);
        assert_eq!(v.history.len(), 20);
        samples.push(sample(105, 0));
        let v = view(&samples, now);
        assert_eq!(v.history.last().unwrap().rows_per_second["api"], 0.0);
        assert_eq!(v.outbox.depth, 3);
    }

    #[test]
    fn no_samples_yet_is_an_empty_page_not_an_error() {
        let v = view(&[], Utc::now());
        assert_eq!(v.paths.len(), 4);
        assert!(v.history.is_empty());
    }
}
