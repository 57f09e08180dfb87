//! BatchIndexConversations: conversations and their *conversation*
//! scorecards and scores, read from Postgres and written to ClickHouse.
//! Process scorecards never go out on this path (as in the system we
//! re-create); the outbox and reindex jobs carry them.

use scorekeeper_analytics::{Analytics, WritePath};
use scorekeeper_domain::{ConversationId, CustomerId};
use scorekeeper_store::Store;
use scorekeeper_store::mirror::ConversationSelector;

use crate::error::Result;

/// Conversations read and written per round trip; bounds memory whatever the
/// window.
pub const PAGE_SIZE: usize = 1000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchIndexReport {
    pub conversations: usize,
    pub scorecards: usize,
    pub scores: usize,
}

/// Indexes the customer's conversations in `selector`, page by page in id
/// order. Returns once ClickHouse acknowledged every page.
pub async fn batch_index(
    store: &Store,
    analytics: &Analytics,
    customer_id: CustomerId,
    selector: &ConversationSelector,
) -> Result<BatchIndexReport> {
    let mut report = BatchIndexReport::default();
    let mut after = ConversationId(0);
    loop {
        let conversations = store.conversation_page(customer_id, selector, after, PAGE_SIZE).await?;
        let Some(last) = conversations.last() else {
            break;
        };
        after = last.id;
        let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
        let mut batch = store.conversation_scorecards_mirror(&ids).await?;
        batch.conversations = conversations;
        let written = analytics.write(WritePath::BatchIndex, &batch).await?;
        report.conversations += written.conversations;
        report.scorecards += written.scorecards;
        report.scores += written.scores;
        if ids.len() < PAGE_SIZE {
            break;
        }
    }
    Ok(report)
}
