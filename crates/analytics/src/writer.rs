//! The one insert path into ClickHouse. Every writer (API outbox, batch
//! index, AutoQA, reindex) calls [`Analytics::write`] with a label saying
//! which path it is, for metrics.
//!
//! Contract: the batch's three tables are inserted at once; on error some
//! tables may already hold their rows.
//! That is safe because rows are idempotent by version: the caller retries
//! the whole batch.

use std::time::Instant;

use scorekeeper_domain::mirror::MirrorBatch;
use serde::Serialize;

use crate::error::{AnalyticsError, Result};
use crate::rows::{ConversationRow, ScoreRow, ScorecardRow};
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
    /// Inserts the batch. Returns once ClickHouse acknowledged every table's
    /// insert, so a caller may then advance its checkpoint or delete its
    /// outbox entries.
    pub async fn write(&self, path: WritePath, batch: &MirrorBatch) -> Result<WriteReport> {
        let conversations: Vec<ConversationRow> = batch.conversations.iter().map(Into::into).collect();
        let scorecards: Vec<ScorecardRow> = batch.scorecards.iter().map(Into::into).collect();
        let scores: Vec<ScoreRow> = batch.scores.iter().map(Into::into).collect();
        // The three tables at once: each insert is one HTTP request, and
        // ClickHouse works on them in parallel.
        futures::try_join!(
            self.insert(path, "conversations", &conversations),
            self.insert(path, "scorecards", &scorecards),
            self.insert(path, "scores", &scores),
        )?;
        if !batch.is_empty() {
            let now = rows::seconds(chrono::Utc::now());
            metrics::gauge!("scorekeeper_clickhouse_last_write_timestamp_seconds", "path" => path.as_str())
                .set(f64::from(now));
        }
        Ok(WriteReport {
            conversations: conversations.len(),
            scorecards: scorecards.len(),
            scores: scores.len(),
        })
    }

    async fn insert<T>(&self, path: WritePath, table: &'static str, rows: &[T]) -> Result<()>
    where
        T: clickhouse::RowWrite + for<'a> clickhouse::Row<Value<'a> = T> + Serialize,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = self.insert_rows(table, rows).await;
        let labels = [("path", path.as_str()), ("table", table)];
        metrics::histogram!("scorekeeper_clickhouse_insert_seconds", &labels).record(started.elapsed());
        match &outcome {
            Ok(()) => metrics::counter!("scorekeeper_clickhouse_rows_written_total", &labels)
                .increment(rows.len() as u64),
            Err(error) => {
                metrics::counter!("scorekeeper_clickhouse_insert_errors_total", &labels).increment(1);
                tracing::warn!(path = path.as_str(), table, rows = rows.len(), %error, "ClickHouse insert failed");
            }
        }
        outcome
    }

    async fn insert_rows<T>(&self, table: &str, rows: &[T]) -> Result<()>
    where
        T: clickhouse::RowWrite + for<'a> clickhouse::Row<Value<'a> = T> + Serialize,
    {
        let mut insert = self.client().insert::<T>(table).await.map_err(AnalyticsError::from_query)?;
        for row in rows {
            insert.write(row).await.map_err(AnalyticsError::from_query)?;
        }
        insert.end().await.map_err(AnalyticsError::from_query)
    }
}
