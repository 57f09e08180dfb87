//! Reindex scopes end to end: for every combination of scorecard types,
//! explicit conversations, time windows (on the conversation start and on
//! the last update), customer and batch sizes, a reindex job copies exactly
//! the rows in scope from Postgres to ClickHouse, column for column and
//! tombstones included, and nothing outside the scope.
//!
//! Every test starts from a world that lives in Postgres only (written
//! through the API with the outbox dispatcher off, then the outbox emptied),
//! so whatever ClickHouse holds afterwards came from the job.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use scorekeeper_analytics::WritePath;
use scorekeeper_analytics::rows::ScorecardRow;
use scorekeeper_domain::mirror::MirrorBatch;
use scorekeeper_domain::reindex::{ReindexActivity, ReindexScope, TimeBase, TimeWindow};
use scorekeeper_domain::{ConversationId, CustomerId};
use scorekeeper_proto::coaching::ScorecardTemplateType as Kind;
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1::{self, Job, ReindexConversationsPayload, ReindexTimeBase};
use scorekeeper_sync::reindex::ReindexSettings;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::fixtures::*;
use scorekeeper_tests::jobs::{
    CONVERSATION_ACTIVITY, PROCESS_ACTIVITY, create_job, reindex_request, run_job, scorecard_types,
};
use scorekeeper_tests::mirror::{Rows, assert_clickhouse_holds, clickhouse_rows};
use scorekeeper_tests::world::{DAY, Side, Truth, World};
use scorekeeper_tests::{Customer, TestEnv};
use tonic::Code;

/// The job's activities in order, all finished, each with at least the
/// rows of its scope done; exactly those unless `resent` (a lookback by
/// update may send a row twice: a changed score with its changed scorecard,
/// then in the pass of changed scores).
fn assert_progress(case: &str, job: &Job, expected: &[(&str, i64)], resent: bool) {
    let names: Vec<&str> = job.progress.iter().map(|p| p.activity.as_str()).collect();
    let wanted: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(names, wanted, "{case}: the job's activities");
    for (progress, (name, rows)) in job.progress.iter().zip(expected) {
        assert!(progress.finished, "{case}: activity {name} is not finished: {progress:?}");
        let counted = if resent { progress.rows_done >= *rows } else { progress.rows_done == *rows };
        let bound = if resent { "at least" } else { "exactly" };
        assert!(counted, "{case}: rows_done of {name} should be {bound} {rows}: {progress:?}");
    }
}

fn payload(customer: &Customer, types: &[Kind]) -> ReindexConversationsPayload {
    ReindexConversationsPayload {
        customer_id: customer.id.0,
        reindex_scorecard_types: scorecard_types(types),
        ..Default::default()
    }
}

/// The progress a job of these scorecard types must show, as the proto
/// documents it: conversation first (also when no type is given), then
/// process, with every row of `expected` counted.
fn progress_of(types: &[i32], expected: &Rows) -> Vec<(&'static str, i64)> {
    let mut progress = Vec::new();
    if types.is_empty() || types.contains(&(Kind::Conversation as i32)) {
        progress.push((CONVERSATION_ACTIVITY, expected.activity_rows(false)));
    }
    if types.contains(&(Kind::Process as i32)) {
        progress.push((PROCESS_ACTIVITY, expected.activity_rows(true)));
    }
    progress
}

/// Runs a reindex of `payload` as `caller`, then checks ClickHouse holds
/// exactly `expected` and the job's progress agrees with it.
async fn check_scope(
    env: &TestEnv,
    caller: &Customer,
    case: &str,
    payload: ReindexConversationsPayload,
    expected: &Rows,
) -> Job {
    let progress = progress_of(&payload.reindex_scorecard_types, expected);
    let by_update = payload.start_time.is_some() && payload.time_base == ReindexTimeBase::UpdatedAt as i32;
    let job = run_job(&mut caller.jobs(), reindex_request(payload), case).await;
    assert_clickhouse_holds(env, case, expected).await;
    assert_progress(case, &job, &progress, by_update);
    job
}

/// The conversation-only scope of A: its conversations, conversation
/// scorecards and their scores; never a process scorecard.
async fn assert_conversation_scope(case: &str, types: &[Kind]) {
    let (env, world) = World::start().await;
    let truth = Truth::read(&env, &world).await;
    let expected = truth.scope(&world.a.conversations, &[]);
    assert!(expected.scorecards.iter().all(|s| s.is_process_scorecard == 0));
    check_scope(&env, &world.a.customer, case, payload(&world.a.customer, types), &expected).await;
    assert!(
        clickhouse_rows(&env).await.scorecards.iter().all(|s| s.is_process_scorecard == 0),
        "{case}: the conversation activity wrote a process scorecard"
    );
}

#[tokio::test]
async fn no_scorecard_types_reindexes_conversations_only() {
    assert_conversation_scope("old client, no scorecard types", &[]).await;
}

#[tokio::test]
async fn conversation_type_reindexes_conversations_only() {
    assert_conversation_scope("[CONVERSATION]", &[Kind::Conversation]).await;
}

#[tokio::test]
async fn process_type_reindexes_process_scorecards_only() {
    let (env, world) = World::start().await;
    let truth = Truth::read(&env, &world).await;
    let expected = truth.scope(&[], &world.a.process);
    let case = "[PROCESS]";
    check_scope(&env, &world.a.customer, case, payload(&world.a.customer, &[Kind::Process]), &expected).await;
    let written = clickhouse_rows(&env).await;
    assert!(written.conversations.is_empty(), "{case}: no conversation may be written");
    assert!(
        written.scorecards.iter().all(|s| s.is_process_scorecard == 1)
            && written.scores.iter().all(|s| s.is_process_scorecard == 1),
        "{case}: only process scorecards and their scores may be written"
    );
}

#[tokio::test]
async fn both_types_run_conversation_then_process() {
    let (env, world) = World::start().await;
    let truth = Truth::read(&env, &world).await;
    let expected = truth.all_of(&world.a);
    // Asked for in the other order: conversation still runs first.
    let case = "[PROCESS, CONVERSATION]";
    let types = [Kind::Process, Kind::Conversation];
    let job = check_scope(&env, &world.a.customer, case, payload(&world.a.customer, &types), &expected).await;
    assert!(job.progress.iter().all(|p| p.rows_done > 0 && p.batches_done > 0), "{case}: {:?}", job.progress);
    assert!(
        job.progress.iter().all(|p| p.pages_done > 0 && p.checkpoints_done > 0),
        "{case}: {:?}",
        job.progress
    );
}

#[tokio::test]
async fn explicit_conversations_bring_their_scorecards_and_linked_process_scorecards() {
    let (env, world) = World::start().await;
    let truth = Truth::read(&env, &world).await;
    let (a, b) = (&world.a, &world.b);
    // a0 (two scorecards, linked from P0) and a3 (scorecard deleted, linked
    // from P1); b0 belongs to another customer and must be left out.
    let expected = truth.scope(&[a.conversations[0], a.conversations[3]], &[a.process[0], a.process[1]]);
    assert_eq!(expected.scorecards.len(), 5, "two on a0, one on a3, P0 and P1");
    let case = "explicit conversation ids";
    let ids = vec![a.conversations[0], a.conversations[3], b.conversations[0]];
    let types = [Kind::Conversation, Kind::Process];
    check_scope(
        &env,
        &a.customer,
        case,
        ReindexConversationsPayload { conversation_ids: ids, ..payload(&a.customer, &types) },
        &expected,
    )
    .await;
}

#[tokio::test]
async fn conversation_start_window_covers_conversations_started_and_process_scorecards_created_in_it() {
    let (env, world) = World::start().await;
    let truth = Truth::read(&env, &world).await;
    let a = &world.a;
    // [day 1, day 4): a1..a3 (a4 starts exactly at the end), P1 (created
    // exactly at the start) and P3 (deleted); not P0, although linked to a1,
    // nor P2, created exactly at the end, nor B's Q0, created on day 2.
    let expected = truth.scope(&a.conversations[1..4], &[a.process[1], a.process[3]]);
    let case = "window on the conversation start";
    check_scope(
        &env,
        &a.customer,
        case,
        ReindexConversationsPayload {
            start_time: ts(T0 + DAY),
            end_time: ts(T0 + 4 * DAY),
            time_base: ReindexTimeBase::ConversationStart as i32,
            ..payload(&a.customer, &[Kind::Conversation, Kind::Process])
        },
        &expected,
    )
    .await;
}

/// The progress estimate counts the rows each activity writes. Without
/// planner statistics (autovacuum is off here, as on a fresh table) the
/// scores are counted too, so the estimate is exact for every scope form.
#[tokio::test]
async fn the_estimate_counts_the_rows_of_every_scope_form() {
    let (env, world) = World::start().await;
    let client = env.store.pool().get().await.expect("a Postgres connection");
    for table in ["conversations", "scorecards", "scores"] {
        client
            .execute(&format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"), &[])
            .await
            .expect("turning autovacuum off");
    }
    let truth = Truth::read(&env, &world).await;
    let (a, b) = (&world.a, &world.b);
    let at = |seconds: i64| DateTime::from_timestamp(seconds, 0).expect("a valid time");
    let customer = |side: &Side| ReindexScope { customer_id: Some(side.customer.id), ..Default::default() };
    let everything = {
        let mut rows = truth.all_of(a);
        let of_b = truth.all_of(b);
        rows.conversations.extend(of_b.conversations);
        rows.scorecards.extend(of_b.scorecards);
        rows.scores.extend(of_b.scores);
        rows
    };
    let cases = [
        ("customer a", customer(a), truth.all_of(a)),
        ("every customer", ReindexScope::default(), everything),
        (
            "explicit conversations",
            ReindexScope {
                conversation_ids: vec![
                    ConversationId(a.conversations[0]),
                    ConversationId(a.conversations[3]),
                ],
                ..customer(a)
            },
            truth.scope(&[a.conversations[0], a.conversations[3]], &[a.process[0], a.process[1]]),
        ),
        (
            "window on the conversation start",
            ReindexScope {
                window: Some(TimeWindow {
                    start: at(T0 + DAY),
                    end: at(T0 + 4 * DAY),
                    base: TimeBase::ConversationStart,
                }),
                ..customer(a)
            },
            truth.scope(&a.conversations[1..4], &[a.process[1], a.process[3]]),
        ),
    ];
    for (case, scope, expected) in cases {
        for (activity, process) in
            [(ReindexActivity::Conversations, false), (ReindexActivity::ProcessScorecards, true)]
        {
            let estimate = env.store.reindex_estimate(&scope, activity).await.expect("an estimate");
            assert_eq!(estimate, expected.activity_rows(process), "{case}: estimate of {activity:?}");
        }
    }
}

/// Postgres's clock, to the microsecond.
async fn postgres_now(env: &TestEnv) -> DateTime<Utc> {
    let client = env.store.pool().get().await.expect("a Postgres connection");
    client.query_one("SELECT clock_timestamp()", &[]).await.expect("reading the clock").get(0)
}

/// Both scorecard types of the customer's rows updated since `since`.
fn lookback(customer: &Customer, since: DateTime<Utc>) -> ReindexConversationsPayload {
    ReindexConversationsPayload {
        start_time: Some(to_timestamp(since)),
        end_time: Some(to_timestamp(since + chrono::Duration::minutes(10))),
        time_base: ReindexTimeBase::UpdatedAt as i32,
        ..payload(customer, &[Kind::Conversation, Kind::Process])
    }
}

#[tokio::test]
async fn updated_at_window_covers_exactly_the_rows_changed_in_it() {
    let (env, world) = World::start().await;
    let (a, b) = (&world.a, &world.b);
    let since = postgres_now(&env).await;
    a.update(a.cards[1], scores(&a.conversation_template, &[1.0])).await; // drops a score
    a.update(a.process[0], scores(&a.process_template, &[3.0])).await;
    a.delete(a.cards[4]).await;
    a.customer
        .conversations()
        .upsert_conversations(v1::UpsertConversationsRequest {
            conversations: vec![conversation("c2", "agent-moved", T0 + 2 * DAY, &[])],
        })
        .await
        .expect("moving a conversation to another agent");
    // Another customer's change in the window stays out.
    b.update(b.cards[0], scores(&b.conversation_template, &[2.0, 2.0])).await;

    let truth = Truth::read(&env, &world).await;
    let changed = [a.cards[1], a.process[0], a.cards[4]];
    let expected = truth.rows(&[a.conversations[2]], &changed);
    // The test's idea of "changed" is Postgres's.
    let of_a = |customer: CustomerId| customer == a.customer.id;
    let changed_conversations: Vec<i64> = truth
        .conversations
        .iter()
        .filter(|c| of_a(c.customer_id) && c.updated_at >= since)
        .map(|c| c.id.0)
        .collect();
    assert_eq!(changed_conversations, [a.conversations[2]], "conversations of A changed since {since}");
    let changed_scorecards: BTreeSet<i64> = truth
        .scorecards
        .scorecards
        .iter()
        .filter(|s| of_a(s.customer_id) && s.updated_at >= since)
        .map(|s| s.id.0)
        .collect();
    assert_eq!(changed_scorecards, expected.scorecard_ids(), "scorecards of A changed since {since}");
    let changed_scores =
        truth.scorecards.scores.iter().filter(|s| of_a(s.customer_id) && s.updated_at >= since);
    assert_eq!(
        changed_scores.count(),
        expected.scores.len(),
        "every score of the changed scorecards changed"
    );

    let case = "window on the last update";
    check_scope(&env, &a.customer, case, lookback(&a.customer, since), &expected).await;
}

/// `batch` restricted to one customer.
fn only(batch: &MirrorBatch, customer: CustomerId) -> MirrorBatch {
    MirrorBatch {
        conversations: batch.conversations.iter().filter(|c| c.customer_id == customer).cloned().collect(),
        scorecards: batch.scorecards.iter().filter(|s| s.customer_id == customer).cloned().collect(),
        scores: batch.scores.iter().filter(|s| s.customer_id == customer).cloned().collect(),
    }
}

/// A lookback must also resend the scores of a scorecard changed in the
/// window: a score row carries its scorecard's agent and deletion, and its
/// version is the later of the score's and the scorecard's.
#[tokio::test]
async fn updated_at_window_repairs_what_a_hand_fix_to_a_scorecard_changed() {
    let (env, world) = World::start().await;
    let a = &world.a;
    // ClickHouse starts equal to Postgres for A.
    let truth = Truth::read(&env, &world).await;
    let full = MirrorBatch { conversations: truth.conversations.clone(), ..truth.scorecards.clone() };
    env.analytics.write(WritePath::Reindex, &only(&full, a.customer.id)).await.expect("a full copy");
    assert_clickhouse_holds(&env, "before the fix", &truth.all_of(a)).await;

    // Hand fixes in SQL touch scorecards only; their scores' rows in
    // ClickHouse carry the scorecard's agent and deletion.
    let since = postgres_now(&env).await;
    let client = env.store.pool().get().await.expect("a Postgres connection");
    let fix = "UPDATE scorecards SET agent_id = 'agent-fixed' WHERE id = $1";
    client.execute(fix, &[&a.process[2]]).await.expect("moving a scorecard to another agent");
    let delete = "UPDATE scorecards SET deleted_at = now() WHERE id = $1";
    client.execute(delete, &[&a.cards[5]]).await.expect("deleting a scorecard by hand");

    let case = "lookback after a hand fix";
    let request = reindex_request(lookback(&a.customer, since));
    run_job(&mut a.customer.jobs(), request, case).await;
    assert_clickhouse_holds(&env, case, &Truth::read(&env, &world).await.all_of(a)).await;
}

#[tokio::test]
async fn all_customers_needs_an_admin_token() {
    let (env, world) = World::start().await;
    let (a, b) = (&world.a, &world.b);
    let types = [Kind::Conversation, Kind::Process];
    for (case, customer_id) in [("all customers", 0), ("the other customer", b.customer.id.0)] {
        let refused = create_job(
            &mut a.customer.jobs(),
            reindex_request(ReindexConversationsPayload { customer_id, ..payload(&a.customer, &types) }),
        )
        .await;
        let status = refused.err().unwrap_or_else(|| panic!("{case}: a customer token was allowed"));
        assert_eq!(status.code(), Code::PermissionDenied, "{case} with a customer token: {status:?}");
    }
    let jobs = env.jobs.count_jobs(&scorekeeper_jobs::JobFilter::default()).await.unwrap();
    assert_eq!(jobs, 0, "a refused CreateJob created a job");

    let truth = Truth::read(&env, &world).await;
    let expected = truth.all_of(a).merge(truth.all_of(b));
    let case = "admin, customer_id 0";
    let admin = env.admin(&a.customer).await;
    let job = check_scope(
        &env,
        &admin,
        case,
        ReindexConversationsPayload { customer_id: 0, ..payload(&a.customer, &types) },
        &expected,
    )
    .await;
    assert_eq!(job.customer_id, 0, "{case}: a job of all customers belongs to none");
}

#[tokio::test]
async fn deleted_scorecards_go_out_as_tombstones() {
    let (env, world) = World::start().await;
    let a = &world.a;
    // ClickHouse still holds A's scorecards as they were before the deletes.
    let stale = only(&world.before_deletes, a.customer.id);
    env.analytics.write(WritePath::Reindex, &stale).await.expect("writing the stale state");
    let deleted = [a.cards[3], a.process[3]];
    let live_ids = |rows: Vec<ScorecardRow>| rows.iter().map(|s| s.id).collect::<BTreeSet<_>>();
    let live = live_ids(env.clickhouse_scorecards().await);
    assert!(
        deleted.iter().all(|id| live.contains(id)),
        "precondition: the deleted scorecards are live in ClickHouse"
    );

    let truth = Truth::read(&env, &world).await;
    let expected = truth.all_of(a);
    let case = "tombstones";
    let types = [Kind::Conversation, Kind::Process];
    check_scope(&env, &a.customer, case, payload(&a.customer, &types), &expected).await;
    let live = live_ids(env.clickhouse_scorecards().await);
    assert!(deleted.iter().all(|id| !live.contains(id)), "{case}: a deleted scorecard is live: {live:?}");
    let live_scores = env.clickhouse_scores().await;
    assert!(
        live_scores.iter().all(|s| !deleted.contains(&s.scorecard_id)),
        "{case}: a score of a deleted scorecard is live"
    );
}

#[tokio::test]
async fn batch_sizes_split_the_work() {
    // A commit per page, so that batches_done counts pages.
    let reindex = ReindexSettings { write_rows: 1, ..ReindexSettings::default() };
    let (env, world) = World::start_with(Options { dispatcher: false, reindex, ..Default::default() }).await;
    let truth = Truth::read(&env, &world).await;
    let a = &world.a;
    let expected = truth.all_of(a);
    let case = "batch sizes 2 and 1";
    let job = check_scope(
        &env,
        &a.customer,
        case,
        ReindexConversationsPayload {
            conversations_batch_size: 2,
            process_scorecards_batch_size: 1,
            ..payload(&a.customer, &[Kind::Conversation, Kind::Process])
        },
        &expected,
    )
    .await;
    let batches: Vec<i64> = job.progress.iter().map(|p| p.batches_done).collect();
    let pages: Vec<i64> = job.progress.iter().map(|p| p.pages_done).collect();
    let checkpoints: Vec<i64> = job.progress.iter().map(|p| p.checkpoints_done).collect();
    assert_eq!(
        (&pages, &checkpoints),
        (&batches, &batches),
        "{case}: a checkpoint per page with write_rows 1"
    );
    let process = expected.scorecards.iter().filter(|s| s.is_process_scorecard == 1).count() as i64;
    assert_eq!(
        batches,
        [expected.conversations.len().div_ceil(2) as i64, process],
        "{case}: batches_done of the conversation and process activities"
    );
}
