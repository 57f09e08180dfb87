//! `ConversationService`: stores conversations with transcripts, and
//! BatchIndexConversations (the `batch_index` write path), which answers
//! only after ClickHouse acknowledged the rows.

use std::collections::HashSet;

use scorekeeper_domain::limits::{MAX_CONVERSATIONS_PER_UPSERT, MAX_IDS_PER_BATCH};
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
/// `MAX_CONVERSATIONS_PER_UPSERT`, external ids unique within the request.
fn new_conversations(r: &UpsertConversationsRequest) -> Checked<Vec<NewConversation>> {
    validate::between("conversations", &r.conversations, MAX_CONVERSATIONS_PER_UPSERT)?;
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
