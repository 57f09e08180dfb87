//! `ConversationService`: stores conversations with transcripts, and
//! BatchIndexConversations (the `batch_index` write path), which answers
//! only after ClickHouse acknowledged the rows.

use std::collections::HashSet;

use scorekeeper_domain::limits::{
    MAX_CONVERSATIONS_PER_UPSERT, MAX_IDS_PER_BATCH, MAX_MESSAGES_PER_UPSERT, MAX_UPSERT_TEXT_BYTES,
};
use scorekeeper_domain::{ConversationId, Invalid};
use scorekeeper_proto::v1::conversation_service_server::ConversationService;
use scorekeeper_proto::v1::*;
use scorekeeper_store::conversations::NewConversation;
use scorekeeper_store::mirror::ConversationSelector;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::{ApiError, ApiResult, respond};
use crate::server::ApiState;
use crate::validate::{self, Checked};

pub struct Conversations(pub ApiState);

/// Explicit ids, or a window, not both.
fn selector(r: &BatchIndexConversationsRequest) -> Checked<ConversationSelector> {
    let window = (&r.start_time, &r.end_time);
    match (r.conversation_ids.is_empty(), window) {
        (false, (None, None)) => {
            let ids = validate::conversation_ids("conversation_ids", &r.conversation_ids, MAX_IDS_PER_BATCH)?;
            Ok(ConversationSelector::Ids(ids))
        }
        (false, _) => {
            Err(Invalid::new("conversation_ids", "give either conversation_ids or a time window, not both"))
        }
        (true, (None, None)) => {
            Err(Invalid::new("conversation_ids", "give conversation_ids or start_time and end_time"))
        }
        (true, _) => {
            let start = validate::required_timestamp("start_time", &r.start_time)?;
            let end = validate::required_timestamp("end_time", &r.end_time)?;
            if end <= start {
                return Err(Invalid::new("end_time", "must be after start_time"));
            }
            Ok(ConversationSelector::StartedBetween { start, end })
        }
    }
}

/// The conversations an UpsertConversations asks for: at most
/// `MAX_CONVERSATIONS_PER_UPSERT`, with at most `MAX_MESSAGES_PER_UPSERT`
/// messages and `MAX_UPSERT_TEXT_BYTES` of text in all, external ids
/// unique within the request.
fn new_conversations(r: &UpsertConversationsRequest) -> Checked<Vec<NewConversation>> {
    validate::between("conversations", &r.conversations, MAX_CONVERSATIONS_PER_UPSERT)?;
    let messages: usize = r.conversations.iter().map(|c| c.messages.len()).sum();
    if messages > MAX_MESSAGES_PER_UPSERT {
        return Err(Invalid::new(
            "conversations",
            format!("{messages} messages in all; at most {MAX_MESSAGES_PER_UPSERT} per call"),
        ));
    }
    let text_bytes: usize = r.conversations.iter().flat_map(|c| &c.messages).map(|m| m.text.len()).sum();
    if text_bytes > MAX_UPSERT_TEXT_BYTES {
        return Err(Invalid::new(
            "conversations",
            format!("{text_bytes} bytes of message text in all; at most {MAX_UPSERT_TEXT_BYTES} per call"),
        ));
    }
    let mut seen = HashSet::new();
    r.conversations
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if !seen.insert(c.external_id.as_str()) {
                return Err(Invalid::new(
                    format!("conversations[{i}].external_id"),
                    "appears twice in the request",
                ));
            }
            convert::new_conversation(&format!("conversations[{i}]"), c)
        })
        .collect()
}

#[tonic::async_trait]
impl ConversationService for Conversations {
    async fn upsert_conversations(
        &self,
        request: Request<UpsertConversationsRequest>,
    ) -> Result<Response<UpsertConversationsResponse>, Status> {
        respond(upsert_conversations(&self.0, request)).await
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        respond(get_conversation(&self.0, request)).await
    }

    async fn batch_index_conversations(
        &self,
        request: Request<BatchIndexConversationsRequest>,
    ) -> Result<Response<BatchIndexConversationsResponse>, Status> {
        respond(batch_index_conversations(&self.0, request)).await
    }
}

async fn upsert_conversations(
    state: &ApiState,
    request: Request<UpsertConversationsRequest>,
) -> ApiResult<UpsertConversationsResponse> {
    let principal = state.auth.principal(&request).await?;
    let new = new_conversations(request.get_ref())?;
    let stored = state.store.upsert_conversations(principal.customer_id, &new).await?;
    Ok(UpsertConversationsResponse {
        conversations: stored.iter().map(convert::conversation_to_wire).collect(),
    })
}

async fn get_conversation(
    state: &ApiState,
    request: Request<GetConversationRequest>,
) -> ApiResult<GetConversationResponse> {
    let principal = state.auth.principal(&request).await?;
    let r = request.get_ref();
    let id = ConversationId(validate::id("id", r.id)?);
    let conversation = state
        .store
        .get_conversation(principal.customer_id, id, r.include_messages)
        .await?
        .ok_or(ApiError::NotFound { what: "conversation", id: id.to_string() })?;
    Ok(GetConversationResponse { conversation: Some(convert::conversation_to_wire(&conversation)) })
}

async fn batch_index_conversations(
    state: &ApiState,
    request: Request<BatchIndexConversationsRequest>,
) -> ApiResult<BatchIndexConversationsResponse> {
    let principal = state.auth.principal(&request).await?;
    let selector = selector(request.get_ref())?;
    let report = scorekeeper_sync::batch_index::batch_index(
        &state.store,
        &state.analytics,
        principal.customer_id,
        &selector,
    )
    .await?;
    Ok(BatchIndexConversationsResponse {
        conversations_indexed: report.conversations as i64,
        scorecards_indexed: report.scorecards as i64,
        scores_indexed: report.scores as i64,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use scorekeeper_domain::limits::{
        MAX_MESSAGES_PER_CONVERSATION, MAX_NAME_BYTES, MAX_TRANSCRIPT_TEXT_BYTES,
    };
    use scorekeeper_proto::{MAX_MESSAGE_BYTES, v1};

    use super::*;

    /// Every number at its longest encoding (negative int64s take 10 bytes).
    fn widest_time() -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds: 4_294_967_295, nanos: 999_999_999 })
    }

    /// A valid conversation of `messages` messages of `text_bytes` each,
    /// every other field as long as its encoding can be.
    fn widest_conversation(index: usize, messages: usize, text_bytes: usize) -> v1::Conversation {
        let name = |tag: &str| format!("{tag}{index:0>width$}", width = MAX_NAME_BYTES - tag.len());
        v1::Conversation {
            id: -1,
            customer_id: -1,
            external_id: name("e"),
            agent_id: name("a"),
            started_at: widest_time(),
            ended_at: widest_time(),
            messages: (0..messages)
                .map(|_| v1::Message { speaker: 2, text: "é".repeat(text_bytes / 2), offset_ms: i64::MAX })
                .collect(),
            version: -1,
            updated_at: widest_time(),
        }
    }

    #[test]
    fn the_largest_valid_requests_and_responses_fit_the_message_limit() {
        // Every conversation, message and byte of text a call may carry.
        let per_conversation = MAX_MESSAGES_PER_UPSERT / MAX_CONVERSATIONS_PER_UPSERT;
        let text = MAX_UPSERT_TEXT_BYTES / MAX_MESSAGES_PER_UPSERT;
        let request = UpsertConversationsRequest {
            conversations: (0..MAX_CONVERSATIONS_PER_UPSERT)
                .map(|i| widest_conversation(i, per_conversation, text))
                .collect(),
        };
        new_conversations(&request).expect("every limit reached, none passed");
        let encoded = request.encoded_len();
        eprintln!("the largest valid UpsertConversations: {encoded} bytes of {MAX_MESSAGE_BYTES}");
        assert!(encoded <= MAX_MESSAGE_BYTES, "{encoded} bytes");
        // One more message's worth of any of them is refused by a limit.
        let mut over = request;
        over.conversations[0].messages.push(v1::Message { speaker: 1, text: String::new(), offset_ms: 0 });
        assert_eq!(new_conversations(&over).unwrap_err().field, "conversations");

        // The largest transcript GetConversation may answer with.
        let widest = widest_conversation(0, MAX_MESSAGES_PER_CONVERSATION, MAX_TRANSCRIPT_TEXT_BYTES / 5000);
        let response = GetConversationResponse { conversation: Some(widest) };
        let encoded = response.encoded_len();
        eprintln!("the largest GetConversation answer: {encoded} bytes of {MAX_MESSAGE_BYTES}");
        assert!(encoded <= MAX_MESSAGE_BYTES, "{encoded} bytes");
    }
}
