//! Property 2: one field broken, named, and nothing written.

use super::*;

/// A valid request with one field broken, and the field the refusal must
/// name.
#[derive(Clone, Debug)]
struct Broken {
    field: String,
    call: AnyCall,
}

fn broken(field: impl Into<String>, call: Call) -> Broken {
    Broken { field: field.into(), call: AnyCall::Api(call) }
}

fn broken_request(w: &World) -> impl Strategy<Value = Broken> + use<> {
    let (conv_scorecard, proc_scorecard, update) = (
        conversation_scorecard(&w.conv_template, w.conversations[1].id, &[3.0, 5.0]),
        process_scorecard(&w.proc_template, "agent-5", vec![w.conversations[0].id], &[1.0]),
        pb::UpdateScorecardRequest {
            id: w.scorecard.id,
            scores: scores(&w.conv_template, &[2.0, 2.0]),
            ..Default::default()
        },
    );
    let conversation_ids = w.conversation_ids();
    let reindex = valid_reindex(&w.customer);
    let index = 0..2usize;
    let name = || bad_text(MAX_NAME_BYTES);
    let templates = prop_oneof![
        name().prop_map(|name| broken(
            "name",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { name, ..valid_template() })
        )),
        (index.clone(), name()).prop_map(|(i, name)| {
            let mut r = valid_template();
            r.criteria[i].name = name;
            broken(format!("criteria[{i}].name"), Call::CreateTemplate(r))
        }),
        (index.clone(), prop_oneof![not_finite(), Just(0.0), Just(-1.0), Just(1000.5)]).prop_map(|(i, w)| {
            let mut r = valid_template();
            r.criteria[i].weight = w;
            broken(format!("criteria[{i}].weight"), Call::CreateTemplate(r))
        }),
        bad_text(MAX_PATTERN_BYTES).prop_map(|pattern| {
            let mut r = valid_template();
            r.criteria[1].autoqa_rule.as_mut().expect("a rule").pattern = pattern;
            broken("criteria[1].autoqa_rule.pattern", Call::CreateTemplate(r))
        }),
        unknown_enum(2).prop_map(|t| broken(
            "template_type",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { template_type: t, ..valid_template() })
        )),
    ];
    let upserts = prop_oneof![
        (index.clone(), name(), any::<bool>()).prop_map(|(i, value, external)| {
            let mut r = valid_upsert();
            let (field, slot) = if external {
                ("external_id", &mut r.conversations[i].external_id)
            } else {
                ("agent_id", &mut r.conversations[i].agent_id)
            };
            *slot = value;
            broken(format!("conversations[{i}].{field}"), Call::Upsert(r))
        }),
        (index.clone(), index.clone(), bad_free_text(MAX_MESSAGE_TEXT_BYTES)).prop_map(|(i, j, text)| {
            let mut r = valid_upsert();
            r.conversations[i].messages[j].text = text;
            broken(format!("conversations[{i}].messages[{j}].text"), Call::Upsert(r))
        }),
        (index.clone(), index.clone(), i64::MIN..0).prop_map(|(i, j, offset)| {
            let mut r = valid_upsert();
            r.conversations[i].messages[j].offset_ms = offset;
            broken(format!("conversations[{i}].messages[{j}].offset_ms"), Call::Upsert(r))
        }),
        (index.clone(), 1..1_000_000i64).prop_map(|(i, earlier)| {
            let mut r = valid_upsert();
            r.conversations[i].ended_at = ts(T0 - earlier);
            broken(format!("conversations[{i}].ended_at"), Call::Upsert(r))
        }),
    ];
    let scorecards = prop_oneof![
        bad_optional_text(MAX_NAME_BYTES).prop_map(move |agent_id| broken(
            "agent_id",
            Call::CreateScorecard(pb::CreateScorecardRequest { agent_id, ..proc_scorecard.clone() })
        )),
        (index.clone(), not_finite()).prop_map(move |(i, value)| {
            let mut r = conv_scorecard.clone();
            r.scores[i].value = value;
            broken(format!("scores[{i}].value"), Call::CreateScorecard(r))
        }),
        bad_optional_text(MAX_NAME_BYTES).prop_map({
            let update = update.clone();
            move |agent_id| {
                broken(
                    "agent_id",
                    Call::UpdateScorecard(pb::UpdateScorecardRequest { agent_id, ..update.clone() }),
                )
            }
        }),
        (i64::MIN..0).prop_map(move |v| broken(
            "expected_version",
            Call::UpdateScorecard(pb::UpdateScorecardRequest { expected_version: v, ..update.clone() })
        )),
    ];
    let reads = prop_oneof![
        "[^0-9+-][^\0]{0,8}".prop_map(|page_token| broken(
            "page_token",
            Call::ListScorecards(pb::ListScorecardsRequest { page_token, ..Default::default() })
        )),
        prop_oneof![i32::MIN..0, 501..=i32::MAX].prop_map(|page_size| broken(
            "page_size",
            Call::ListTemplates(pb::ListScorecardTemplatesRequest { page_size, ..Default::default() })
        )),
        (index.clone(), i64::MIN..=0).prop_map({
            let ids = conversation_ids.clone();
            move |(i, bad)| {
                let mut ids = ids.clone();
                ids[i] = bad;
                broken(
                    format!("conversation_ids[{i}]"),
                    Call::BatchIndex(v1::BatchIndexConversationsRequest {
                        conversation_ids: ids,
                        ..Default::default()
                    }),
                )
            }
        }),
        (index.clone(), i64::MIN..=0).prop_map({
            let (ids, template_id) = (conversation_ids.clone(), w.conv_template.id);
            move |(i, bad)| {
                let mut ids = ids.clone();
                ids[i] = bad;
                broken(
                    format!("conversation_ids[{i}]"),
                    Call::Autoscore(v1::AutoscoreConversationsRequest { template_id, conversation_ids: ids }),
                )
            }
        }),
        unknown_enum(3).prop_map(|group_by| broken(
            "group_by",
            Call::Stats(v1::GetScoreStatsRequest { group_by, ..Default::default() })
        )),
        (0..1_000_000i64).prop_map(|back| broken(
            "end_time",
            Call::Stats(v1::GetScoreStatsRequest {
                group_by: 1,
                start_time: ts(T0),
                end_time: ts(T0 - back)
            })
        )),
    ];
    let job = |field: &str, payload: v1::ReindexConversationsPayload| Broken {
        field: format!("payload.reindex_conversations.{field}"),
        call: AnyCall::CreateJob(reindex_request(payload)),
    };
    let jobs = prop_oneof![
        prop_oneof![i32::MIN..0, 100_001..=i32::MAX].prop_map({
            let reindex = reindex.clone();
            move |n| {
                job(
                    "conversations_batch_size",
                    v1::ReindexConversationsPayload { conversations_batch_size: n, ..reindex.clone() },
                )
            }
        }),
        unknown_enum(2).prop_map({
            let reindex = reindex.clone();
            move |t| {
                job(
                    "reindex_scorecard_types[1]",
                    v1::ReindexConversationsPayload {
                        reindex_scorecard_types: vec![1, t],
                        ..reindex.clone()
                    },
                )
            }
        }),
        (0..1_000_000i64).prop_map({
            let reindex = reindex.clone();
            move |back| {
                job(
                    "end_time",
                    v1::ReindexConversationsPayload { end_time: ts(T0 - back), ..reindex.clone() },
                )
            }
        }),
        (index, i64::MIN..=0).prop_map(move |(i, bad)| {
            let mut ids = conversation_ids.clone();
            ids[i] = bad;
            job(
                &format!("conversation_ids[{i}]"),
                v1::ReindexConversationsPayload { conversation_ids: ids, ..reindex.clone() },
            )
        }),
    ];
    prop_oneof![5 => templates, 4 => upserts, 4 => scorecards, 6 => reads, 4 => jobs]
}

#[tokio::test]
async fn one_broken_field_is_named_and_nothing_is_written() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let world = World::build(&env).await;
    let jobs = world.jobs();
    let (env, world) = (&env, &world);
    run_cases("one broken field, through the server", cases(150), broken_request(world), |broken| {
        let mut jobs = jobs.clone();
        async move {
            let name = shorten(&format!("{broken:?}"));
            let jobs_before = job_tables(env).await;
            match broken.call {
                AnyCall::Api(call) => {
                    assert_rejected(env, &world.customer, &name, call, &Expect::Invalid(broken.field)).await;
                }
                AnyCall::CreateJob(request) => {
                    let before = Snapshot::take(env).await;
                    let status = jobs.create_job(request).await.err().ok_or("accepted")?;
                    if status.code() != Code::InvalidArgument || named_field(&status) != broken.field {
                        return Err(format!(
                            "expected INVALID_ARGUMENT naming {}, got {status:?}",
                            broken.field
                        ));
                    }
                    let after = Snapshot::take(env).await;
                    if after != before {
                        return Err(format!("the refused job wrote: {}", after.diff(&before)));
                    }
                }
                other => unreachable!("not a broken request: {other:?}"),
            }
            if job_tables(env).await != jobs_before {
                return Err("the refused request changed the job tables".into());
            }
            Ok(())
        }
    })
    .await;
}
