//! Property 1: wild requests of every RPC.

use super::*;

fn rule() -> impl Strategy<Value = pb::AutoQaRule> {
    (enum_value(1..=2), enum_value(1..=2), text(MAX_PATTERN_BYTES), enum_value(0..=2), 0..10u32, 0..100u32)
        .prop_map(|(kind, pattern_type, pattern, speaker, messages, seconds)| pb::AutoQaRule {
            kind,
            pattern_type,
            pattern,
            speaker,
            within_first_messages: messages,
            within_first_seconds: seconds,
        })
}

fn wild_call(w: &World) -> impl Strategy<Value = AnyCall> + use<> {
    let (conversation_ids, template_ids, criterion_ids) =
        (w.conversation_ids(), w.template_ids(), w.criterion_ids());
    let scorecard_ids = vec![w.scorecard.id];
    let customer_id = w.customer.id.0;
    let criterion = (text(MAX_NAME_BYTES), number(), number(), number(), prop::option::weighted(0.3, rule()))
        .prop_map(|(name, weight, min_value, max_value, autoqa_rule)| pb::Criterion {
            name,
            weight,
            min_value,
            max_value,
            autoqa_rule,
            ..Default::default()
        });
    let template = (text(MAX_NAME_BYTES), enum_value(1..=2), vec(criterion, 0..3)).prop_map(
        |(name, template_type, criteria)| {
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { name, template_type, criteria })
        },
    );
    let scores = move || {
        vec((id(criterion_ids.clone()), number()), 0..3).prop_map(|s| {
            s.into_iter().map(|(criterion_id, value)| pb::Score { criterion_id, value }).collect()
        })
    };
    let create_scorecard = (
        id(template_ids.clone()),
        id(conversation_ids.clone()),
        ids(conversation_ids.clone()),
        text(MAX_NAME_BYTES),
        scores(),
    )
        .prop_map(|(template_id, conversation_id, linked_conversation_ids, agent_id, scores)| {
            Call::CreateScorecard(pb::CreateScorecardRequest {
                template_id,
                conversation_id,
                linked_conversation_ids,
                agent_id,
                scores,
            })
        });
    let update_scorecard = (
        id(scorecard_ids.clone()),
        scores(),
        ids(conversation_ids.clone()),
        text(MAX_NAME_BYTES),
        prop_oneof![Just(0i64), any::<i64>()],
    )
        .prop_map(|(id, scores, linked_conversation_ids, agent_id, expected_version)| {
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id,
                scores,
                linked_conversation_ids,
                agent_id,
                expected_version,
            })
        });
    let message = (enum_value(1..=2), text(MAX_MESSAGE_TEXT_BYTES), prop_oneof![0..100_000i64, any::<i64>()])
        .prop_map(|(speaker, text, offset_ms)| v1::Message { speaker, text, offset_ms });
    let conversation =
        (text(MAX_NAME_BYTES), text(MAX_NAME_BYTES), timestamp(), timestamp(), vec(message, 0..3)).prop_map(
            |(external_id, agent_id, started_at, ended_at, messages)| v1::Conversation {
                external_id,
                agent_id,
                started_at,
                ended_at,
                messages,
                ..Default::default()
            },
        );
    let upsert = vec(conversation, 0..3)
        .prop_map(|conversations| Call::Upsert(v1::UpsertConversationsRequest { conversations }));
    let page = || (prop_oneof![0..600i32, any::<i32>()], page_token());
    let api =
        prop_oneof![
            template,
            id(template_ids.clone()).prop_map(|id| Call::GetTemplate(pb::GetScorecardTemplateRequest { id })),
            page().prop_map(|(page_size, page_token)| Call::ListTemplates(
                pb::ListScorecardTemplatesRequest { page_size, page_token }
            )),
            create_scorecard,
            id(scorecard_ids.clone()).prop_map(|id| Call::GetScorecard(pb::GetScorecardRequest { id })),
            update_scorecard,
            id(scorecard_ids).prop_map(|id| Call::DeleteScorecard(pb::DeleteScorecardRequest { id })),
            (page(), id(template_ids.clone()), id(conversation_ids.clone())).prop_map(
                |((page_size, page_token), template_id, conversation_id)| Call::ListScorecards(
                    pb::ListScorecardsRequest { page_size, page_token, template_id, conversation_id }
                )
            ),
            upsert,
            (id(conversation_ids.clone()), any::<bool>()).prop_map(|(id, include_messages)| {
                Call::GetConversation(v1::GetConversationRequest { id, include_messages })
            }),
            (ids(conversation_ids.clone()), timestamp(), timestamp()).prop_map(
                |(conversation_ids, start_time, end_time)| Call::BatchIndex(
                    v1::BatchIndexConversationsRequest { conversation_ids, start_time, end_time }
                )
            ),
            (id(template_ids), ids(conversation_ids.clone())).prop_map(|(template_id, conversation_ids)| {
                Call::Autoscore(v1::AutoscoreConversationsRequest { template_id, conversation_ids })
            }),
            (enum_value(1..=3), timestamp(), timestamp()).prop_map(|(group_by, start_time, end_time)| {
                Call::Stats(v1::GetScoreStatsRequest { group_by, start_time, end_time })
            }),
        ]
        .prop_map(AnyCall::Api);
    let job_id = prop_oneof![
        Just("5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e".to_owned()),
        Just("5F0C3B9E8A514C4E9D7E2F6A1B3C4D5E".to_owned()),
        text(64)
    ];
    let jobs = prop_oneof![
        reindex_payload(customer_id, conversation_ids).prop_map(|p| AnyCall::CreateJob(
            v1::CreateJobRequest {
                r#type: v1::JobType::ReindexConversations as i32,
                payload: Some(v1::JobPayload { payload: Some(Payload::ReindexConversations(p)) }),
            }
        )),
        (enum_value(1..=1), prop::option::of(Just(v1::JobPayload { payload: None })))
            .prop_map(|(r#type, payload)| AnyCall::CreateJob(v1::CreateJobRequest { r#type, payload })),
        job_id.clone().prop_map(|id| AnyCall::GetJob(v1::GetJobRequest { id })),
        job_id.prop_map(|id| AnyCall::CancelJob(v1::CancelJobRequest { id })),
        (enum_value(1..=5), enum_value(1..=1), prop_oneof![Just(0), Just(customer_id), any::<i64>()], page())
            .prop_map(|(state, r#type, customer_id, (page_size, page_token))| AnyCall::ListJobs(
                v1::ListJobsRequest { state, r#type, customer_id, page_size, page_token }
            )),
    ];
    prop_oneof![13 => api, 5 => jobs]
}

fn reindex_payload(
    customer_id: i64,
    conversation_ids: Vec<i64>,
) -> impl Strategy<Value = v1::ReindexConversationsPayload> {
    let batch = prop_oneof![Just(0i32), 1..1000i32, any::<i32>()];
    (
        prop_oneof![3 => Just(customer_id), 1 => Just(0i64), 1 => any::<i64>()],
        timestamp(),
        timestamp(),
        enum_value(1..=2),
        ids(conversation_ids),
        batch.clone(),
        batch,
        vec(enum_value(1..=2), 0..3),
    )
        .prop_map(
            |(
                customer_id,
                start_time,
                end_time,
                time_base,
                conversation_ids,
                conv_batch,
                proc_batch,
                types,
            )| {
                v1::ReindexConversationsPayload {
                    customer_id,
                    start_time,
                    end_time,
                    time_base,
                    conversation_ids,
                    conversations_batch_size: conv_batch,
                    process_scorecards_batch_size: proc_batch,
                    reindex_scorecard_types: types,
                }
            },
        )
}

/// Whether CreateJob would have let `spec` through (the stored payload is
/// decoded without these checks; see RELIABILITY.md).
#[tokio::test]
async fn wild_requests_of_every_rpc_answer_from_a_closed_set_of_codes() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let world = World::build(&env).await;
    let (customer, jobs, tally) = (&world.customer, &world.jobs(), &Tally::default());
    run_cases("wild requests of every RPC", cases(600), wild_call(&world), |call| {
        let mut jobs = jobs.clone();
        async move {
            let request_type = call.request_type();
            let result = call.make(customer, &mut jobs).await;
            tally.count(&result);
            judge(request_type, &result)
        }
    })
    .await;
    tally.print("answers");
    // Whatever was accepted reached ClickHouse as Postgres holds it.
    env.outbox_drained(std::time::Duration::from_secs(30)).await.expect("the outbox drains");
    env.assert_scorecards_mirrored().await;
}
