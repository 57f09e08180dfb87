//! `coaching.ScorecardService`: templates and scorecards. Scorecard writes
//! commit with an outbox entry; ClickHouse is written after commit by the
//! dispatcher, so these calls never fail because ClickHouse is down.

use scorekeeper_domain::limits::{MAX_LINKED_CONVERSATIONS, MAX_NAME_BYTES};
use scorekeeper_domain::scorecard_write::{NewScorecard, ScorecardChange};
use scorekeeper_domain::{ConversationId, Invalid, ScorecardId, TemplateId};
use scorekeeper_proto::coaching::scorecard_service_server::ScorecardService;
use scorekeeper_proto::coaching::*;
use scorekeeper_store::outbox::OutboxOrigin;
use scorekeeper_store::scorecards::ScorecardFilter;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::{ApiError, ApiResult, respond};
use crate::server::ApiState;
use crate::validate::{self, Checked};

pub struct Scorecards(pub ApiState);

#[tonic::async_trait]
impl ScorecardService for Scorecards {
    async fn create_scorecard_template(
        &self,
        request: Request<CreateScorecardTemplateRequest>,
    ) -> Result<Response<CreateScorecardTemplateResponse>, Status> {
        respond(create_scorecard_template(&self.0, request)).await
    }

    async fn get_scorecard_template(
        &self,
        request: Request<GetScorecardTemplateRequest>,
    ) -> Result<Response<GetScorecardTemplateResponse>, Status> {
        respond(get_scorecard_template(&self.0, request)).await
    }

    async fn list_scorecard_templates(
        &self,
        request: Request<ListScorecardTemplatesRequest>,
    ) -> Result<Response<ListScorecardTemplatesResponse>, Status> {
        respond(list_scorecard_templates(&self.0, request)).await
    }

    async fn create_scorecard(
        &self,
        request: Request<CreateScorecardRequest>,
    ) -> Result<Response<CreateScorecardResponse>, Status> {
        respond(create_scorecard(&self.0, request)).await
    }

    async fn get_scorecard(
        &self,
        request: Request<GetScorecardRequest>,
    ) -> Result<Response<GetScorecardResponse>, Status> {
        respond(get_scorecard(&self.0, request)).await
    }

    async fn update_scorecard(
        &self,
        request: Request<UpdateScorecardRequest>,
    ) -> Result<Response<UpdateScorecardResponse>, Status> {
        respond(update_scorecard(&self.0, request)).await
    }

    async fn delete_scorecard(
        &self,
        request: Request<DeleteScorecardRequest>,
    ) -> Result<Response<DeleteScorecardResponse>, Status> {
        respond(delete_scorecard(&self.0, request)).await
    }

    async fn list_scorecards(
        &self,
        request: Request<ListScorecardsRequest>,
    ) -> Result<Response<ListScorecardsResponse>, Status> {
        respond(list_scorecards(&self.0, request)).await
    }
}

async fn create_scorecard_template(
    state: &ApiState,
    request: Request<CreateScorecardTemplateRequest>,
) -> ApiResult<CreateScorecardTemplateResponse> {
    let principal = state.auth.principal(&request).await?;
    let new = convert::new_template(request.get_ref())?;
    // Rules are admitted by AutoQA's cost model before they are stored.
    let rules = new.criteria.iter().enumerate().filter_map(|(i, c)| Some((i, c.rule.clone()?))).collect();
    state.autoqa.admit_rules(rules).await?;
    let template = state.store.create_template(principal.customer_id, &new).await?;
    Ok(CreateScorecardTemplateResponse { template: Some(convert::template_to_wire(&template)) })
}

async fn get_scorecard_template(
    state: &ApiState,
    request: Request<GetScorecardTemplateRequest>,
) -> ApiResult<GetScorecardTemplateResponse> {
    let principal = state.auth.principal(&request).await?;
    let id = TemplateId(validate::id("id", request.get_ref().id)?);
    let template = state
        .store
        .get_template(principal.customer_id, id)
        .await?
        .ok_or(ApiError::NotFound { what: "template", id: id.to_string() })?;
    Ok(GetScorecardTemplateResponse { template: Some(convert::template_to_wire(&template)) })
}

async fn list_scorecard_templates(
    state: &ApiState,
    request: Request<ListScorecardTemplatesRequest>,
) -> ApiResult<ListScorecardTemplatesResponse> {
    let principal = state.auth.principal(&request).await?;
    let r = request.get_ref();
    let (size, after) = validate::page(r.page_size, &r.page_token)?;
    let templates = state.store.list_templates(principal.customer_id, after.map(TemplateId), size).await?;
    Ok(ListScorecardTemplatesResponse {
        next_page_token: validate::next_page_token(templates.len(), size, templates.last().map(|t| t.id.0)),
        templates: templates.iter().map(convert::template_to_wire).collect(),
    })
}

async fn create_scorecard(
    state: &ApiState,
    request: Request<CreateScorecardRequest>,
) -> ApiResult<CreateScorecardResponse> {
    let principal = state.auth.principal(&request).await?;
    let new = new_scorecard(request.get_ref())?;
    let scorecard = state.store.create_scorecard(principal.customer_id, &new, OutboxOrigin::Api).await?;
    state.outbox.written();
    Ok(CreateScorecardResponse { scorecard: Some(convert::scorecard_to_wire(&scorecard)) })
}

async fn get_scorecard(
    state: &ApiState,
    request: Request<GetScorecardRequest>,
) -> ApiResult<GetScorecardResponse> {
    let principal = state.auth.principal(&request).await?;
    let id = ScorecardId(validate::id("id", request.get_ref().id)?);
    let scorecard = state
        .store
        .get_scorecard(principal.customer_id, id)
        .await?
        .ok_or(ApiError::NotFound { what: "scorecard", id: id.to_string() })?;
    Ok(GetScorecardResponse { scorecard: Some(convert::scorecard_to_wire(&scorecard)) })
}

async fn update_scorecard(
    state: &ApiState,
    request: Request<UpdateScorecardRequest>,
) -> ApiResult<UpdateScorecardResponse> {
    let principal = state.auth.principal(&request).await?;
    let (id, change) = scorecard_change(request.get_ref())?;
    let scorecard =
        state.store.update_scorecard(principal.customer_id, id, &change, OutboxOrigin::Api).await?;
    state.outbox.written();
    Ok(UpdateScorecardResponse { scorecard: Some(convert::scorecard_to_wire(&scorecard)) })
}

async fn delete_scorecard(
    state: &ApiState,
    request: Request<DeleteScorecardRequest>,
) -> ApiResult<DeleteScorecardResponse> {
    let principal = state.auth.principal(&request).await?;
    let id = ScorecardId(validate::id("id", request.get_ref().id)?);
    state.store.delete_scorecard(principal.customer_id, id, OutboxOrigin::Api).await?;
    state.outbox.written();
    Ok(DeleteScorecardResponse {})
}

async fn list_scorecards(
    state: &ApiState,
    request: Request<ListScorecardsRequest>,
) -> ApiResult<ListScorecardsResponse> {
    let principal = state.auth.principal(&request).await?;
    let r = request.get_ref();
    let (size, after) = validate::page(r.page_size, &r.page_token)?;
    let filter = ScorecardFilter {
        template_id: (r.template_id > 0).then_some(TemplateId(r.template_id)),
        conversation_id: (r.conversation_id > 0).then_some(ConversationId(r.conversation_id)),
    };
    let scorecards =
        state.store.list_scorecards(principal.customer_id, filter, after.map(ScorecardId), size).await?;
    Ok(ListScorecardsResponse {
        next_page_token: validate::next_page_token(scorecards.len(), size, scorecards.last().map(|s| s.id.0)),
        scorecards: scorecards.iter().map(convert::scorecard_to_wire).collect(),
    })
}

fn linked(ids: &[i64]) -> Checked<Vec<ConversationId>> {
    validate::conversation_ids("linked_conversation_ids", ids, MAX_LINKED_CONVERSATIONS)
}

/// The scorecard a CreateScorecard asks for, its fields checked in the
/// order that decides which error a bad request gets.
fn new_scorecard(r: &CreateScorecardRequest) -> Checked<NewScorecard> {
    let conversation_id = match r.conversation_id {
        0 => None,
        id => Some(ConversationId(validate::id("conversation_id", id)?)),
    };
    validate::optional_name("agent_id", &r.agent_id, MAX_NAME_BYTES)?;
    Ok(NewScorecard {
        template_id: TemplateId(validate::id("template_id", r.template_id)?),
        conversation_id,
        linked_conversation_ids: linked(&r.linked_conversation_ids)?,
        agent_id: r.agent_id.clone(),
        scores: convert::scores_from_wire("scores", &r.scores)?,
    })
}

/// The scorecard an UpdateScorecard names and the change it asks for,
/// checked in the order that decides which error a bad request gets.
fn scorecard_change(r: &UpdateScorecardRequest) -> Checked<(ScorecardId, ScorecardChange)> {
    validate::optional_name("agent_id", &r.agent_id, MAX_NAME_BYTES)?;
    if r.expected_version < 0 {
        return Err(Invalid::new("expected_version", "must not be negative"));
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
}
