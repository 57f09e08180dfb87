//! Tenancy and authentication: calls without a valid bearer token are
//! UNAUTHENTICATED on every service, and one customer can neither see nor
//! change another's templates, conversations and scorecards, by id, by list,
//! through analytics, indexing or AutoQA; nor learn anything of them from an
//! error message.

use std::collections::HashSet;
use std::time::Duration;

use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::v1;
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::auto_qa_service_client::AutoQaServiceClient;
use scorekeeper_proto::v1::conversation_service_client::ConversationServiceClient;
use scorekeeper_tests::fixtures::*;
use scorekeeper_tests::rejection::{Call, Expect, assert_rejected};
use scorekeeper_tests::snapshot::Snapshot;
use scorekeeper_tests::{Customer, TestEnv};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const DRAIN: Duration = Duration::from_secs(20);

/// Sets `authorization` to a fixed value, or leaves it out.
#[derive(Clone)]
struct Header(Option<String>);

impl tonic::service::Interceptor for Header {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.parse().expect("an ASCII header value"));
        }
        Ok(request)
    }
}

type WithHeader = InterceptedService<Channel, Header>;

/// One call on each service with `header` as the credentials, each with a
/// request that would otherwise be valid (or, for the write, invalid: auth
/// must come first).
async fn calls_with(channel: Channel, header: Header) -> Vec<(&'static str, Result<(), Status>)> {
    let mut scorecards: ScorecardServiceClient<WithHeader> =
        ScorecardServiceClient::with_interceptor(channel.clone(), header.clone());
    let mut conversations: ConversationServiceClient<WithHeader> =
        ConversationServiceClient::with_interceptor(channel.clone(), header.clone());
    let mut autoqa: AutoQaServiceClient<WithHeader> =
        AutoQaServiceClient::with_interceptor(channel.clone(), header.clone());
    let mut analytics: AnalyticsServiceClient<WithHeader> =
        AnalyticsServiceClient::with_interceptor(channel, header);
    vec![
        (
            "ListScorecardTemplates",
            scorecards.list_scorecard_templates(pb::ListScorecardTemplatesRequest::default()).await.map(drop),
        ),
        (
            "CreateScorecardTemplate (valid)",
            scorecards
                .create_scorecard_template(pb::CreateScorecardTemplateRequest {
                    name: "intruder".into(),
                    template_type: pb::ScorecardTemplateType::Conversation as i32,
                    criteria: vec![criterion("c", 1.0, 5.0)],
                })
                .await
                .map(drop),
        ),
        (
            "CreateScorecardTemplate (invalid)",
            scorecards
                .create_scorecard_template(pb::CreateScorecardTemplateRequest::default())
                .await
                .map(drop),
        ),
        (
            "UpsertConversations",
            conversations
                .upsert_conversations(v1::UpsertConversationsRequest {
                    conversations: vec![conversation("intruder", "agent-x", T0, &[])],
                })
                .await
                .map(drop),
        ),
        (
            "GetConversation",
            conversations
                .get_conversation(v1::GetConversationRequest { id: 1, include_messages: true })
                .await
                .map(drop),
        ),
        (
            "AutoscoreConversations",
            autoqa
                .autoscore_conversations(v1::AutoscoreConversationsRequest {
                    template_id: 1,
                    conversation_ids: vec![1],
                })
                .await
                .map(drop),
        ),
        (
            "GetScoreStats",
            analytics
                .get_score_stats(v1::GetScoreStatsRequest {
                    group_by: v1::StatsGroupBy::Agent as i32,
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
    ]
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let env = TestEnv::start().await;
    let customer = env.customer("acme").await;
    conversations(&customer, 1).await;
    conversation_template(&customer).await;
    let before = Snapshot::take(&env).await;

    let headers = [
        ("no authorization", Header(None)),
        ("an unknown token", Header(Some(format!("Bearer sk_{}", "0".repeat(64))))),
        ("another scheme", Header(Some("Basic x".into()))),
        ("an empty bearer token", Header(Some("Bearer ".into()))),
        ("the right token without a scheme", Header(Some(customer.token.clone()))),
    ];
    for (what, header) in headers {
        for (rpc, result) in calls_with(env.channel(), header).await {
            let status = result.err().unwrap_or_else(|| panic!("{rpc} with {what}: accepted"));
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{rpc} with {what}: wrong code (message {:?})",
                status.message()
            );
        }
    }
    let after = Snapshot::take(&env).await;
    assert!(after == before, "unauthenticated calls wrote something: {}", after.diff(&before));

    // Control: the same calls with the customer's real token get past
    // authentication.
    let valid = Header(Some(format!("Bearer {}", customer.token)));
    for (rpc, result) in calls_with(env.channel(), valid).await {
        if let Err(status) = result {
            assert_ne!(status.code(), Code::Unauthenticated, "{rpc} with a valid token: {status:?}");
        }
    }
}

/// A customer's data, with names that appear nowhere else so an error
/// message that leaks them can be caught.
struct Tenant {
    customer: Customer,
    conv_template: pb::ScorecardTemplate,
    proc_template: pb::ScorecardTemplate,
    rule_template: pb::ScorecardTemplate,
    conversations: Vec<v1::Conversation>,
    scorecard: pb::Scorecard,
    process_scorecard: pb::Scorecard,
    /// Agent ids, external ids and template names: nothing another
    /// customer may ever be shown.
    secrets: Vec<String>,
}

impl Tenant {
    async fn build(env: &TestEnv, name: &str) -> Tenant {
        let customer = env.customer(name).await;
        let named = |mut t: pb::CreateScorecardTemplateRequest, what: &str| {
            t.name = format!("{name}-{what}-template");
            t
        };
        let mut api = customer.scorecards();
        let mut create_template = async |request| {
            api.create_scorecard_template(request)
                .await
                .expect("creating a template")
                .into_inner()
                .template
                .expect("a template")
        };
        let conv_template = create_template(named(
            pb::CreateScorecardTemplateRequest {
                template_type: pb::ScorecardTemplateType::Conversation as i32,
                criteria: vec![criterion("greeting", 1.0, 5.0)],
                ..Default::default()
            },
            "conversation",
        ))
        .await;
        let proc_template = create_template(named(
            pb::CreateScorecardTemplateRequest {
                template_type: pb::ScorecardTemplateType::Process as i32,
                criteria: vec![criterion("follow-up", 1.0, 4.0)],
                ..Default::default()
            },
            "process",
        ))
        .await;
        let rule_template = create_template(named(
            pb::CreateScorecardTemplateRequest {
                template_type: pb::ScorecardTemplateType::Conversation as i32,
                criteria: vec![rule_criterion("thanks", auto_qa_rule::Kind::Present, "thank you")],
                ..Default::default()
            },
            "rule",
        ))
        .await;
        let conversations = customer
            .conversations()
            .upsert_conversations(v1::UpsertConversationsRequest {
                conversations: (0..2)
                    .map(|i| {
                        conversation(
                            &format!("{name}-external-{i}"),
                            &format!("{name}-agent-{i}"),
                            T0 + i * 60,
                            &[(v1::Speaker::Agent, "Thank you for calling")],
                        )
                    })
                    .collect(),
            })
            .await
            .expect("upserting conversations")
            .into_inner()
            .conversations;
        let scorecard =
            create_scorecard(&customer, conversation_scorecard(&conv_template, conversations[0].id, &[4.0]))
                .await;
        let process_scorecard = create_scorecard(
            &customer,
            process_scorecard(
                &proc_template,
                format!("{name}-process-agent"),
                vec![conversations[1].id],
                &[3.0],
            ),
        )
        .await;
        let mut secrets = vec![format!("{name}-process-agent")];
        for c in &conversations {
            secrets.push(c.external_id.clone());
            secrets.push(c.agent_id.clone());
        }
        for t in [&conv_template, &proc_template, &rule_template] {
            secrets.push(t.name.clone());
        }
        Tenant {
            customer,
            conv_template,
            proc_template,
            rule_template,
            conversations,
            scorecard,
            process_scorecard,
            secrets,
        }
    }

    fn conversation_ids(&self) -> Vec<i64> {
        self.conversations.iter().map(|c| c.id).collect()
    }

    fn scorecard_ids(&self) -> HashSet<i64> {
        HashSet::from([self.scorecard.id, self.process_scorecard.id])
    }

    fn template_ids(&self) -> HashSet<i64> {
        [&self.conv_template, &self.proc_template, &self.rule_template].iter().map(|t| t.id).collect()
    }

    /// What the tenant itself reads back of its scorecards and conversations.
    async fn state(&self) -> (Vec<pb::Scorecard>, Vec<v1::Conversation>) {
        let mut scorecards = Vec::new();
        for id in [self.scorecard.id, self.process_scorecard.id] {
            scorecards.push(
                self.customer
                    .scorecards()
                    .get_scorecard(pb::GetScorecardRequest { id })
                    .await
                    .expect("the owner reads its scorecard")
                    .into_inner()
                    .scorecard
                    .expect("a scorecard"),
            );
        }
        let mut conversations = Vec::new();
        for id in self.conversation_ids() {
            conversations.push(
                self.customer
                    .conversations()
                    .get_conversation(v1::GetConversationRequest { id, include_messages: true })
                    .await
                    .expect("the owner reads its conversation")
                    .into_inner()
                    .conversation
                    .expect("a conversation"),
            );
        }
        (scorecards, conversations)
    }
}

/// `intruder` makes `request`, which must fail as `expected`, write nothing
/// and leak none of `victim`'s secrets in its message.
async fn assert_refused(
    env: &TestEnv,
    intruder: &Tenant,
    victim: &Tenant,
    name: &str,
    request: Call,
    expected: Expect,
    reason: &str,
) {
    let status = assert_rejected(env, &intruder.customer, name, request, &expected).await;
    assert!(
        status.message().contains(reason),
        "{name}: message {:?} does not say {reason:?}",
        status.message()
    );
    for secret in &victim.secrets {
        assert!(
            !status.message().contains(secret.as_str()),
            "{name}: message {:?} leaks the other customer's {secret:?}",
            status.message()
        );
    }
}

#[tokio::test]
async fn customers_cannot_see_or_change_each_others_data() {
    let env = TestEnv::start().await;
    let a = Tenant::build(&env, "alpha").await;
    let b = Tenant::build(&env, "bravo").await;
    env.outbox_drained(DRAIN).await.unwrap();
    let a_before = a.state().await;

    // By id: NOT_FOUND, as if A's rows did not exist.
    let not_found = [
        ("B gets A's scorecard", Call::GetScorecard(pb::GetScorecardRequest { id: a.scorecard.id })),
        (
            "B gets A's process scorecard",
            Call::GetScorecard(pb::GetScorecardRequest { id: a.process_scorecard.id }),
        ),
        (
            "B updates A's scorecard",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: a.scorecard.id,
                scores: scores(&a.conv_template, &[0.0]),
                ..Default::default()
            }),
        ),
        (
            "B updates A's process scorecard",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: a.process_scorecard.id,
                scores: scores(&a.proc_template, &[0.0]),
                agent_id: "bravo-agent-0".into(),
                ..Default::default()
            }),
        ),
        ("B deletes A's scorecard", Call::DeleteScorecard(pb::DeleteScorecardRequest { id: a.scorecard.id })),
        (
            "B gets A's template",
            Call::GetTemplate(pb::GetScorecardTemplateRequest { id: a.conv_template.id }),
        ),
        (
            "B gets A's conversation",
            Call::GetConversation(v1::GetConversationRequest {
                id: a.conversations[0].id,
                include_messages: true,
            }),
        ),
    ];
    for (name, request) in not_found {
        assert_refused(&env, &b, &a, name, request, Expect::NotFound, "not found").await;
    }

    // A's ids inside B's requests: unknown, as any id that does not exist.
    let invalid = [
        (
            "B scores with A's template",
            Call::CreateScorecard(conversation_scorecard(&a.conv_template, b.conversations[0].id, &[1.0])),
            "template_id",
            "unknown template",
        ),
        (
            "B scores A's conversation",
            Call::CreateScorecard(conversation_scorecard(&b.conv_template, a.conversations[0].id, &[1.0])),
            "conversation_id",
            "unknown conversation",
        ),
        (
            "B links A's conversation to a new process scorecard",
            Call::CreateScorecard(process_scorecard(
                &b.proc_template,
                "bravo-agent-0",
                vec![b.conversations[0].id, a.conversations[1].id],
                &[1.0],
            )),
            "linked_conversation_ids[1]",
            "unknown conversation",
        ),
        (
            "B links A's conversation to its own process scorecard",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: b.process_scorecard.id,
                scores: scores(&b.proc_template, &[1.0]),
                linked_conversation_ids: vec![a.conversations[0].id],
                ..Default::default()
            }),
            "linked_conversation_ids[0]",
            "unknown conversation",
        ),
        (
            "B scores its own scorecard with A's criterion",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: b.scorecard.id,
                scores: scores(&a.conv_template, &[1.0]),
                ..Default::default()
            }),
            "scores[0].criterion_id",
            "is not on template",
        ),
        (
            "B autoscores A's conversation",
            Call::Autoscore(v1::AutoscoreConversationsRequest {
                template_id: b.rule_template.id,
                conversation_ids: vec![a.conversations[0].id],
            }),
            "conversation_ids[0]",
            "unknown conversation",
        ),
        (
            "B autoscores with A's template",
            Call::Autoscore(v1::AutoscoreConversationsRequest {
                template_id: a.rule_template.id,
                conversation_ids: vec![b.conversations[0].id],
            }),
            "template_id",
            "unknown template",
        ),
    ];
    for (name, request, field, reason) in invalid {
        let expected = Expect::Invalid(field.into());
        assert_refused(&env, &b, &a, name, request, expected, reason).await;
    }

    // Lists: only B's own rows, also when filtering by A's ids.
    let mut scorecards = b.customer.scorecards();
    let listed = scorecards
        .list_scorecards(pb::ListScorecardsRequest::default())
        .await
        .expect("B lists its scorecards")
        .into_inner()
        .scorecards;
    let listed_ids: HashSet<i64> = listed.iter().map(|s| s.id).collect();
    assert_eq!(listed_ids, b.scorecard_ids(), "B's scorecard list");
    for filter in [
        pb::ListScorecardsRequest { template_id: a.conv_template.id, ..Default::default() },
        pb::ListScorecardsRequest { conversation_id: a.conversations[0].id, ..Default::default() },
    ] {
        let listed = scorecards
            .list_scorecards(filter.clone())
            .await
            .expect("B lists with a filter")
            .into_inner()
            .scorecards;
        assert!(listed.is_empty(), "B filtering by A's ids ({filter:?}) lists {listed:?}");
    }
    let templates = scorecards
        .list_scorecard_templates(pb::ListScorecardTemplatesRequest::default())
        .await
        .expect("B lists its templates")
        .into_inner()
        .templates;
    let template_ids: HashSet<i64> = templates.iter().map(|t| t.id).collect();
    assert_eq!(template_ids, b.template_ids(), "B's template list");

    // Indexing: A's conversation ids index nothing for B; B's window
    // indexes B's conversations only.
    let mut indexing = b.customer.conversations();
    let report = indexing
        .batch_index_conversations(v1::BatchIndexConversationsRequest {
            conversation_ids: a.conversation_ids(),
            ..Default::default()
        })
        .await
        .expect("B indexes by id")
        .into_inner();
    assert_eq!(
        (report.conversations_indexed, report.scorecards_indexed, report.scores_indexed),
        (0, 0, 0),
        "B indexing A's conversation ids"
    );
    let report = indexing
        .batch_index_conversations(v1::BatchIndexConversationsRequest {
            start_time: ts(0),
            end_time: ts(T0 + 86_400 * 365),
            ..Default::default()
        })
        .await
        .expect("B indexes a window")
        .into_inner();
    assert_eq!(
        report.conversations_indexed,
        b.conversations.len() as i64,
        "B indexing a window holding everyone's conversations"
    );
    let indexed_customers: HashSet<i64> =
        env.clickhouse_conversations().await.iter().map(|c| c.customer_id).collect();
    assert_eq!(
        indexed_customers,
        HashSet::from([b.customer.id.0]),
        "customers whose conversations reached ClickHouse"
    );

    // Analytics: B's stats hold B's agents and templates, never A's.
    env.outbox_drained(DRAIN).await.unwrap();
    let mut analytics = b.customer.analytics();
    for (group_by, own) in [
        (
            v1::StatsGroupBy::Agent,
            HashSet::from(["bravo-agent-0".to_owned(), "bravo-process-agent".to_owned()]),
        ),
        (
            v1::StatsGroupBy::Template,
            HashSet::from([b.conv_template.id.to_string(), b.proc_template.id.to_string()]),
        ),
    ] {
        let rows = analytics
            .get_score_stats(v1::GetScoreStatsRequest { group_by: group_by as i32, ..Default::default() })
            .await
            .expect("B's stats")
            .into_inner()
            .rows;
        let keys: HashSet<String> = rows.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys, own, "B's stats by {group_by:?}: {rows:?}");
    }

    // Upserting an external id A uses makes B's own conversation.
    let mine = b
        .customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest {
            conversations: vec![conversation(&a.conversations[0].external_id, "bravo-agent-9", T0, &[])],
        })
        .await
        .expect("B upserts an external id A also uses")
        .into_inner()
        .conversations;
    assert_eq!(mine.len(), 1);
    assert_ne!(mine[0].id, a.conversations[0].id, "B's upsert took over A's conversation");
    assert_eq!(mine[0].customer_id, b.customer.id.0);

    // A's data is unchanged, in Postgres and in ClickHouse.
    assert_eq!(a.state().await, a_before, "A's scorecards or conversations changed");
    env.outbox_drained(DRAIN).await.unwrap();
    env.assert_scorecards_mirrored().await;
    let a_in_clickhouse: HashSet<i64> = env
        .clickhouse_scorecards()
        .await
        .iter()
        .filter(|s| s.customer_id == a.customer.id.0)
        .map(|s| s.id)
        .collect();
    assert_eq!(a_in_clickhouse, a.scorecard_ids(), "A's live scorecards in ClickHouse");
}
