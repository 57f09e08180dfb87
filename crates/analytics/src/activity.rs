//! What this process wrote to ClickHouse per write path since it started:
//! rows acknowledged and the time of the last write. The metrics say the
//! same to Prometheus; this is for the service itself, which reports it to
//! Postgres so the console can sum it over every process.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::writer::WritePath;

struct Tally {
    rows: AtomicU64,
    /// Unix milliseconds of the last write; 0: none yet.
    last_write_ms: AtomicI64,
}

static TALLIES: [Tally; 4] =
    [const { Tally { rows: AtomicU64::new(0), last_write_ms: AtomicI64::new(0) } }; 4];

fn tally(path: WritePath) -> &'static Tally {
    &TALLIES[WritePath::ALL.iter().position(|p| *p == path).expect("every path is in ALL")]
}

/// Counts `rows` ClickHouse acknowledged on `path`, now.
pub(crate) fn record(path: WritePath, rows: usize) {
    let tally = tally(path);
    tally.rows.fetch_add(rows as u64, Ordering::Relaxed);
    tally.last_write_ms.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
}

/// One path's writes in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathWrites {
    pub path: WritePath,
    pub rows: u64,
    pub last_write_at: Option<DateTime<Utc>>,
}

/// Every path's writes in this process so far.
pub fn snapshot() -> [PathWrites; 4] {
    WritePath::ALL.map(|path| {
        let tally = tally(path);
        let last = tally.last_write_ms.load(Ordering::Relaxed);
        PathWrites {
            path,
            rows: tally.rows.load(Ordering::Relaxed),
            last_write_at: (last > 0).then(|| DateTime::from_timestamp_millis(last)).flatten(),
        }
    })
}
