//! The reindex workflow of `JOB_TYPE_REINDEX_CONVERSATIONS`: the payload's
//! scorecard types decide which activities run (`resolve_reindex_scope`),
//! conversation first, then process, each resumable on its own from the
//! checkpoint committed after ClickHouse acknowledged each batch.
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

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use scorekeeper_analytics::{Analytics, WritePath};
use scorekeeper_domain::mirror::MirrorBatch;
use scorekeeper_domain::reindex::{ReindexActivity, ReindexSpec, TimeBase, resolve_reindex_scope};
use scorekeeper_domain::{ConversationId, TemplateType};
use scorekeeper_jobs::{JobContext, JobHandler, RunError};
use scorekeeper_store::Store;
use scorekeeper_store::jobs::JobError;
use scorekeeper_store::reindex::ScorecardTime;
use serde::{Deserialize, Serialize};

use crate::error::SyncError;
use crate::retry::{self, RetryDecision};

/// `JobType::JOB_TYPE_REINDEX_CONVERSATIONS` (proto `scorekeeper.v1.JobType`);
/// a contract test checks the two agree.
pub const JOB_TYPE: i16 = 1;

/// Default batch sizes (`REINDEX_CONVERSATIONS_BATCH_SIZE`,
/// `REINDEX_PROCESS_SCORECARDS_BATCH_SIZE`), overridable per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReindexSettings {
    pub conversations_batch_size: usize,
    pub process_scorecards_batch_size: usize,
}

impl Default for ReindexSettings {
    fn default() -> Self {
        ReindexSettings { conversations_batch_size: 1000, process_scorecards_batch_size: 1000 }
    }
}

/// Where an activity resumes: the phase and the last id done in it.
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

fn spec(payload: &serde_json::Value) -> Result<ReindexSpec, String> {
    serde_json::from_value(payload.clone()).map_err(|e| format!("not a reindex payload: {e}"))
}

impl JobHandler for ReindexHandler {
    fn activities(&self, payload: &serde_json::Value) -> Result<Vec<String>, String> {
        let spec = spec(payload)?;
        Ok(resolve_reindex_scope(&spec.scorecard_types).iter().map(|a| a.name().to_owned()).collect())
    }

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let spec = spec(&ctx.job().payload).map_err(|message| {
                RunError::Failed(JobError {
                    code: "invalid_payload".into(),
                    message,
                    retryable: false,
                    details: serde_json::Value::Null,
                })
            })?;
            for activity in resolve_reindex_scope(&spec.scorecard_types) {
                let progress = ctx.activity(activity.name());
                if progress.is_some_and(|p| p.finished) {
                    continue;
                }
                let resume = progress
                    .and_then(|p| p.checkpoint.clone())
                    .and_then(|c| serde_json::from_value::<Checkpoint>(c).ok());
                let run = ActivityRun { handler: self, ctx, spec: &spec, activity };
                run.execute(resume).await?;
            }
            Ok(())
        })
    }
}

/// One activity of one attempt.
struct ActivityRun<'a> {
    handler: &'a ReindexHandler,
    ctx: &'a JobContext,
    spec: &'a ReindexSpec,
    activity: ReindexActivity,
}

impl ActivityRun<'_> {
    fn by_update(&self) -> bool {
        self.spec.scope.window.is_some_and(|w| w.base == TimeBase::UpdatedAt)
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

    fn phases(&self) -> Vec<Phase> {
        match (self.activity, self.by_update()) {
            (ReindexActivity::Conversations, false) => vec![Phase::Conversations],
            (ReindexActivity::Conversations, true) => {
                vec![Phase::Conversations, Phase::Scorecards, Phase::Scores]
            }
            (ReindexActivity::ProcessScorecards, false) => vec![Phase::Scorecards],
            (ReindexActivity::ProcessScorecards, true) => vec![Phase::Scorecards, Phase::Scores],
        }
    }

    fn template_type(&self) -> TemplateType {
        match self.activity {
            ReindexActivity::Conversations => TemplateType::Conversation,
            ReindexActivity::ProcessScorecards => TemplateType::Process,
        }
    }

    async fn execute(&self, resume: Option<Checkpoint>) -> Result<(), RunError> {
        let name = self.activity.name();
        if self.ctx.activity(name).is_none_or(|p| p.rows_estimated == 0 && p.checkpoint.is_none()) {
            let estimate = self
                .handler
                .store
                .reindex_estimate(&self.spec.scope, self.activity)
                .await
                .map_err(|e| failure(e.into()))?;
            self.ctx.record_estimate(name, estimate).await?;
        }
        for phase in self.phases() {
            let mut after = match resume {
                Some(c) if c.phase == phase => c.after,
                Some(c) if c.phase > phase => continue,
                _ => 0,
            };
            loop {
                let started = Instant::now();
                let (batch, last) = self.read(phase, after).await.map_err(failure)?;
                let Some(last) = last else { break };
                self.handler
                    .analytics
                    .write(WritePath::Reindex, &batch)
                    .await
                    .map_err(|e| failure(e.into()))?;
                let checkpoint =
                    serde_json::to_value(Checkpoint { phase, after: last }).expect("a checkpoint serialises");
                // Only now, after ClickHouse acknowledged the batch.
                self.ctx.record_batch(name, batch.rows(), &checkpoint, started.elapsed()).await?;
                after = last;
            }
        }
        self.ctx.finish_activity(name, Duration::ZERO).await
    }

    /// The next page of `phase` after id `after`, and the id to resume after
    /// it (`None` when the phase is done).
    async fn read(&self, phase: Phase, after: i64) -> Result<(MirrorBatch, Option<i64>), SyncError> {
        let store = &self.handler.store;
        let scope = &self.spec.scope;
        let limit = self.batch_size();
        match phase {
            Phase::Conversations => {
                let conversations = store.reindex_conversations(scope, after, limit).await?;
                let last = conversations.last().map(|c| c.id.0);
                let mut batch = if self.by_update() {
                    MirrorBatch::default()
                } else {
                    let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
                    store.conversation_scorecards_mirror(&ids).await?
                };
                batch.conversations = conversations;
                Ok((batch, last))
            }
            Phase::Scorecards => {
                let time = if self.by_update() { ScorecardTime::UpdatedAt } else { ScorecardTime::CreatedAt };
                // With their scores: a score row carries its scorecard's
                // agent and deletion, so a changed scorecard changes them.
                Ok(store.reindex_scorecards(scope, self.template_type(), time, after, limit).await?)
            }
            Phase::Scores => {
                let scores = store.reindex_changed_scores(scope, self.template_type(), after, limit).await?;
                let last = scores.last().map(|s| s.id);
                Ok((MirrorBatch { scores, ..MirrorBatch::default() }, last))
            }
        }
    }
}

/// A failed batch as the job records it; whether another attempt may help
/// is decided by the one retry policy.
fn failure(error: SyncError) -> RunError {
    let retryable = matches!(retry::decide(&error, 1), RetryDecision::RetryLater(_));
    let code = match &error {
        SyncError::Store(_) => "postgres",
        SyncError::Analytics(_) => "clickhouse",
        SyncError::Invalid(_) => "invalid",
    };
    let message = scorekeeper_domain::report::error_chain(&error);
    RunError::Failed(JobError { code: code.into(), message, retryable, details: serde_json::Value::Null })
}
