//! Hostile text in every free-text field of the API (template and
//! criterion names, AutoQA phrases, conversation external and agent ids,
//! message text, scorecard agent ids): SQL metacharacters, control
//! characters, non-Latin scripts, emoji, combining and direction marks,
//! valid UTF-8 that looks broken, and text exactly at each field's limit.
//! Every value is read back unchanged, byte for byte, through the API, from
//! Postgres, and from the ClickHouse columns that mirror it after each
//! write path (outbox, batch index, AutoQA, a reindex job) and through
//! GetScoreStats. A NUL, which Postgres text cannot hold, is refused in
//! every field with INVALID_ARGUMENT naming it, never INTERNAL.

use std::collections::BTreeSet;
use std::time::Duration;

use scorekeeper_domain::limits::{MAX_MESSAGE_TEXT_BYTES, MAX_NAME_BYTES};
use scorekeeper_proto::coaching::{self as pb, auto_qa_rule};
use scorekeeper_proto::v1;
use scorekeeper_tests::fixtures::*;
use scorekeeper_tests::jobs::{reindex_request, run_job};
use scorekeeper_tests::rejection::{Call, Expect, assert_rejected};
use scorekeeper_tests::{Customer, TestEnv};

const DRAIN: Duration = Duration::from_secs(30);

/// A string of exactly `bytes` bytes: `fill` repeated, padded with `a`.
fn sized(bytes: usize, fill: &str) -> String {
    let mut s = String::with_capacity(bytes);
    while s.len() + fill.len() <= bytes {
        s.push_str(fill);
    }
    while s.len() < bytes {
        s.push('a');
    }
    s
}

/// The values stored in every free-text field, all distinct, none blank,
/// none longer than [`MAX_NAME_BYTES`].
fn hostile() -> Vec<String> {
    let mut values: Vec<String> = [
        // SQL metacharacters.
        "'; DROP TABLE conversations; --",
        "Robert'); DELETE FROM scorecards WHERE ('1'='1",
        r"back\slash \' \\ \n \x00 \u0000",
        "100% _match_ LIKE '%_' ESCAPE '\\'",
        r#""double" ""quotes"" `tick` $$dollar$$ $1"#,
        "semi;colon /* comment */ -- dash",
        // Control characters.
        "tab\there\tand\tthere",
        "line\nbreak\n",
        "cr\rlf\r\nend",
        "bell\u{7}esc\u{1b}[31mred\u{1b}[0m del\u{7f} \u{1}\u{1f}",
        "  padded with spaces  ",
        // Scripts, emoji, marks.
        "مرحبا بالعالم",
        "你好，世界 こんにちは 안녕하세요",
        "👩\u{200d}👩\u{200d}👧\u{200d}👦 🏳\u{fe0f}\u{200d}🌈 👍🏽",
        "Z\u{334}\u{321}a\u{337}l\u{338}g\u{335}o e\u{301} n\u{303}",
        "\u{200f}rtl mark\u{202e}override\u{202c} \u{2066}isolate\u{2069}",
        "\u{feff}bom \u{200b}zero\u{200b}width \u{2028}line sep \u{2029}",
        // Valid UTF-8 that looks broken.
        "\u{fffd}replacement \u{fffe}\u{ffff} nonchars \u{10ffff}",
        "Ã© mojibake Â\u{a0} \u{c0}\u{80} \u{d7ff}\u{e000}",
        "%00 %27 &#0; \\0 0x00",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // At the limit, in 1-, 2-, 3- and 4-byte characters.
    for fill in ["x", "é", "中", "😀"] {
        values.push(sized(MAX_NAME_BYTES, fill));
    }
    values
}

/// Postgres rows of one text column, in id order.
async fn column(env: &TestEnv, sql: &str, customer: &Customer) -> Vec<String> {
    let client = env.store.pool().get().await.expect("a Postgres connection");
    client
        .query(sql, &[&customer.id.0])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Asserts two lists of strings are equal, naming the first difference
/// by index and bytes (the values are unreadable by design).
fn assert_bytes(what: &str, got: &[String], expected: &[String]) {
    assert_eq!(got.len(), expected.len(), "{what}: {} values, expected {}", got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            g.as_bytes() == e.as_bytes(),
            "{what}[{i}]: got {:?}, expected {:?}",
            g.as_bytes(),
            e.as_bytes()
        );
    }
}

fn sorted(values: impl IntoIterator<Item = String>) -> Vec<String> {
    values.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

#[tokio::test]
async fn hostile_text_is_stored_and_mirrored_byte_for_byte() {
    let env = TestEnv::start().await;
    let customer = env.customer("hostile \u{202e} '; --").await;
    let values = hostile();
    let scorecards = customer.scorecards();

    // Templates: the name, a criterion name and an AutoQA phrase each hold
    // one value; the phrase will be matched against the same text.
    let mut templates = Vec::new();
    for value in &values {
        let request = pb::CreateScorecardTemplateRequest {
            name: value.clone(),
            template_type: pb::ScorecardTemplateType::Conversation as i32,
            criteria: vec![
                criterion(value, 1.0, 5.0),
                rule_criterion("rule", auto_qa_rule::Kind::Present, value),
            ],
        };
        let created = scorecards
            .clone()
            .create_scorecard_template(request)
            .await
            .unwrap_or_else(|e| panic!("template named {value:?} refused: {e:?}"))
            .into_inner()
            .template
            .expect("a template");
        let read = scorecards
            .clone()
            .get_scorecard_template(pb::GetScorecardTemplateRequest { id: created.id })
            .await
            .expect("reading a template")
            .into_inner()
            .template
            .expect("a template");
        for t in [&created, &read] {
            assert_bytes(
                "template name, criterion name, phrase",
                &[
                    t.name.clone(),
                    t.criteria[0].name.clone(),
                    t.criteria[1].autoqa_rule.clone().unwrap().pattern,
                ],
                &[value.clone(), value.clone(), value.clone()],
            );
        }
        templates.push(created);
    }
    for (what, sql) in [
        (
            "Postgres template names",
            "SELECT name FROM scorecard_templates WHERE customer_id = $1 ORDER BY id",
        ),
        (
            "Postgres criterion names",
            "SELECT c.name FROM criteria c JOIN scorecard_templates t ON t.id = c.template_id \
             WHERE t.customer_id = $1 AND c.position = 0 ORDER BY t.id",
        ),
        (
            "Postgres AutoQA phrases",
            "SELECT c.autoqa_rule->>'pattern' FROM criteria c JOIN scorecard_templates t ON t.id = c.template_id \
             WHERE t.customer_id = $1 AND c.autoqa_rule IS NOT NULL ORDER BY t.id",
        ),
    ] {
        assert_bytes(what, &column(&env, sql, &customer).await, &values);
    }

    // Conversations: external id, agent id and a message each hold one
    // value; a second message is 16 KiB of 3-byte characters, at the limit.
    let long_text = sized(MAX_MESSAGE_TEXT_BYTES, "中");
    let batch: Vec<v1::Conversation> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let mut c = conversation(value, value, T0 + i as i64 * 60, &[(v1::Speaker::Agent, value)]);
            c.messages.push(v1::Message {
                speaker: v1::Speaker::Customer as i32,
                text: long_text.clone(),
                offset_ms: 1000,
            });
            c
        })
        .collect();
    let stored = customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest { conversations: batch })
        .await
        .expect("upserting hostile conversations")
        .into_inner()
        .conversations;
    let ids: Vec<i64> = stored.iter().map(|c| c.id).collect();
    for (c, value) in stored.iter().zip(&values) {
        let read = customer
            .conversations()
            .get_conversation(v1::GetConversationRequest { id: c.id, include_messages: true })
            .await
            .expect("reading a conversation")
            .into_inner()
            .conversation
            .expect("a conversation");
        for c in [c, &read] {
            assert_bytes(
                "conversation read back",
                &[c.external_id.clone(), c.agent_id.clone()],
                &[value.clone(), value.clone()],
            );
        }
        let texts: Vec<String> = read.messages.iter().map(|m| m.text.clone()).collect();
        assert_bytes("messages read back", &texts, &[value.clone(), long_text.clone()]);
    }
    let sql = |col: &str| format!("SELECT {col} FROM conversations WHERE customer_id = $1 ORDER BY id");
    let first_texts = "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE c.customer_id = $1 AND m.seq = (SELECT min(seq) FROM messages WHERE conversation_id = c.id) \
         ORDER BY c.id";
    for (what, sql) in [
        ("Postgres external ids", sql("external_id")),
        ("Postgres agent ids", sql("agent_id")),
        ("Postgres message texts", first_texts.to_owned()),
    ] {
        assert_bytes(what, &column(&env, &sql, &customer).await, &values);
    }
    let long = column(
        &env,
        "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE c.customer_id = $1 AND m.speaker = 2 ORDER BY c.id",
        &customer,
    )
    .await;
    assert!(
        long.iter().all(|t| t.as_bytes() == long_text.as_bytes()),
        "a 16 KiB message changed in Postgres"
    );

    // Path: batch index. ClickHouse's external_id and agent_id columns.
    customer
        .conversations()
        .batch_index_conversations(v1::BatchIndexConversationsRequest {
            conversation_ids: ids.clone(),
            ..Default::default()
        })
        .await
        .expect("batch indexing hostile conversations");
    let assert_clickhouse_conversations = |path: &'static str| {
        let (env, values) = (&env, &values);
        async move {
            let rows = env.clickhouse_conversations().await;
            let external: Vec<String> = rows.iter().map(|r| r.external_id.clone()).collect();
            let agents: Vec<String> = rows.iter().map(|r| r.agent_id.clone()).collect();
            assert_bytes(&format!("ClickHouse external ids after {path}"), &external, values);
            assert_bytes(&format!("ClickHouse agent ids after {path}"), &agents, values);
        }
    };
    assert_clickhouse_conversations("batch index").await;

    // Path: AutoQA. Each phrase is found in its own conversation, whatever
    // its script or punctuation; the scorecard carries the hostile agent.
    for (i, template) in templates.iter().enumerate() {
        let results = customer
            .autoqa()
            .autoscore_conversations(v1::AutoscoreConversationsRequest {
                template_id: template.id,
                conversation_ids: vec![ids[i]],
            })
            .await
            .unwrap_or_else(|e| panic!("autoscoring with phrase {:?}: {e:?}", values[i]))
            .into_inner()
            .results;
        assert_eq!(results.len(), 1);
        // The rule criterion is the only one scored: it passed, 100 %.
        assert_eq!(results[0].total_score, 100.0, "the phrase {:?} was not found in itself", values[i]);
    }

    // Path: the API (outbox). Process scorecards with a hostile agent,
    // then one agent changed by an update.
    let process = process_template(&customer).await;
    for value in &values {
        create_scorecard(&customer, process_scorecard(&process, value.clone(), vec![ids[0]], &[2.0])).await;
    }
    let renamed =
        create_scorecard(&customer, process_scorecard(&process, "to be renamed", vec![], &[1.0])).await;
    let updated = scorecards
        .clone()
        .update_scorecard(pb::UpdateScorecardRequest {
            id: renamed.id,
            agent_id: values[0].clone(),
            scores: scores(&process, &[3.0]),
            ..Default::default()
        })
        .await
        .expect("updating a scorecard's agent")
        .into_inner()
        .scorecard
        .expect("a scorecard");
    assert_bytes("updated agent", &[updated.agent_id], &[values[0].clone()]);
    env.outbox_drained(DRAIN).await.expect("the outbox drains");
    let agents =
        column(&env, "SELECT agent_id FROM scorecards WHERE customer_id = $1 ORDER BY id", &customer).await;
    let mut expected: Vec<String> = values.clone(); // AutoQA, one per conversation
    expected.extend(values.iter().cloned()); // process scorecards
    expected.push(values[0].clone()); // the renamed one
    assert_bytes("Postgres scorecard agents", &agents, &expected);
    env.assert_scorecards_mirrored().await;
    let mirrored: Vec<String> = env.clickhouse_scorecards().await.into_iter().map(|r| r.agent_id).collect();
    assert_bytes("ClickHouse scorecard agents", &sorted(mirrored), &sorted(values.clone()));
    let mirrored: Vec<String> = env.clickhouse_scores().await.into_iter().map(|r| r.agent_id).collect();
    assert_bytes("ClickHouse score agents", &sorted(mirrored), &sorted(values.clone()));

    // Read back from ClickHouse through the API: statistics keyed by agent.
    let rows = customer
        .analytics()
        .get_score_stats(v1::GetScoreStatsRequest {
            group_by: v1::StatsGroupBy::Agent as i32,
            ..Default::default()
        })
        .await
        .expect("score statistics")
        .into_inner()
        .rows;
    let keys = sorted(rows.into_iter().map(|r| r.key));
    assert_bytes("GetScoreStats agent keys", &keys, &sorted(values.clone()));

    // Path: a reindex job, after ClickHouse lost the conversations.
    env.clickhouse_client()
        .query("TRUNCATE TABLE conversations")
        .execute()
        .await
        .expect("emptying ClickHouse's conversations");
    assert_eq!(env.clickhouse_row_count("conversations").await, 0);
    run_job(
        &mut customer.jobs(),
        reindex_request(v1::ReindexConversationsPayload { customer_id: customer.id.0, ..Default::default() }),
        "reindex of hostile conversations",
    )
    .await;
    assert_clickhouse_conversations("a reindex job").await;
    eprintln!("hostile strings: {} values in 8 fields, through 4 write paths", values.len());
}

/// The fields that store text, each with a NUL: INVALID_ARGUMENT naming the
/// field and nothing written, never INTERNAL from Postgres.
#[tokio::test]
async fn a_nul_is_refused_in_every_text_field() {
    let env = TestEnv::start().await;
    let customer = env.customer("nul").await;
    let process = process_template(&customer).await;
    // A conversation too, so that every table the snapshot reads holds rows.
    conversations(&customer, 1).await;
    let scorecard = create_scorecard(&customer, process_scorecard(&process, "agent", vec![], &[1.0])).await;
    env.outbox_drained(DRAIN).await.expect("the outbox drains");
    let nul = "before\0after".to_owned();
    let new_template = || pb::CreateScorecardTemplateRequest {
        name: "t".into(),
        template_type: pb::ScorecardTemplateType::Conversation as i32,
        criteria: vec![
            criterion("manual", 1.0, 5.0),
            rule_criterion("rule", auto_qa_rule::Kind::Present, "hello"),
        ],
    };
    let upsert = |change: &dyn Fn(&mut v1::Conversation)| {
        let mut c = conversation("fresh", "agent", T0, &[(v1::Speaker::Agent, "hello")]);
        change(&mut c);
        Call::Upsert(v1::UpsertConversationsRequest { conversations: vec![c] })
    };
    let cases = [
        (
            "name",
            Call::CreateTemplate(pb::CreateScorecardTemplateRequest { name: nul.clone(), ..new_template() }),
        ),
        ("criteria[0].name", {
            let mut r = new_template();
            r.criteria[0].name = nul.clone();
            Call::CreateTemplate(r)
        }),
        ("criteria[1].autoqa_rule.pattern", {
            let mut r = new_template();
            r.criteria[1].autoqa_rule.as_mut().unwrap().pattern = nul.clone();
            Call::CreateTemplate(r)
        }),
        ("conversations[0].external_id", upsert(&|c| c.external_id = nul.clone())),
        ("conversations[0].agent_id", upsert(&|c| c.agent_id = nul.clone())),
        ("conversations[0].messages[0].text", upsert(&|c| c.messages[0].text = nul.clone())),
        ("agent_id", Call::CreateScorecard(process_scorecard(&process, nul.clone(), vec![], &[1.0]))),
        (
            "agent_id",
            Call::UpdateScorecard(pb::UpdateScorecardRequest {
                id: scorecard.id,
                agent_id: nul.clone(),
                ..Default::default()
            }),
        ),
    ];
    for (field, call) in cases {
        let name = format!("a NUL in {field}");
        assert_rejected(&env, &customer, &name, call, &Expect::Invalid(field.into())).await;
    }
}
