//! The reader side of a reindex activity: its phases page by page after a
//! checkpoint, in keyset order, each page completed (scorecards, scores) on
//! connections of its own while the writer writes the pages before it.

use std::collections::VecDeque;

use scorekeeper_domain::ConversationId;
use scorekeeper_domain::mirror::{ConversationRecord, MirrorBatch, ScoreRecord, ScorecardRecord};
use scorekeeper_domain::reindex::{KeyRange, ReindexActivity, ReindexSpec};
use scorekeeper_store::Store;
use scorekeeper_store::reindex::ScorecardTime;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::{Checkpoint, Phase};
use crate::error::SyncError;

/// Pages whose scorecards and scores are read at once (see `PageReader::run`).
const PARALLEL_READS: usize = 2;

/// A page of one phase and the id to resume after it.
pub(super) struct Page {
    pub(super) phase: Phase,
    pub(super) batch: MirrorBatch,
    pub(super) last: i64,
}

/// Reads an activity's phases page by page from a checkpoint, within the
/// keys of one partition; owns what it needs, so that it runs as a task
/// beside the writer.
pub(super) struct PageReader {
    pub(super) store: Store,
    pub(super) spec: ReindexSpec,
    pub(super) activity: ReindexActivity,
    pub(super) by_update: bool,
    pub(super) limit: usize,
    /// The partition's keys. Every phase reads within them: an activity of
    /// several phases (by update) is never split, and has all keys.
    pub(super) keys: KeyRange,
}

impl PageReader {
    fn phases(&self) -> &'static [Phase] {
        match (self.activity, self.by_update) {
            (ReindexActivity::Conversations, false) => &[Phase::Conversations],
            (ReindexActivity::Conversations, true) => {
                &[Phase::Conversations, Phase::Scorecards, Phase::Scores]
            }
            (ReindexActivity::ProcessScorecards, false) => &[Phase::Scorecards],
            (ReindexActivity::ProcessScorecards, true) => &[Phase::Scorecards, Phase::Scores],
        }
    }

    /// Sends every page after `resume`, in order, then ends; on an error
    /// sends it and ends. Ends early when the writer has gone.
    ///
    /// A page starts with its head (conversations, scorecards or scores
    /// after the checkpoint, by keyset), read in order; the rest of a page
    /// (scorecards and scores) is read for several pages at once on
    /// connections of their own, and pages still leave in order.
    pub(super) async fn run(self, resume: Option<Checkpoint>, pages: mpsc::Sender<Result<Page, SyncError>>) {
        for &phase in self.phases() {
            let mut after = match resume {
                Some(c) if c.phase == phase => c.after.max(self.keys.after),
                Some(c) if c.phase > phase => continue,
                _ => self.keys.after,
            };
            let mut in_flight = VecDeque::new();
            let (mut more, mut failed) = (true, None);
            while more || !in_flight.is_empty() {
                while more && in_flight.len() < PARALLEL_READS {
                    match self.head(phase, after).await {
                        Ok(head) => match head.last() {
                            Some(last) => {
                                after = last;
                                let rest = complete(self.store.clone(), self.by_update, phase, head, last);
                                in_flight.push_back(AbortOnDropHandle::new(tokio::spawn(rest)));
                            }
                            None => more = false,
                        },
                        Err(error) => (more, failed) = (false, Some(error)),
                    }
                }
                let Some(next) = in_flight.pop_front() else { break };
                let page = next.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                let page_failed = page.is_err();
                if pages.send(page).await.is_err() || page_failed {
                    return;
                }
            }
            if let Some(error) = failed {
                let _ = pages.send(Err(error)).await;
                return;
            }
        }
    }

    /// The head of the page of `phase` after id `after`.
    async fn head(&self, phase: Phase, after: i64) -> Result<Head, SyncError> {
        let (store, scope, limit) = (&self.store, &self.spec.scope, self.limit);
        let keys = KeyRange { after, until: self.keys.until };
        Ok(match phase {
            Phase::Conversations => {
                Head::Conversations(store.conversations_in_scope(scope, keys, limit).await?)
            }
            Phase::Scorecards => {
                let time = if self.by_update { ScorecardTime::UpdatedAt } else { ScorecardTime::CreatedAt };
                Head::Scorecards(
                    store.reindex_scorecards(scope, self.activity.template_type(), time, keys, limit).await?,
                )
            }
            Phase::Scores => Head::Scores(
                store.reindex_changed_scores(scope, self.activity.template_type(), after, limit).await?,
            ),
        })
    }
}

/// The whole page of a head: a conversation's conversation scorecards
/// (unless by update, where they have a pass of their own), and a
/// scorecard's scores (a score row carries its scorecard's agent and
/// deletion, so a changed scorecard changes them).
async fn complete(
    store: Store,
    by_update: bool,
    phase: Phase,
    head: Head,
    last: i64,
) -> Result<Page, SyncError> {
    let batch = match head {
        Head::Conversations(conversations) if by_update => {
            MirrorBatch { conversations, ..MirrorBatch::default() }
        }
        Head::Conversations(conversations) => {
            let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
            MirrorBatch { conversations, ..store.conversation_scorecards_mirror(&ids).await? }
        }
        Head::Scorecards(scorecards) => {
            let scores = store.scores_of(&scorecards).await?;
            MirrorBatch { conversations: Vec::new(), scorecards, scores }
        }
        Head::Scores(scores) => MirrorBatch { scores, ..MirrorBatch::default() },
    };
    Ok(Page { phase, batch, last })
}

/// The first rows of a page, by keyset.
enum Head {
    Conversations(Vec<ConversationRecord>),
    Scorecards(Vec<ScorecardRecord>),
    Scores(Vec<ScoreRecord>),
}

impl Head {
    /// The id to resume after, `None` for an empty head (the phase is done).
    fn last(&self) -> Option<i64> {
        match self {
            Head::Conversations(rows) => rows.last().map(|r| r.id.0),
            Head::Scorecards(rows) => rows.last().map(|r| r.id.0),
            Head::Scores(rows) => rows.last().map(|r| r.id),
        }
    }
}
