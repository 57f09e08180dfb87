//! Getting at the API: the operator step that creates the customer and its
//! token in Postgres, and the gRPC clients that carry that token.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{Context, anyhow};
use scorekeeper_domain::CustomerId;
use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::auto_qa_service_client::AutoQaServiceClient;
use scorekeeper_proto::v1::conversation_service_client::ConversationServiceClient;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_store::Store;
use tonic::{Response, Status};

use super::section;
use scorekeeper_client::{Authed, BearerToken, ClientTls, channel};

// ---------------------------------------------------------------------------
// The gRPC clients, all carrying the customer's token.

pub(super) struct Api {
    pub(super) scorecards: ScorecardServiceClient<Authed>,
    pub(super) conversations: ConversationServiceClient<Authed>,
    pub(super) autoqa: AutoQaServiceClient<Authed>,
    pub(super) analytics: AnalyticsServiceClient<Authed>,
    pub(super) jobs: JobServiceClient<Authed>,
}

impl Api {
    pub(super) async fn connect(url: &str, tls: &ClientTls, token: &str) -> anyhow::Result<Api> {
        let bearer = BearerToken::new(token)?;
        // Generous per-call timeout: autoscoring a thousand transcripts on a
        // debug build takes a while, but a hung server should still end the
        // demo rather than leave it waiting forever.
        let channel = channel::connect_with(url, tls, Duration::from_secs(300))
            .await
            .context("is it running? scripts/demo starts one")?;
        let api = scorekeeper_client::Api::new(channel, bearer);
        Ok(Api {
            scorecards: api.scorecards(),
            conversations: api.conversations(),
            autoqa: api.autoqa(),
            analytics: api.analytics(),
            jobs: api.jobs(),
        })
    }
}

/// Turns a gRPC outcome into the response message or an error naming the
/// step and the status code and message (not tonic's long `Debug` form with
/// metadata and details).
pub(super) trait RpcOutcome<T> {
    fn during(self, step: impl Display) -> anyhow::Result<T>;
}

impl<T> RpcOutcome<T> for Result<Response<T>, Status> {
    fn during(self, step: impl Display) -> anyhow::Result<T> {
        self.map(Response::into_inner).map_err(|status| anyhow!("{step}: {}", describe(&status)))
    }
}

pub(super) fn describe(status: &Status) -> String {
    format!("gRPC status {:?}: {}", status.code(), status.message())
}

// ---------------------------------------------------------------------------
// Step 1: the operator creates the customer and its tokens.

/// What the operator made: the customer, its API token (what a client of
/// the customer holds) and an admin token (the operator's, for the console).
pub(super) struct Tenant {
    pub(super) customer_id: CustomerId,
    pub(super) token: String,
    pub(super) admin_token: String,
}

pub(super) async fn create_tenant(store: &Store, customer: &str) -> anyhow::Result<Tenant> {
    section("1. Operator: customer and API tokens");
    let customer_id = store.ensure_customer(customer).await.context("creating the customer in Postgres")?;
    let token =
        store.create_token(customer_id, false, "scorekeeper demo").await.context("creating the API token")?;
    // As `scorekeeper token create --admin` does: the same store call.
    let admin_token = store
        .create_token(customer_id, true, "scorekeeper demo (admin, console)")
        .await
        .context("creating the admin token")?;
    println!("customer {customer:?} has id {customer_id}   (what `scorekeeper customer create` does)");
    println!(
        "API token sk_…{} created   (what `scorekeeper token create` does; it prints the token once, the demo prints it again at the end)",
        token_tail(&token)
    );
    println!(
        "admin token sk_…{} created   (`scorekeeper token create --admin`: every customer, for the operator console)",
        token_tail(&admin_token)
    );
    println!("every call below sends `authorization: Bearer <token>`; the token decides the customer");
    Ok(Tenant { customer_id, token, admin_token })
}

/// The last characters of a token, enough to recognise it in a log.
fn token_tail(token: &str) -> &str {
    token.get(token.len().saturating_sub(6)..).unwrap_or("")
}
