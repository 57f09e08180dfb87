//! `AutoQAService`: the `autoqa` write path. Scorecards go to ClickHouse
//! through the outbox, so this call does not depend on ClickHouse either.

use scorekeeper_domain::limits::MAX_IDS_PER_BATCH;
use scorekeeper_domain::{ConversationId, TemplateId};
use scorekeeper_proto::v1::auto_qa_service_server::AutoQaService;
use scorekeeper_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::deadline::client_deadline;
use crate::error::{ApiResult, respond};
use crate::server::ApiState;
use crate::validate::{self, Checked};

pub struct AutoQa(pub ApiState);

#[tonic::async_trait]
impl AutoQaService for AutoQa {
    async fn autoscore_conversations(
        &self,
        request: Request<AutoscoreConversationsRequest>,
    ) -> Result<Response<AutoscoreConversationsResponse>, Status> {
        respond(autoscore_conversations(&self.0, request)).await
    }
}

/// The template and the conversations an AutoscoreConversations names.
fn autoscore_request(r: &AutoscoreConversationsRequest) -> Checked<(TemplateId, Vec<ConversationId>)> {
    let template_id = TemplateId(validate::id("template_id", r.template_id)?);
    validate::between("conversation_ids", &r.conversation_ids, MAX_IDS_PER_BATCH)?;
    let ids = validate::conversation_ids("conversation_ids", &r.conversation_ids, MAX_IDS_PER_BATCH)?;
    Ok((template_id, ids))
}

async fn autoscore_conversations(
    state: &ApiState,
    request: Request<AutoscoreConversationsRequest>,
) -> ApiResult<AutoscoreConversationsResponse> {
    let principal = state.auth.principal(&request).await?;
    let (template_id, ids) = autoscore_request(request.get_ref())?;
    let deadline = client_deadline(request.metadata());
    let results = state.autoqa.autoscore(principal.customer_id, template_id, &ids, deadline).await;
    // Some scorecards may have committed before a failure.
    state.outbox.written();
    Ok(AutoscoreConversationsResponse {
        results: results?
            .iter()
            .map(|r| AutoscoreResult {
                conversation_id: r.conversation_id.0,
                scorecard_id: r.scorecard_id.0,
                total_score: r.total_score,
                changed: r.changed,
            })
            .collect(),
    })
}
