//! The reindex workflow of `JOB_TYPE_REINDEX_CONVERSATIONS`: the payload's
//! scorecard types decide which activities run (`ReindexSpec::activities`),
//! conversation first, then process. Each activity is split into
//! partitions, key ranges of about `REINDEX_PARTITION_ROWS` rows, that
//! workers of every `serve` process claim; each partition resumes on its
//! own from the checkpoint committed after ClickHouse acknowledged each
//! batch.
//!
//! What a scope covers:
//! * window on the conversation start (or none), or explicit ids: the
//!   conversations, their conversation scorecards and those scorecards'
//!   scores; process scorecards created in the window (or linked to the ids)
//!   and their scores;
//! * window on the last update: every row, of each table, changed in the
//!   window, and the scores of every scorecard changed in it (a score row
//!   carries its scorecard's agent and deletion), so a lookback catches
//!   changes whatever made them.
//!
//! Scopes of explicit ids and windows on the last update are small by
//! nature and read several tables by their own keys: they run as one
//! partition.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use scorekeeper_analytics::{Analytics, WritePath};
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::reindex::{KeyRange, ReindexActivity, ReindexSpec};
use scorekeeper_jobs::handler::DEFAULT_RETRY_BACKOFF;
use scorekeeper_jobs::{Activity, Covered, JobContext, JobHandler, NewJob, RetryPolicy, RunError, Split};
use scorekeeper_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::error::SyncError;

mod pages;
pub mod schedule;

use pages::{Page, PageReader};

/// `JobType::JOB_TYPE_REINDEX_CONVERSATIONS` (proto `scorekeeper.v1.JobType`);
/// a contract test checks the two agree.
pub const JOB_TYPE: i16 = 1;

/// Default batch sizes (`REINDEX_CONVERSATIONS_BATCH_SIZE`,
/// `REINDEX_PROCESS_SCORECARDS_BATCH_SIZE`), overridable per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReindexSettings {
    pub conversations_batch_size: usize,
    pub process_scorecards_batch_size: usize,
    /// Rows after which a partition's open ClickHouse inserts are ended and
    /// its checkpoint committed (`REINDEX_WRITE_ROWS`); 1 commits every page.
    pub write_rows: usize,
    /// Rows (as the activity's estimate counts them) a partition aims at
    /// (`REINDEX_PARTITION_ROWS`).
    pub partition_rows: usize,
}

impl Default for ReindexSettings {
    fn default() -> Self {
        ReindexSettings {
            conversations_batch_size: 1000,
            process_scorecards_batch_size: 4000,
            // About ClickHouse's max_insert_block_size: one part per table.
            write_rows: 1_000_000,
            // A few seconds of one worker's copying: small enough that
            // several workers share a job evenly and a takeover redoes
            // little, large enough that claims cost nothing next to it.
            partition_rows: 500_000,
        }
    }
}

/// Partitions one activity is split into at most.
const MAX_PARTITIONS: usize = 1000;

/// Where a partition resumes: the phase and the last id done in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub phase: Phase,
    pub after: i64,
}

/// The passes of an activity, in order. Which run depends on the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Conversations,
    Scorecards,
    Scores,
}

pub struct ReindexHandler {
    store: Store,
    analytics: Analytics,
    settings: ReindexSettings,
}

impl ReindexHandler {
    pub fn new(store: Store, analytics: Analytics, settings: ReindexSettings) -> ReindexHandler {
        ReindexHandler { store, analytics, settings }
    }
}

/// The job that runs `spec`, owned by `customer_id` (`None`: an
/// operator's, across customers), with the activities its scorecard types
/// resolve to. The one builder of reindex jobs: the API's CreateJob, the
/// schedule and the audit's repair all use it.
pub fn new_job(spec: &ReindexSpec, customer_id: Option<CustomerId>) -> NewJob {
    NewJob::of::<ReindexHandler>(spec, customer_id)
}

/// The progress row of `activity` and its checkpoint's type.
fn activity(activity: ReindexActivity) -> Activity<Checkpoint> {
    Activity::new(activity.name())
}

impl JobHandler for ReindexHandler {
    const JOB_TYPE: i16 = JOB_TYPE;
    const NAME: &'static str = "reindex";
    const RETRY_POLICY: RetryPolicy = RetryPolicy { max_attempts: 10, backoff: DEFAULT_RETRY_BACKOFF };
    type Payload = ReindexSpec;
    type Partition = KeyRange;

    fn activities(spec: &ReindexSpec) -> Vec<&'static str> {
        spec.activities().iter().map(|a| a.name()).collect()
    }

    fn run<'a>(&'a self, ctx: &'a JobContext, spec: ReindexSpec) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            // One activity after the other; the parallelism is the
            // partitions'.
            for kind in spec.activities() {
                let progress = activity(kind);
                if ctx.finished(&progress) {
                    continue;
                }
                if !ctx.is_planned(&progress) {
                    // Begun in one piece by a version that did not
                    // partition: resume it, in one partition, from its
                    // checkpoint (which must decode).
                    let splits = match ctx.checkpoint(&progress)? {
                        Some(_) => {
                            let estimate = ctx.progress(&progress).map_or(0, |p| p.rows_estimated);
                            vec![Split { range: KeyRange::ALL, rows_estimated: estimate }]
                        }
                        None => self.plan(&spec, kind).await?,
                    };
                    tracing::info!(
                        activity = kind.name(),
                        partitions = splits.len(),
                        "reindex activity planned"
                    );
                    ctx.plan_partitions::<Self, _>(&progress, splits).await?;
                }
                ctx.run_partitions(&progress).await?;
            }
            Ok(())
        })
    }

    fn run_partition<'a>(
        &'a self,
        ctx: &'a JobContext,
        spec: ReindexSpec,
        keys: KeyRange,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let name = ctx.partition().map(|p| p.activity.as_str()).unwrap_or_default();
            let Some(kind) = ReindexActivity::named(name) else {
                return Err(RunError::fatal(
                    "invalid_partition",
                    format!("no reindex activity is named {name:?}"),
                ));
            };
            let resume = ctx.checkpoint(&activity(kind))?;
            PartitionRun { handler: self, ctx, spec: &spec, activity: kind, keys }.execute(resume).await
        })
    }
}

impl ReindexHandler {
    /// The partitions of `kind` for `spec`: key ranges of about
    /// `partition_rows` rows each by the activity's estimate, or one
    /// partition of every key for scopes that are not split.
    async fn plan(
        &self,
        spec: &ReindexSpec,
        kind: ReindexActivity,
    ) -> Result<Vec<Split<KeyRange>>, RunError> {
        let store = &self.store;
        let estimate = store.reindex_estimate(&spec.scope, kind).await.map_err(SyncError::from)?;
        let splittable = !spec.scope.by_update() && spec.scope.conversation_ids.is_empty();
        let wanted = usize::try_from(estimate).unwrap_or(0).div_ceil(self.settings.partition_rows.max(1));
        let bounds = match splittable && wanted > 1 {
            true => store.reindex_key_bounds(&spec.scope, kind).await.map_err(SyncError::from)?,
            false => None,
        };
        let ranges = match bounds {
            Some((min, max)) => KeyRange::split(min, max, wanted.min(MAX_PARTITIONS)),
            None => vec![KeyRange::ALL],
        };
        let parts = ranges.len() as i64;
        Ok(ranges
            .into_iter()
            .enumerate()
            .map(|(i, range)| {
                // Even shares, the remainder to the first.
                let share = estimate / parts + i64::from(i == 0) * (estimate % parts);
                Split { range, rows_estimated: share }
            })
            .collect())
    }
}

/// Pages read ahead of the ClickHouse writer: reading the next pages
/// overlaps writing this one, and memory stays bounded by a few pages
/// whatever the range.
const READ_AHEAD: usize = 2;

/// Seconds after which an activity's open inserts are ended and its
/// checkpoint committed even below `write_rows`, so that progress and a
/// cancel are seen when pages come slowly.
const WRITE_SECONDS: Duration = Duration::from_secs(5);

/// One claim of one partition of an activity.
struct PartitionRun<'a> {
    handler: &'a ReindexHandler,
    ctx: &'a JobContext,
    spec: &'a ReindexSpec,
    activity: ReindexActivity,
    keys: KeyRange,
}

impl PartitionRun<'_> {
    fn by_update(&self) -> bool {
        self.spec.scope.by_update()
    }

    fn batch_size(&self) -> usize {
        let (given, default) = match self.activity {
            ReindexActivity::Conversations => {
                (self.spec.conversations_batch_size, self.handler.settings.conversations_batch_size)
            }
            ReindexActivity::ProcessScorecards => {
                (self.spec.process_scorecards_batch_size, self.handler.settings.process_scorecards_batch_size)
            }
        };
        given.map_or(default, |n| n as usize).max(1)
    }

    /// Reads pages in a task of their own and writes them here, in order;
    /// a page's checkpoint is committed only after ClickHouse acknowledged
    /// it and every page before it.
    async fn execute(self, resume: Option<Checkpoint>) -> Result<(), RunError> {
        let progress = activity(self.activity);
        let reader = PageReader {
            store: self.handler.store.clone(),
            spec: self.spec.clone(),
            activity: self.activity,
            by_update: self.by_update(),
            limit: self.batch_size(),
            keys: self.keys,
        };
        let (pages, mut received) = mpsc::channel(READ_AHEAD);
        // Aborted if this attempt stops early (an error, a cancel).
        let reading = AbortOnDropHandle::new(tokio::spawn(reader.run(resume, pages)));
        // Pages stream into one long insert per table, ended (and the last
        // page's checkpoint committed) every `write_rows` rows, at the end,
        // or when pages come slowly. An error drops the open insert; the
        // pages since the last checkpoint are read again on retry.
        let analytics = &self.handler.analytics;
        let (mut bulk, mut since) = (analytics.bulk_write(WritePath::Reindex), Instant::now());
        let mut done: Option<Checkpoint> = None;
        // Pages appended since the last checkpoint: what the next one covers.
        let mut pages = 0;
        loop {
            let next = received.recv().await;
            let ended = next.is_none();
            if let Some(page) = next {
                let page: Page = page?;
                bulk.append(&page.batch).await.map_err(SyncError::from)?;
                pages += 1;
                // A cancel stops the partition at its next page; the open
                // insert is dropped, and the job ends cancelled.
                if let Some(reason) = self.ctx.stop_reason() {
                    return Err(RunError::Stopped(reason));
                }
                done = Some(Checkpoint { phase: page.phase, after: page.last });
                if bulk.rows() < self.handler.settings.write_rows && since.elapsed() < WRITE_SECONDS {
                    continue;
                }
            }
            if let Some(checkpoint) = done.take() {
                let finished = std::mem::replace(&mut bulk, analytics.bulk_write(WritePath::Reindex));
                let report = finished.finish().await.map_err(SyncError::from)?;
                let rows = report.conversations + report.scorecards + report.scores;
                // Only now, after ClickHouse acknowledged the rows.
                let covered = Covered { pages: std::mem::take(&mut pages), rows };
                self.ctx.record_checkpoint(&progress, covered, &checkpoint, since.elapsed()).await?;
                tracing::debug!(rows, pages = covered.pages, elapsed = ?since.elapsed(), "reindex checkpoint committed");
                since = Instant::now();
            }
            if ended {
                break;
            }
        }
        // The reader sends every page, or an error, before it ends; one that
        // ended otherwise panicked.
        reading.await.map_err(|e| RunError::fatal("internal", format!("the reindex page reader failed: {e}")))
    }
}
