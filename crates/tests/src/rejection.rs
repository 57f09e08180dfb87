//! Requests that must be refused: any RPC of the scorecard, conversation,
//! AutoQA and analytics services as a value ([`Call`]), how it must fail
//! ([`Expect`]), and [`assert_rejected`], which also proves it wrote
//! nothing.

use scorekeeper_proto::coaching as pb;
use scorekeeper_proto::v1;
use tonic::{Code, Status};

use crate::snapshot::Snapshot;
use crate::{Customer, TestEnv};

/// One RPC with its request, so tables of cases can hold calls to any
/// service.
#[derive(Clone, Debug)]
pub enum Call {
    CreateTemplate(pb::CreateScorecardTemplateRequest),
    GetTemplate(pb::GetScorecardTemplateRequest),
    ListTemplates(pb::ListScorecardTemplatesRequest),
    CreateScorecard(pb::CreateScorecardRequest),
    GetScorecard(pb::GetScorecardRequest),
    UpdateScorecard(pb::UpdateScorecardRequest),
    DeleteScorecard(pb::DeleteScorecardRequest),
    ListScorecards(pb::ListScorecardsRequest),
    Upsert(v1::UpsertConversationsRequest),
    GetConversation(v1::GetConversationRequest),
    BatchIndex(v1::BatchIndexConversationsRequest),
    Autoscore(v1::AutoscoreConversationsRequest),
    Stats(v1::GetScoreStatsRequest),
}

impl Call {
    /// Makes the call as `customer`, keeping only the status.
    pub async fn make(self, customer: &Customer) -> Result<(), Status> {
        match self {
            Call::CreateTemplate(r) => customer.scorecards().create_scorecard_template(r).await.map(drop),
            Call::GetTemplate(r) => customer.scorecards().get_scorecard_template(r).await.map(drop),
            Call::ListTemplates(r) => customer.scorecards().list_scorecard_templates(r).await.map(drop),
            Call::CreateScorecard(r) => customer.scorecards().create_scorecard(r).await.map(drop),
            Call::GetScorecard(r) => customer.scorecards().get_scorecard(r).await.map(drop),
            Call::UpdateScorecard(r) => customer.scorecards().update_scorecard(r).await.map(drop),
            Call::DeleteScorecard(r) => customer.scorecards().delete_scorecard(r).await.map(drop),
            Call::ListScorecards(r) => customer.scorecards().list_scorecards(r).await.map(drop),
            Call::Upsert(r) => customer.conversations().upsert_conversations(r).await.map(drop),
            Call::GetConversation(r) => customer.conversations().get_conversation(r).await.map(drop),
            Call::BatchIndex(r) => customer.conversations().batch_index_conversations(r).await.map(drop),
            Call::Autoscore(r) => customer.autoqa().autoscore_conversations(r).await.map(drop),
            Call::Stats(r) => customer.analytics().get_score_stats(r).await.map(drop),
        }
    }
}

/// How a case must fail.
#[derive(Clone, Debug)]
pub enum Expect {
    /// INVALID_ARGUMENT whose message names this field.
    Invalid(String),
    NotFound,
}

/// The field a status message names: messages are `field: reason`; empty
/// when the message names none.
pub fn named_field(status: &Status) -> &str {
    status.message().split_once(": ").map_or("", |(field, _)| field)
}

/// Makes `request` as `customer`, requires it to fail with `code` (and, for
/// INVALID_ARGUMENT, to name `field`), and requires that nothing changed
/// (see [`Snapshot`]; the outbox must be empty). Returns the status.
pub async fn assert_rejected(
    env: &TestEnv,
    customer: &Customer,
    name: &str,
    request: Call,
    expected: &Expect,
) -> Status {
    let before = Snapshot::take(env).await;
    let status = match request.make(customer).await {
        Ok(()) => panic!("{name}: accepted, expected {expected:?}"),
        Err(status) => status,
    };
    match expected {
        Expect::Invalid(field) => {
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{name}: wrong code (message {:?})",
                status.message()
            );
            assert_eq!(
                named_field(&status),
                field,
                "{name}: the message {:?} does not name the offending field",
                status.message()
            );
        }
        Expect::NotFound => {
            assert_eq!(status.code(), Code::NotFound, "{name}: wrong code (message {:?})", status.message());
            assert!(
                status.message().contains("not found"),
                "{name}: NOT_FOUND message {:?} does not say what was not found",
                status.message()
            );
        }
    }
    let after = Snapshot::take(env).await;
    assert!(after == before, "{name}: the rejected request wrote something: {}", after.diff(&before));
    status
}
