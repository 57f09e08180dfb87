//! The one insert path into ClickHouse, [`BulkWrite`]. Every writer (API
//! outbox, batch index, AutoQA) calls [`Analytics::write`], built on it, and
//! reindex streams many pages into one [`Analytics::bulk_write`]; each says
//! which path it is, for metrics.
//!
//! Contract: the batch's three tables are inserted at once; on error some
//! tables (on a cluster: some shards) may already hold their rows.
//! On a cluster every insert is synchronous (the `cluster` module): its
//! acknowledgement means the shards hold the rows.
//! That is safe because rows are idempotent by version: the caller retries
//! the whole batch.

use std::time::Instant;

use scorekeeper_domain::mirror::MirrorBatch;

use crate::error::{AnalyticsError, Result};
use crate::rows::{ConversationRow, OutOfMirrorRange, ScoreInsert, ScorecardRow};
use crate::{Analytics, rows};

/// Which of the four paths wrote; the `path` label of the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WritePath {
    /// Create/Update/DeleteScorecard, through the outbox.
    Api,
    /// BatchIndexConversations.
    BatchIndex,
    /// AutoscoreConversations, through the outbox.
    AutoQa,
    /// Reindex jobs.
    Reindex,
}

impl WritePath {
    pub const ALL: [WritePath; 4] =
        [WritePath::Api, WritePath::BatchIndex, WritePath::AutoQa, WritePath::Reindex];

    pub fn as_str(self) -> &'static str {
        match self {
            WritePath::Api => "api",
            WritePath::BatchIndex => "batch_index",
            WritePath::AutoQa => "autoqa",
            WritePath::Reindex => "reindex",
        }
    }
}

/// Rows written per table by one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub conversations: usize,
    pub scorecards: usize,
    pub scores: usize,
}

impl Analytics {
    /// Inserts the batch, its three tables at once. Returns once ClickHouse
    /// acknowledged every table's insert, so a caller may then advance its
    /// checkpoint or delete its outbox entries.
    pub async fn write(&self, path: WritePath, batch: &MirrorBatch) -> Result<WriteReport> {
        let mut write = self.bulk_write(path);
        write.append(batch).await?;
        write.finish().await
    }
}

/// The metrics of one insert into `table`, whichever way it was made.
fn record_insert(path: WritePath, table: &'static str, rows: usize, started: Instant, outcome: &Result<()>) {
    let labels = [("path", path.as_str()), ("table", table)];
    metrics::histogram!(crate::metrics::CLICKHOUSE_INSERT_SECONDS, &labels).record(started.elapsed());
    match outcome {
        Ok(()) => {
            metrics::counter!(crate::metrics::CLICKHOUSE_ROWS_WRITTEN_TOTAL, &labels).increment(rows as u64)
        }
        Err(error) => {
            metrics::counter!(crate::metrics::CLICKHOUSE_INSERT_ERRORS_TOTAL, &labels).increment(1);
            tracing::warn!(path = path.as_str(), table, rows, %error, "ClickHouse insert failed");
        }
    }
}

fn record_last_write(path: WritePath) {
    let now = rows::bound_seconds(chrono::Utc::now());
    metrics::gauge!(crate::metrics::CLICKHOUSE_LAST_WRITE_TIMESTAMP_SECONDS, "path" => path.as_str())
        .set(f64::from(now));
}

/// One INSERT per table that batches stream into: one batch for
/// [`Analytics::write`], many for bulk copies (reindex). ClickHouse pays per insert (a part per table, merged
/// later) far more than per row, so a few large inserts beat many small
/// ones. Rows are encoded as they are appended, so the batches need not be
/// kept. Nothing is acknowledged until [`BulkWrite::finish`]; dropped
/// unfinished, the inserts are aborted.
pub struct BulkWrite {
    analytics: Analytics,
    /// The client of the inserts, once asked for ([`Analytics::insert_client`]).
    client: Option<clickhouse::Client>,
    path: WritePath,
    started: Instant,
    conversations: Table<ConversationRow>,
    scorecards: Table<ScorecardRow>,
    scores: Table<ScoreInsert<'static>>,
}

/// One table's open insert (started on its first row) and rows written.
struct Table<T> {
    name: &'static str,
    insert: Option<clickhouse::insert::Insert<T>>,
    rows: usize,
}

/// `T` is the row type of the insert; rows are its `Value<'r>`, which may
/// borrow from the batch (`ScoreInsert`).
impl<T: clickhouse::RowWrite> Table<T> {
    fn new(name: &'static str) -> Table<T> {
        Table { name, insert: None, rows: 0 }
    }

    async fn append<'r>(
        &mut self,
        client: &clickhouse::Client,
        path: WritePath,
        started: Instant,
        rows: impl Iterator<Item = Result<T::Value<'r>, OutOfMirrorRange>>,
    ) -> Result<()> {
        let outcome = self.append_rows(client, rows).await;
        if outcome.is_err() {
            record_insert(path, self.name, self.rows, started, &outcome);
        }
        outcome
    }

    async fn append_rows<'r>(
        &mut self,
        client: &clickhouse::Client,
        rows: impl Iterator<Item = Result<T::Value<'r>, OutOfMirrorRange>>,
    ) -> Result<()> {
        for row in rows {
            let row = row?;
            let insert = match &mut self.insert {
                Some(insert) => insert,
                empty => {
                    empty.insert(client.insert::<T>(self.name).await.map_err(AnalyticsError::from_query)?)
                }
            };
            insert.write(&row).await.map_err(AnalyticsError::from_query)?;
            self.rows += 1;
        }
        Ok(())
    }

    async fn finish(self, path: WritePath, started: Instant) -> Result<usize> {
        let Some(insert) = self.insert else { return Ok(0) };
        let outcome = insert.end().await.map_err(AnalyticsError::from_query);
        record_insert(path, self.name, self.rows, started, &outcome);
        outcome.map(|()| self.rows)
    }
}

impl Analytics {
    /// Starts a bulk write (see [`BulkWrite`]).
    pub fn bulk_write(&self, path: WritePath) -> BulkWrite {
        BulkWrite {
            analytics: self.clone(),
            client: None,
            path,
            started: Instant::now(),
            conversations: Table::new("conversations"),
            scorecards: Table::new("scorecards"),
            scores: Table::new("scores"),
        }
    }
}

impl BulkWrite {
    /// Encodes the batch's rows into the open inserts. A row with a time
    /// ClickHouse cannot hold fails the write
    /// ([`AnalyticsError::OutOfMirrorRange`], not transient) before it is
    /// sent; the whole write must then be dropped, unfinished.
    pub async fn append(&mut self, batch: &MirrorBatch) -> Result<()> {
        let client = match self.client.take() {
            Some(client) => client,
            None => self.analytics.insert_client().await?,
        };
        let client = &*self.client.insert(client);
        let (path, started) = (self.path, self.started);
        let conversations = batch.conversations.iter().map(TryInto::try_into);
        self.conversations.append(client, path, started, conversations).await?;
        let scorecards = batch.scorecards.iter().map(TryInto::try_into);
        self.scorecards.append(client, path, started, scorecards).await?;
        self.scores.append(client, path, started, batch.scores.iter().map(TryInto::try_into)).await
    }

    /// Rows appended so far.
    pub fn rows(&self) -> usize {
        self.conversations.rows + self.scorecards.rows + self.scores.rows
    }

    /// Ends the inserts; returns once ClickHouse acknowledged every table.
    pub async fn finish(self) -> Result<WriteReport> {
        let (path, started) = (self.path, self.started);
        let (conversations, scorecards, scores) = futures::try_join!(
            self.conversations.finish(path, started),
            self.scorecards.finish(path, started),
            self.scores.finish(path, started),
        )?;
        if conversations + scorecards + scores > 0 {
            record_last_write(path);
            crate::activity::record(path, conversations + scorecards + scores);
        }
        Ok(WriteReport { conversations, scorecards, scores })
    }
}
