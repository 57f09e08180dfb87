//! The API's calls for a caller who authenticated another way: the console
//! (`scorekeeper-console`) logs a person in with an API token, then acts as
//! that token's principal. The gRPC services' own functions run here, so
//! what the console refuses, and with which code, is what the API refuses.

use std::net::IpAddr;

use scorekeeper_proto::v1::{
    CancelJobRequest, CreateJobRequest, GetJobRequest, Job, ListJobsRequest, ListJobsResponse,
};
use scorekeeper_store::Store;
use scorekeeper_store::console::StoredAudit;
use scorekeeper_store::tenants::{Principal, TokenId};

use crate::error::{ApiError, ApiResult};
use crate::server::ApiState;
use crate::services::jobs;

/// Stored audits a list answers.
const AUDITS_LISTED: i64 = 50;

/// The calls, on the state the gRPC services share. Cheap to clone.
#[derive(Clone)]
pub struct Calls(ApiState);

impl Calls {
    pub fn new(state: ApiState) -> Calls {
        Calls(state)
    }

    /// Postgres, for what the console keeps there (its sessions).
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Checks a token presented from `peer` as every call's token is
    /// checked: the same refusals, counted and throttled the same.
    pub async fn check_token(&self, token: &str, peer: Option<IpAddr>) -> ApiResult<(TokenId, Principal)> {
        self.0.auth.check_token(token, peer).await
    }

    pub async fn create_job(&self, principal: Principal, request: &CreateJobRequest) -> ApiResult<Job> {
        let created = jobs::create_job(&self.0, principal, request).await?;
        Ok(created.job.expect("a created job is answered"))
    }

    pub async fn get_job(&self, principal: Principal, id: &str) -> ApiResult<Job> {
        let found = jobs::get_job(&self.0, principal, &GetJobRequest { id: id.to_owned() }).await?;
        Ok(found.job.expect("a found job is answered"))
    }

    pub async fn list_jobs(
        &self,
        principal: Principal,
        request: &ListJobsRequest,
    ) -> ApiResult<ListJobsResponse> {
        jobs::list_jobs(&self.0, principal, request).await
    }

    pub async fn cancel_job(&self, principal: Principal, id: &str) -> ApiResult<Job> {
        let cancelled = jobs::cancel_job(&self.0, principal, &CancelJobRequest { id: id.to_owned() }).await?;
        Ok(cancelled.job.expect("a cancelled job is answered"))
    }

    /// The newest stored audits `principal` may see: a customer token its
    /// own customer's (asking for another's is refused, as ListJobs
    /// refuses it); an admin token every audit, or `customer_id`'s when
    /// it is not 0.
    pub async fn recent_audits(&self, principal: Principal, customer_id: i64) -> ApiResult<Vec<StoredAudit>> {
        let customer = jobs::listed_customer(principal, customer_id, "audits")?;
        Ok(self.0.store.recent_audits(customer, AUDITS_LISTED).await?)
    }

    /// The stored audit `id`, if `principal` may see it (a customer token:
    /// its own customer's; another's is not found, as GetJob answers).
    pub async fn stored_audit(&self, principal: Principal, id: i64) -> ApiResult<StoredAudit> {
        self.0
            .store
            .stored_audit(id, jobs::visible_customer(principal))
            .await?
            .ok_or(ApiError::NotFound { what: "audit", id: id.to_string() })
    }
}
