//! Wire compatibility of `ActivityProgress` across the addition of
//! `pages_done` and `checkpoints_done`: a message of a server that predates
//! them decodes (the new fields read 0), and an older client decoding a
//! message of today still reads `batches_done` as it always did.

use prost::Message;
use scorekeeper_proto::v1::ActivityProgress;

/// `scorekeeper.v1.ActivityProgress` as it was before the two fields, with
/// the same numbers.
#[derive(Clone, PartialEq, Message)]
struct ActivityProgressBefore {
    #[prost(string, tag = "1")]
    activity: String,
    #[prost(int64, tag = "2")]
    rows_done: i64,
    #[prost(int64, tag = "3")]
    batches_done: i64,
    #[prost(double, tag = "4")]
    rows_per_second: f64,
    #[prost(string, tag = "5")]
    checkpoint: String,
    #[prost(bool, tag = "6")]
    finished: bool,
    #[prost(int64, tag = "7")]
    rows_estimated: i64,
}

fn before() -> ActivityProgressBefore {
    ActivityProgressBefore {
        activity: "reindex_conversations".into(),
        rows_done: 392,
        batches_done: 4,
        rows_per_second: 1200.0,
        checkpoint: r#"{"phase":"conversations","after":98}"#.into(),
        finished: true,
        rows_estimated: 392,
    }
}

#[test]
#[allow(deprecated)]
fn a_message_without_the_new_fields_decodes_with_them_zero() {
    let old = before();
    let decoded = ActivityProgress::decode(old.encode_to_vec().as_slice()).expect("an old message decodes");
    assert_eq!(
        decoded,
        ActivityProgress {
            activity: old.activity,
            rows_done: old.rows_done,
            batches_done: old.batches_done,
            rows_per_second: old.rows_per_second,
            checkpoint: old.checkpoint,
            finished: old.finished,
            rows_estimated: old.rows_estimated,
            pages_done: 0,
            checkpoints_done: 0,
            partitions: Vec::new(),
            partitions_done: 0,
            partitions_total: 0,
        }
    );
}

#[test]
#[allow(deprecated)]
fn an_older_client_reads_batches_done_and_skips_the_new_fields() {
    let old = before();
    let today = ActivityProgress {
        activity: old.activity.clone(),
        rows_done: old.rows_done,
        batches_done: old.batches_done,
        rows_per_second: old.rows_per_second,
        checkpoint: old.checkpoint.clone(),
        finished: old.finished,
        rows_estimated: old.rows_estimated,
        pages_done: 14,
        checkpoints_done: old.batches_done,
        partitions: Vec::new(),
        partitions_done: 1,
        partitions_total: 3,
    };
    let decoded =
        ActivityProgressBefore::decode(today.encode_to_vec().as_slice()).expect("today's message decodes");
    assert_eq!(decoded, old, "an older client sees what it saw before");
}
