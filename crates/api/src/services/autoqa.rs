//! `AutoQAService`: write path 3. Scorecards go to ClickHouse through the
//! outbox, so this call does not depend on ClickHouse either.

use scorekeeper_domain::TemplateId;
use scorekeeper_domain::limits::MAX_IDS_PER_BATCH;
use scorekeeper_proto::v1::auto_qa_service_server::AutoQaService;
use scorekeeper_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::server::ApiState;
use crate::validate;

pub struct AutoQa(pub ApiState);

#[tonic::async_trait]
impl AutoQaService for AutoQa {
    async fn autoscore_conversations(
        &self,
        request: Request<AutoscoreConversationsRequest>,
    ) -> Result<Response<AutoscoreConversationsResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let r = request.get_ref();
        let (template_id, ids) = (|| {
            let template_id = TemplateId(validate::id("template_id", r.template_id)?);
            validate::between("conversation_ids", &r.conversation_ids, MAX_IDS_PER_BATCH)?;
            let ids = validate::conversation_ids("conversation_ids", &r.conversation_ids, MAX_IDS_PER_BATCH)?;
            Ok::<_, scorekeeper_domain::Invalid>((template_id, ids))
        })()
        .map_err(ApiError::from)?;
        let results =
            scorekeeper_autoqa::autoscore(&self.0.store, principal.customer_id, template_id, &ids).await;
        // Some scorecards may have committed before a failure.
        self.0.outbox.written();
        let results = results.map_err(ApiError::from)?;
        Ok(Response::new(AutoscoreConversationsResponse {
            results: results
                .iter()
                .map(|r| AutoscoreResult {
                    conversation_id: r.conversation_id.0,
                    scorecard_id: r.scorecard_id.0,
                    total_score: r.total_score,
                    changed: r.changed,
                })
                .collect(),
        }))
    }
}
