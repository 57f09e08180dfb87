//! The words of a job's progress, end to end: `pages_done` counts the pages
//! of the batch-size settings, `checkpoints_done` the checkpoint commits
//! (every `REINDEX_WRITE_ROWS` rows, or 5 s, or at the end), and the
//! deprecated `batches_done` keeps meaning checkpoint commits for older
//! clients.

use scorekeeper_proto::coaching::ScorecardTemplateType as Kind;
use scorekeeper_proto::v1::{ActivityProgress, ReindexConversationsPayload};
use scorekeeper_sync::reindex::ReindexSettings;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Options, bulk_import};

use scorekeeper_tests::jobs::{
    CONVERSATION_ACTIVITY, PROCESS_ACTIVITY, reindex_request, run_job, scorecard_types,
};

/// Conversations per page of the conversation activity.
const CONVERSATIONS_PER_PAGE: i64 = 7;
/// Pages of the conversation activity: the job of 14 pages of 7.
const CONVERSATION_PAGES: i64 = 14;
/// Rows of one conversation page: each bulk-imported conversation has one
/// conversation scorecard with two scores.
const CONVERSATION_PAGE_ROWS: i64 = CONVERSATIONS_PER_PAGE * 4;
/// Pages whose rows reach `write_rows`: a checkpoint covers at least these.
const PAGES_PER_CHECKPOINT: i64 = 4;
/// Process scorecards per page of the process activity.
const PROCESS_SCORECARDS_PER_PAGE: i64 = 2;

/// Pages of `per_page` that `items` fill (the last one may be short).
fn pages(items: i64, per_page: i64) -> i64 {
    (items as u64).div_ceil(per_page as u64) as i64
}

/// `batches_done`, the deprecated field, as an older client reads it.
#[allow(deprecated)]
fn batches_done(activity: &ActivityProgress) -> i64 {
    activity.batches_done
}

#[tokio::test]
async fn progress_counts_pages_and_checkpoints_under_their_own_names() {
    let write_rows = (PAGES_PER_CHECKPOINT * CONVERSATION_PAGE_ROWS) as usize;
    let reindex = ReindexSettings { write_rows, ..ReindexSettings::default() };
    let env = TestEnv::start_with(Options { dispatcher: false, reindex, ..Options::default() }).await;
    let customer = env.customer("acme").await;
    let data = bulk_import(&env.store, customer.id, CONVERSATION_PAGES * CONVERSATIONS_PER_PAGE).await;
    assert!(data.process_scorecards > PROCESS_SCORECARDS_PER_PAGE, "several process pages: {data:?}");

    let case = "14 pages of 7, a checkpoint every 4 pages' rows";
    let request = reindex_request(ReindexConversationsPayload {
        customer_id: customer.id.0,
        reindex_scorecard_types: scorecard_types(&[Kind::Conversation, Kind::Process]),
        conversations_batch_size: CONVERSATIONS_PER_PAGE as i32,
        process_scorecards_batch_size: PROCESS_SCORECARDS_PER_PAGE as i32,
        ..Default::default()
    });
    let job = run_job(&mut customer.jobs(), request, case).await;
    env.assert_scorecards_mirrored().await;

    let names: Vec<&str> = job.progress.iter().map(|p| p.activity.as_str()).collect();
    assert_eq!(names, [CONVERSATION_ACTIVITY, PROCESS_ACTIVITY], "{case}");
    let (conversations, process) = (&job.progress[0], &job.progress[1]);
    assert_eq!(
        conversations.rows_done,
        CONVERSATION_PAGES * CONVERSATION_PAGE_ROWS,
        "{case}: every row once: {conversations:?}"
    );
    assert_eq!(conversations.pages_done, CONVERSATION_PAGES, "{case}: {conversations:?}");
    // A checkpoint is committed once its rows reach write_rows (or 5 s
    // pass, or the pages end): never more often than every 4 pages here,
    // so at least 14 / 4 rounded up, and fewer than one per page.
    let fewest = pages(CONVERSATION_PAGES, PAGES_PER_CHECKPOINT);
    assert!(
        (fewest..CONVERSATION_PAGES).contains(&conversations.checkpoints_done),
        "{case}: {fewest} to {} checkpoints: {conversations:?}",
        CONVERSATION_PAGES - 1
    );

    // The process activity's pages (2 scorecards and their scores, 4 rows)
    // all fit below write_rows: they share the checkpoints.
    let process_pages = pages(data.process_scorecards, PROCESS_SCORECARDS_PER_PAGE);
    assert_eq!(process.pages_done, process_pages, "{case}: {process:?}");
    assert!(
        (1..process_pages).contains(&process.checkpoints_done),
        "{case}: fewer checkpoints than pages: {process:?}"
    );

    for activity in &job.progress {
        assert_eq!(
            batches_done(activity),
            activity.checkpoints_done,
            "{case}: batches_done keeps counting checkpoint commits: {activity:?}"
        );
    }
}
