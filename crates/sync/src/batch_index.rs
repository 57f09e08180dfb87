//! BatchIndexConversations: conversations and their *conversation*
//! scorecards and scores, read from Postgres and written to ClickHouse.
//! Process scorecards never go out on this path (as in the system we
//! re-create); the outbox and reindex jobs carry them.

use scorekeeper_analytics::{Analytics, WritePath};
use scorekeeper_domain::reindex::{KeyRange, ReindexScope, TimeBase, TimeWindow};
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
    let Some(scope) = scope(customer_id, selector) else { return Ok(report) };
    let mut after = 0;
    loop {
        let conversations =
            store.conversations_in_scope(&scope, KeyRange { after, until: None }, PAGE_SIZE).await?;
        let Some(last) = conversations.last() else {
            break;
        };
        after = last.id.0;
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

/// The reindex scope of the same conversations, so that both paths read
/// them through one reader; `None` when the selector names none (an empty id
/// list means no conversation here, where in a scope it means all).
fn scope(customer_id: CustomerId, selector: &ConversationSelector) -> Option<ReindexScope> {
    let (window, conversation_ids) = match selector {
        ConversationSelector::Ids(ids) if ids.is_empty() => return None,
        ConversationSelector::Ids(ids) => (None, ids.clone()),
        &ConversationSelector::StartedBetween { start, end } => {
            (Some(TimeWindow { start, end, base: TimeBase::ConversationStart }), Vec::new())
        }
    };
    Some(ReindexScope { customer_id: Some(customer_id), window, conversation_ids })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    #[test]
    fn a_selector_becomes_the_scope_of_the_same_conversations() {
        let customer = CustomerId(7);
        assert_eq!(scope(customer, &ConversationSelector::Ids(Vec::new())), None, "no ids: nothing, not all");
        let ids = scope(customer, &ConversationSelector::Ids(vec![ConversationId(3)])).unwrap();
        assert_eq!(ids.customer_id, Some(customer));
        assert_eq!((ids.window, ids.conversation_ids), (None, vec![ConversationId(3)]));
        let (start, end) = (DateTime::<Utc>::UNIX_EPOCH, Utc::now());
        let window = scope(customer, &ConversationSelector::StartedBetween { start, end }).unwrap();
        assert_eq!(window.window, Some(TimeWindow { start, end, base: TimeBase::ConversationStart }));
        assert!(window.conversation_ids.is_empty() && !window.by_update());
    }
}
