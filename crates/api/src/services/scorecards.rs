//! `coaching.ScorecardService`: templates and scorecards. Scorecard writes
//! commit with an outbox entry; ClickHouse is written after commit by the
//! dispatcher, so these calls never fail because ClickHouse is down.

use scorekeeper_domain::limits::{MAX_LINKED_CONVERSATIONS, MAX_NAME_BYTES};
use scorekeeper_domain::{ConversationId, ScorecardId, TemplateId};
use scorekeeper_proto::coaching::scorecard_service_server::ScorecardService;
use scorekeeper_proto::coaching::*;
use scorekeeper_store::outbox::OutboxOrigin;
use scorekeeper_store::scorecards::{NewScorecard, ScorecardChange, ScorecardFilter};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::ApiError;
use crate::server::ApiState;
use crate::validate;

pub struct Scorecards(pub ApiState);

fn linked(ids: &[i64]) -> validate::Checked<Vec<ConversationId>> {
    validate::conversation_ids("linked_conversation_ids", ids, MAX_LINKED_CONVERSATIONS)
}

#[tonic::async_trait]
impl ScorecardService for Scorecards {
    async fn create_scorecard_template(
        &self,
        request: Request<CreateScorecardTemplateRequest>,
    ) -> Result<Response<CreateScorecardTemplateResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let new = convert::new_template(request.get_ref()).map_err(ApiError::from)?;
        let template =
            self.0.store.create_template(principal.customer_id, &new).await.map_err(ApiError::from)?;
        Ok(Response::new(CreateScorecardTemplateResponse {
            template: Some(convert::template_to_wire(&template)),
        }))
    }

    async fn get_scorecard_template(
        &self,
        request: Request<GetScorecardTemplateRequest>,
    ) -> Result<Response<GetScorecardTemplateResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let id = TemplateId(validate::id("id", request.get_ref().id).map_err(ApiError::from)?);
        let template = self
            .0
            .store
            .get_template(principal.customer_id, id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound { what: "template", id: id.to_string() })?;
        Ok(Response::new(GetScorecardTemplateResponse {
            template: Some(convert::template_to_wire(&template)),
        }))
    }

    async fn list_scorecard_templates(
        &self,
        request: Request<ListScorecardTemplatesRequest>,
    ) -> Result<Response<ListScorecardTemplatesResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let r = request.get_ref();
        let (size, after) = validate::page(r.page_size, &r.page_token).map_err(ApiError::from)?;
        let templates = self
            .0
            .store
            .list_templates(principal.customer_id, after.map(TemplateId), size)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(ListScorecardTemplatesResponse {
            next_page_token: validate::next_page_token(
                templates.len(),
                size,
                templates.last().map(|t| t.id.0),
            ),
            templates: templates.iter().map(convert::template_to_wire).collect(),
        }))
    }

    async fn create_scorecard(
        &self,
        request: Request<CreateScorecardRequest>,
    ) -> Result<Response<CreateScorecardResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let r = request.get_ref();
        let new = (|| {
            let conversation_id = match r.conversation_id {
                0 => None,
                id => Some(ConversationId(validate::id("conversation_id", id)?)),
            };
            validate::optional_name("agent_id", &r.agent_id, MAX_NAME_BYTES)?;
            Ok::<_, scorekeeper_domain::Invalid>(NewScorecard {
                template_id: TemplateId(validate::id("template_id", r.template_id)?),
                conversation_id,
                linked_conversation_ids: linked(&r.linked_conversation_ids)?,
                agent_id: r.agent_id.clone(),
                scores: convert::scores_from_wire("scores", &r.scores)?,
            })
        })()
        .map_err(ApiError::from)?;
        let scorecard = self
            .0
            .store
            .create_scorecard(principal.customer_id, &new, OutboxOrigin::Api)
            .await
            .map_err(ApiError::from)?;
        self.0.outbox.written();
        Ok(Response::new(CreateScorecardResponse { scorecard: Some(convert::scorecard_to_wire(&scorecard)) }))
    }

    async fn get_scorecard(
        &self,
        request: Request<GetScorecardRequest>,
    ) -> Result<Response<GetScorecardResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let id = ScorecardId(validate::id("id", request.get_ref().id).map_err(ApiError::from)?);
        let scorecard = self
            .0
            .store
            .get_scorecard(principal.customer_id, id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound { what: "scorecard", id: id.to_string() })?;
        Ok(Response::new(GetScorecardResponse { scorecard: Some(convert::scorecard_to_wire(&scorecard)) }))
    }

    async fn update_scorecard(
        &self,
        request: Request<UpdateScorecardRequest>,
    ) -> Result<Response<UpdateScorecardResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let r = request.get_ref();
        let (id, change) = (|| {
            validate::optional_name("agent_id", &r.agent_id, MAX_NAME_BYTES)?;
            if r.expected_version < 0 {
                return Err(scorekeeper_domain::Invalid::new("expected_version", "must not be negative"));
            }
            let links = linked(&r.linked_conversation_ids)?;
            Ok((
                ScorecardId(validate::id("id", r.id)?),
                ScorecardChange {
                    scores: convert::scores_from_wire("scores", &r.scores)?,
                    linked_conversation_ids: (!links.is_empty()).then_some(links),
                    agent_id: (!r.agent_id.is_empty()).then(|| r.agent_id.clone()),
                    expected_version: (r.expected_version != 0).then_some(r.expected_version),
                },
            ))
        })()
        .map_err(ApiError::from)?;
        let scorecard = self
            .0
            .store
            .update_scorecard(principal.customer_id, id, &change, OutboxOrigin::Api)
            .await
            .map_err(ApiError::from)?;
        self.0.outbox.written();
        Ok(Response::new(UpdateScorecardResponse { scorecard: Some(convert::scorecard_to_wire(&scorecard)) }))
    }

    async fn delete_scorecard(
        &self,
        request: Request<DeleteScorecardRequest>,
    ) -> Result<Response<DeleteScorecardResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let id = ScorecardId(validate::id("id", request.get_ref().id).map_err(ApiError::from)?);
        self.0
            .store
            .delete_scorecard(principal.customer_id, id, OutboxOrigin::Api)
            .await
            .map_err(ApiError::from)?;
        self.0.outbox.written();
        Ok(Response::new(DeleteScorecardResponse {}))
    }

    async fn list_scorecards(
        &self,
        request: Request<ListScorecardsRequest>,
    ) -> Result<Response<ListScorecardsResponse>, Status> {
        let principal = self.0.auth.principal(&request).await?;
        let r = request.get_ref();
        let (size, after) = validate::page(r.page_size, &r.page_token).map_err(ApiError::from)?;
        let filter = ScorecardFilter {
            template_id: (r.template_id > 0).then_some(TemplateId(r.template_id)),
            conversation_id: (r.conversation_id > 0).then_some(ConversationId(r.conversation_id)),
        };
        let scorecards = self
            .0
            .store
            .list_scorecards(principal.customer_id, filter, after.map(ScorecardId), size)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(ListScorecardsResponse {
            next_page_token: validate::next_page_token(
                scorecards.len(),
                size,
                scorecards.last().map(|s| s.id.0),
            ),
            scorecards: scorecards.iter().map(convert::scorecard_to_wire).collect(),
        }))
    }
}
