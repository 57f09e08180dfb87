//! The drift audit end to end on the real servers: in-sync data shows no
//! drift; each kind of drift (rows only in Postgres, older or newer versions
//! in ClickHouse, rows deleted from Postgres by hand) is named by id; the
//! repair brings drift to zero and a second audit confirms it; slices cut
//! down to hours and id ranges; the RPC's tenancy and validation; the job
//! type through the worker; rows dated outside what ClickHouse holds.
//!
//! Each world is a bulk import straight into Postgres, copied to ClickHouse
//! whole through `Analytics::write`, and then broken by hand on one side.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::DateTime;
use scorekeeper_analytics::WritePath;
use scorekeeper_domain::audit::{AuditScope, AuditSpec, AuditTable, AuditWindow, DriftKind};
use scorekeeper_domain::mirror::MirrorBatch;
use scorekeeper_domain::reindex::{KeyRange, ReindexScope};
use scorekeeper_domain::{ConversationId, CustomerId};
use scorekeeper_jobs::JobState;
use scorekeeper_proto::v1::{self as pb, AuditRequest};
use scorekeeper_sync::audit::{self, Findings, Quiet, Tuning};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{BulkData, bulk_import};
use scorekeeper_tests::fixtures::{T0, ts};
use tonic::Code;

/// Copies every row of `customer` from Postgres to ClickHouse, as a
/// reindex would: the world starts in sync.
async fn mirror_everything(env: &TestEnv, customer: CustomerId) {
    let scope = ReindexScope { customer_id: Some(customer), ..ReindexScope::default() };
    let mut batch = MirrorBatch::default();
    let mut after = 0;
    loop {
        let page =
            env.store.conversations_in_scope(&scope, KeyRange { after, until: None }, 5_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id.0;
        batch.conversations.extend(page);
    }
    let all = env.postgres_scorecards().await;
    batch.scorecards = all.scorecards.into_iter().filter(|s| s.customer_id == customer).collect();
    batch.scores = all.scores.into_iter().filter(|s| s.customer_id == customer).collect();
    env.analytics.write(WritePath::Reindex, &batch).await.expect("mirroring the world");
}

/// A customer whose bulk-imported world ClickHouse holds exactly.
async fn in_sync_world(env: &TestEnv, name: &str, conversations: i64) -> (CustomerId, BulkData) {
    let customer = env.store.ensure_customer(name).await.unwrap();
    let data = bulk_import(&env.store, customer, conversations).await;
    mirror_everything(env, customer).await;
    (customer, data)
}

async fn sql(env: &TestEnv, statement: &str) -> Vec<tokio_postgres::Row> {
    let client = env.store.pool().get().await.unwrap();
    client.query(statement, &[]).await.unwrap_or_else(|e| panic!("{statement}: {e}"))
}

async fn ids(env: &TestEnv, query: &str) -> Vec<i64> {
    sql(env, query).await.iter().map(|r| r.get(0)).collect()
}

/// (table, id, kind) of every drifted row found.
fn named(findings: &Findings) -> BTreeSet<(AuditTable, i64, DriftKind)> {
    findings.rows.iter().map(|r| (r.table, r.id, r.kind)).collect()
}

fn scope(customer: CustomerId) -> AuditScope {
    AuditScope { customer_id: Some(customer), window: None }
}

#[tokio::test]
async fn in_sync_data_shows_no_drift() {
    let env = TestEnv::start().await;
    let (customer, data) = in_sync_world(&env, "acme", 300).await;
    // A second customer whose rows never reached ClickHouse: not in scope.
    let other = env.store.ensure_customer("other").await.unwrap();
    bulk_import(&env.store, other, 20).await;

    let report = audit::audit(&env.store, &env.analytics, &scope(customer)).await.unwrap();
    assert_eq!(report.drifted(), 0, "{report:#?}");
    assert!(report.rows.is_empty());
    let checked = |table| report.table(table).unwrap().rows_checked as i64;
    assert_eq!(checked(AuditTable::Conversations), data.conversations);
    assert_eq!(checked(AuditTable::Scorecards), data.conversation_scorecards + data.process_scorecards);
    assert_eq!(checked(AuditTable::Scores), data.conversation_scorecards * 2 + data.process_scorecards);
    // 300 conversations a minute apart: one day; scorecards were created today.
    assert!(report.buckets.iter().all(|b| b.drift.total() == 0 && b.rows_checked == b.clickhouse_rows));
    assert_eq!(report.table(AuditTable::Conversations).unwrap().buckets, 1);

    let other_report = audit::audit(&env.store, &env.analytics, &scope(other)).await.unwrap();
    assert_eq!(other_report.drifted(), 20 + 22 + 42, "every row of the other customer is missing");
}

#[tokio::test]
async fn each_kind_of_drift_is_named_by_id_and_the_repair_converges() {
    let env = TestEnv::start().await;
    let (customer, _) = in_sync_world(&env, "acme", 300).await;
    let c = customer.0;
    let mut expected = BTreeSet::new();
    use AuditTable::*;
    use DriftKind::*;

    // Only in Postgres: a conversation inserted by hand, and a score
    // ClickHouse lost.
    let added = ids(
        &env,
        &format!(
            "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at)
             VALUES ({c}, 'by-hand', 'agent-1', '2026-01-01 02:00Z', '2026-01-01 02:05Z') RETURNING id"
        ),
    )
    .await[0];
    expected.insert((Conversations, added, Missing));
    // A conversation deleted before it was ever mirrored: nothing to see.
    sql(
        &env,
        &format!(
            "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at, deleted_at)
             VALUES ({c}, 'gone', 'agent-1', '2026-01-01 02:00Z', '2026-01-01 02:05Z', now())"
        ),
    )
    .await;
    let lost_score = ids(&env, &format!("SELECT min(id) FROM scores WHERE customer_id = {c}")).await[0];
    env.clickhouse_delete("scores", &format!("id = {lost_score}")).await;
    expected.insert((Scores, lost_score, Missing));

    // Stale: a scorecard changed in Postgres only (its scores' mirrored
    // version is the scorecard's, so they are stale too) ...
    let cards = ids(
        &env,
        &format!("SELECT id FROM scorecards WHERE customer_id = {c} AND template_type = 1 ORDER BY id"),
    )
    .await;
    sql(&env, &format!("UPDATE scorecards SET total_score = 10 WHERE id = {}", cards[10])).await;
    expected.insert((Scorecards, cards[10], Stale));
    for score in ids(&env, &format!("SELECT id FROM scores WHERE scorecard_id = {}", cards[10])).await {
        expected.insert((Scores, score, Stale));
    }
    // ... an older version written to ClickHouse after its row was lost ...
    let mut older = env.store.scorecard_mirror(&[scorekeeper_domain::ScorecardId(cards[20])]).await.unwrap();
    older.scores.clear();
    older.scorecards[0].version -= 1;
    env.clickhouse_delete("scorecards", &format!("id = {}", cards[20])).await;
    env.analytics.write(WritePath::Reindex, &older).await.unwrap();
    expected.insert((Scorecards, cards[20], Stale));
    // ... and a process scorecard deleted in Postgres whose tombstone never
    // arrived (its score is deleted with it).
    let process =
        ids(&env, &format!("SELECT min(id) FROM scorecards WHERE customer_id = {c} AND template_type = 2"))
            .await[0];
    sql(&env, &format!("UPDATE scorecards SET deleted_at = now() WHERE id = {process}")).await;
    expected.insert((Scorecards, process, Stale));
    for score in ids(&env, &format!("SELECT id FROM scores WHERE scorecard_id = {process}")).await {
        expected.insert((Scores, score, Stale));
    }

    // Newer in ClickHouse than in Postgres (a bug would do this).
    let first = ids(&env, &format!("SELECT min(id) FROM conversations WHERE customer_id = {c}")).await[0];
    let mut newer = MirrorBatch::default();
    let one = ReindexScope {
        customer_id: Some(customer),
        conversation_ids: vec![ConversationId(first)],
        ..ReindexScope::default()
    };
    let page = env.store.conversations_in_scope(&one, KeyRange::ALL, 1).await.unwrap();
    newer.conversations = page;
    newer.conversations[0].version += 1;
    env.analytics.write(WritePath::Reindex, &newer).await.unwrap();
    expected.insert((Conversations, first, Newer));

    // Gone from Postgres, deleted by hand: a score, and a scorecard with
    // its scores.
    let orphan =
        ids(&env, &format!("SELECT id FROM scores WHERE scorecard_id = {} LIMIT 1", cards[30])).await[0];
    sql(&env, &format!("DELETE FROM scores WHERE id = {orphan}")).await;
    expected.insert((Scores, orphan, OnlyInClickhouse));
    for score in
        ids(&env, &format!("DELETE FROM scores WHERE scorecard_id = {} RETURNING id", cards[40])).await
    {
        expected.insert((Scores, score, OnlyInClickhouse));
    }
    sql(&env, &format!("DELETE FROM scorecards WHERE id = {}", cards[40])).await;
    expected.insert((Scorecards, cards[40], OnlyInClickhouse));

    let (report, findings) =
        audit::audit_with_findings(&env.store, &env.analytics, &scope(customer), &Quiet).await.unwrap();
    assert_eq!(named(&findings), expected, "{report:#?}");
    assert_eq!(report.drifted(), expected.len() as u64);
    assert_eq!(report.rows.len(), expected.len(), "all named in the report");
    let newer_row = report.rows.iter().find(|r| r.kind == Newer).unwrap();
    assert_eq!(newer_row.clickhouse_version, newer_row.postgres_version.map(|v| v + 1));
    let missing = report.rows.iter().find(|r| r.id == added && r.table == Conversations).unwrap();
    assert_eq!(missing.clickhouse_version, None);
    assert_eq!(report.table(Scores).unwrap().drift.only_in_clickhouse, 3);

    // Repair: reindex jobs (run by the test's worker), a version bump and
    // tombstones; then the audit finds nothing, and a second one agrees.
    let outcome = audit::audit_and_repair(
        &env.store,
        &env.analytics,
        &scope(customer),
        &Quiet,
        None,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let repair = outcome.repair.expect("a repair");
    assert_eq!(repair.tombstones, 4, "{repair:?}");
    assert_eq!(repair.versions_bumped, 1, "{repair:?}");
    assert!(!repair.jobs.is_empty());
    for id in &repair.jobs {
        let job = env.jobs.get_job(id.parse().unwrap(), None).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    }
    let after = outcome.after.expect("an audit after the repair");
    assert_eq!(after.drifted(), 0, "{after:#?}");
    let again = audit::audit(&env.store, &env.analytics, &scope(customer)).await.unwrap();
    assert_eq!(again.drifted(), 0, "{again:#?}");
    env.assert_scorecards_mirrored().await;
}

#[tokio::test]
async fn slices_are_cut_by_hour_and_id_range_and_a_lost_hour_is_one_range() {
    let env = TestEnv::start().await;
    // 600 conversations a minute apart: ten hours of 2026-01-01.
    let (customer, _) = in_sync_world(&env, "acme", 600).await;
    let c = customer.0;
    // ClickHouse loses hour 3 of the conversations whole ...
    let hour = |h: i64| T0 + h * 3600;
    env.clickhouse_delete(
        "conversations",
        &format!("toUInt32(started_at) >= {} AND toUInt32(started_at) < {}", hour(3), hour(4)),
    )
    .await;
    // ... and one conversation of hour 5 goes stale.
    let stale = ids(
        &env,
        &format!(
            "UPDATE conversations SET agent_id = 'fixed' WHERE customer_id = {c}
             AND started_at = to_timestamp({}) RETURNING id",
            hour(5) + 17 * 60
        ),
    )
    .await[0];
    // Tiny slices: every level of the walk runs on these few rows.
    let tuning = Tuning { rows_read_limit: 8, id_fanout: 4, ..Tuning::default() };
    let (report, findings) =
        audit::audit_tuned(&env.store, &env.analytics, &scope(customer), &Quiet, tuning).await.unwrap();
    let conversations = report.table(AuditTable::Conversations).unwrap();
    assert_eq!(conversations.drift.missing, 60, "{report:#?}");
    assert_eq!(conversations.drift.stale, 1);
    assert_eq!(named(&findings), BTreeSet::from([(AuditTable::Conversations, stale, DriftKind::Stale)]));
    assert_eq!(findings.missing_ranges.len(), 1, "{:?}", findings.missing_ranges);
    let range = findings.missing_ranges[0];
    assert_eq!((range.start_seconds, range.end_seconds, range.rows), (hour(3), hour(4), 60));
    assert_eq!(report.table(AuditTable::Scores).unwrap().drift.total(), 0);

    // The window limits the audit to its buckets: hours 4 to 6 see only the stale row.
    let window = AuditWindow {
        start: DateTime::from_timestamp(hour(4), 0).unwrap(),
        end: DateTime::from_timestamp(hour(6), 0).unwrap(),
    };
    let windowed = AuditScope { customer_id: Some(customer), window: Some(window) };
    let (report, _) =
        audit::audit_tuned(&env.store, &env.analytics, &windowed, &Quiet, tuning).await.unwrap();
    assert_eq!(report.table(AuditTable::Conversations).unwrap().rows_checked, 120);
    assert_eq!(report.drifted(), 1, "{report:#?}");

    // The repair reindexes the lost hour as a window and the stale row by id.
    let repair = audit::repair(&env.store, &env.analytics, &findings, None).await.unwrap();
    assert_eq!(repair.jobs.len(), 2, "{repair:?}");
    audit::wait_for_jobs(&env.store, &repair.jobs, Duration::from_secs(60)).await.unwrap();
    let (after, _) =
        audit::audit_tuned(&env.store, &env.analytics, &scope(customer), &Quiet, tuning).await.unwrap();
    assert_eq!(after.drifted(), 0, "{after:#?}");
}

#[tokio::test]
async fn the_rpc_audits_the_callers_customer_only_and_names_bad_fields() {
    let env = TestEnv::start().await;
    let (a, _) = in_sync_world(&env, "a", 50).await;
    let (b, _) = in_sync_world(&env, "b", 50).await;
    sql(&env, &format!("UPDATE conversations SET agent_id = 'x' WHERE id = (SELECT min(id) FROM conversations WHERE customer_id = {})", a.0)).await;
    sql(
        &env,
        &format!("UPDATE conversations SET agent_id = 'x' WHERE customer_id = {} AND id % 10 = 0", b.0),
    )
    .await;
    let token_a = env.store.create_token(a, false, "a").await.unwrap();
    let admin = env.store.create_token(b, true, "admin").await.unwrap();

    let mut as_a = env.customer_with_token(a, token_a).analytics();
    let report = as_a.audit(AuditRequest::default()).await.unwrap().into_inner().report.unwrap();
    assert_eq!(report.drifted_rows, 1, "only customer a's row: {report:?}");
    assert!(report.rows.iter().all(|r| r.customer_id == a.0 && r.kind == pb::DriftKind::Stale as i32));
    assert!(report.buckets.iter().all(|bucket| bucket.customer_id == a.0));

    let refused = as_a.audit(AuditRequest { customer_id: b.0, ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = as_a.audit(AuditRequest { all_customers: true, ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let bad: [(AuditRequest, &str); 5] = [
        (AuditRequest { start_time: ts(T0), ..Default::default() }, "end_time"),
        (AuditRequest { end_time: ts(T0), ..Default::default() }, "start_time"),
        (AuditRequest { start_time: ts(T0), end_time: ts(T0), ..Default::default() }, "end_time"),
        (AuditRequest { start_time: ts(-10), end_time: ts(T0), ..Default::default() }, "start_time"),
        (AuditRequest { customer_id: -1, ..Default::default() }, "customer_id"),
    ];
    for (request, field) in bad {
        let status = as_a.audit(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}: {status:?}");
        assert!(status.message().contains(field), "{request:?} names {field}: {}", status.message());
    }

    let mut as_admin = env.customer_with_token(b, admin).analytics();
    let all = as_admin.audit(AuditRequest { all_customers: true, ..Default::default() }).await.unwrap();
    assert_eq!(all.into_inner().report.unwrap().drifted_rows, 1 + 5);
    let unknown =
        as_admin.audit(AuditRequest { customer_id: 999_999, ..Default::default() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");

    // A window: customer a's drifted conversation started in the first minute of 2026.
    let windowed = AuditRequest { start_time: ts(T0 + 3600), end_time: ts(T0 + 7200), ..Default::default() };
    let report = as_a.audit(windowed).await.unwrap().into_inner().report.unwrap();
    assert_eq!(report.drifted_rows, 0, "outside the window: {report:?}");

    // Repair through the RPC queues jobs for customer a's row only.
    let response =
        as_a.audit(AuditRequest { repair: true, ..Default::default() }).await.unwrap().into_inner();
    let repair = response.repair.expect("a repair");
    assert_eq!(repair.job_ids.len(), 1);
    audit::wait_for_jobs(&env.store, &repair.job_ids, Duration::from_secs(60)).await.unwrap();
    let report = as_a.audit(AuditRequest::default()).await.unwrap().into_inner().report.unwrap();
    assert_eq!(report.drifted_rows, 0);
    let report = as_admin.audit(AuditRequest { customer_id: b.0, ..Default::default() }).await.unwrap();
    assert_eq!(report.into_inner().report.unwrap().drifted_rows, 5, "customer b untouched");
}

#[tokio::test]
async fn the_audit_job_repairs_through_the_worker() {
    assert_eq!(audit::job::JOB_TYPE, pb::JobType::Audit as i16, "the job type number is the proto's");
    let env = TestEnv::start().await;
    let (customer, _) = in_sync_world(&env, "acme", 100).await;
    let c = customer.0;
    sql(&env, &format!("UPDATE scorecards SET total_score = 1 WHERE customer_id = {c} AND id % 7 = 0")).await;
    let spec = AuditSpec { scope: scope(customer), repair: true };
    let (job, _) = env.jobs.create_job(&audit::job::new_job(&spec, Some(customer))).await.unwrap();
    let started = Instant::now();
    let job = loop {
        let job = env.jobs.get_job(job.id, None).await.unwrap().unwrap();
        if job.state.is_terminal() {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the audit job did not end: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let names: Vec<&str> = job.activities.iter().map(|a| a.activity.as_str()).collect();
    assert_eq!(names, ["audit", "repair", "verify"]);
    assert!(job.activities.iter().all(|a| a.finished), "{job:?}");
    // Progress while it ran: a batch per table checked, then the summary.
    let audit_activity = &job.activities[0];
    assert_eq!(audit_activity.rows_done, 100 + 110 + 210, "{job:?}");
    assert_eq!(audit_activity.checkpoints_done, 3 + 1, "{job:?}");
    assert_eq!(audit_activity.pages_done, 3, "a page per table checked; the summary covers none: {job:?}");
    let summary = |i: usize| -> audit::job::AuditSummary {
        serde_json::from_value(job.activities[i].checkpoint.clone().unwrap()).unwrap()
    };
    assert!(summary(0).drifted > 0, "the audit found the changed scorecards and their scores");
    assert_eq!(summary(2).drifted, 0, "the verifying audit found none left");
    env.assert_scorecards_mirrored().await;
}

/// Rows dated where ClickHouse's `DateTime` cannot go (1900, 2200, and one
/// that starts in range but ends after 2106), written into Postgres before
/// the API refused such times, are never in sync: an all-time audit counts
/// them and names them OUT_OF_RANGE, a repair leaves them (nothing could
/// mirror them faithfully) and they stay reported; once their time is
/// corrected in Postgres, the next repair mirrors them.
#[tokio::test]
async fn rows_outside_clickhouse_range_are_reported_and_left_for_an_operator() {
    let env = TestEnv::start().await;
    let (customer, data) = in_sync_world(&env, "acme", 20).await;
    let insert = |name: &str, started: &str, ended: &str| {
        format!(
            "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at, message_count)
             VALUES ({}, '{name}', 'agent', timestamptz '{started}', timestamptz '{ended}', 0) RETURNING id",
            customer.0
        )
    };
    let old = ids(&env, &insert("old", "1900-01-01 00:00Z", "1900-01-01 00:05Z")).await[0];
    let future = ids(&env, &insert("future", "2200-01-01 00:00Z", "2200-01-01 00:05Z")).await[0];
    let long = ids(&env, &insert("long", "2106-01-01 00:00Z", "2200-01-01 00:00Z")).await[0];
    let outside = BTreeSet::from([old, future, long]);
    // A scorecard created (by hand) in 1900 on an ordinary conversation,
    // with one score: its bucket time is out of range, so both are.
    let card = ids(
        &env,
        &format!(
            "INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source, total_score, created_at)
             SELECT customer_id, {}, 1, id, agent_id, 1, 50, timestamptz '1900-06-01 00:00Z'
             FROM conversations WHERE customer_id = {} ORDER BY id LIMIT 1 RETURNING id",
            data.conversation_template.0, customer.0
        ),
    )
    .await[0];
    let score = ids(
        &env,
        &format!(
            "INSERT INTO scores (customer_id, scorecard_id, criterion_id, value)
             SELECT {}, {card}, min(id), 1 FROM criteria WHERE template_id = {} RETURNING id",
            customer.0, data.conversation_template.0
        ),
    )
    .await[0];

    let token = env.store.create_token(customer, false, "t").await.unwrap();
    let mut analytics = env.customer_with_token(customer, token).analytics();
    let out_of_range_rows = |report: &pb::AuditReport| -> BTreeSet<i64> {
        let conversations = pb::AuditTable::Conversations as i32;
        report
            .rows
            .iter()
            .filter(|r| r.kind == pb::DriftKind::OutOfRange as i32 && r.table == conversations)
            .map(|r| r.id)
            .collect()
    };
    let table = |report: &pb::AuditReport, table: pb::AuditTable| {
        report.tables.iter().find(|t| t.table == table as i32).cloned().unwrap()
    };
    let response =
        analytics.audit(AuditRequest { repair: true, ..Default::default() }).await.unwrap().into_inner();
    let report = response.report.unwrap();
    assert_eq!(report.drifted_rows, 3 + 2, "{report:#?}");
    assert_eq!(out_of_range_rows(&report), outside, "{report:#?}");
    let conversations = table(&report, pb::AuditTable::Conversations);
    assert_eq!(conversations.drift.unwrap().out_of_range, 3);
    assert_eq!(conversations.rows_checked, data.conversations + 3, "every live row is checked");
    for (t, id) in [(pb::AuditTable::Scorecards, card), (pb::AuditTable::Scores, score)] {
        assert_eq!(table(&report, t).drift.unwrap().out_of_range, 1, "{t:?}");
        let named = report.rows.iter().find(|r| r.table == t as i32 && r.id == id).expect("named");
        assert_eq!(named.kind, pb::DriftKind::OutOfRange as i32);
    }
    let repair = response.repair.expect("a repair was asked for and something drifted");
    assert!(repair.job_ids.is_empty(), "nothing to reindex: {repair:?}");

    // Reported again: the repair left them.
    let report = analytics.audit(AuditRequest::default()).await.unwrap().into_inner().report.unwrap();
    assert_eq!(out_of_range_rows(&report), outside);
    assert_eq!(report.drifted_rows, 3 + 2);
    assert!(!env.clickhouse_conversations().await.iter().any(|c| outside.contains(&c.id)));

    // The operator corrects one row's times; the next repair mirrors it.
    sql(
        &env,
        &format!(
            "UPDATE conversations SET started_at = '2025-06-01 00:00Z', ended_at = '2025-06-01 00:05Z' WHERE id = {old}"
        ),
    )
    .await;
    let response =
        analytics.audit(AuditRequest { repair: true, ..Default::default() }).await.unwrap().into_inner();
    let report = response.report.unwrap();
    assert_eq!(report.rows.iter().find(|r| r.id == old).map(|r| r.kind), Some(pb::DriftKind::Missing as i32));
    let repair = response.repair.unwrap();
    assert_eq!(repair.job_ids.len(), 1, "{repair:?}");
    audit::wait_for_jobs(&env.store, &repair.job_ids, Duration::from_secs(60)).await.unwrap();
    let report = analytics.audit(AuditRequest::default()).await.unwrap().into_inner().report.unwrap();
    assert_eq!(out_of_range_rows(&report), BTreeSet::from([future, long]));
    assert_eq!(report.drifted_rows, 2 + 2);
    assert!(env.clickhouse_conversations().await.iter().any(|c| c.id == old));
}
