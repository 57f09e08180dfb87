//! What the largest valid writes cost a real `serve` process in memory:
//! four UpsertConversations calls at once, each 12 MiB of text (the most a
//! call may carry), against its peak resident memory (RELIABILITY.md).

use scorekeeper_proto::v1::{self, Speaker};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use scorekeeper_tests::fixtures::{T0, conversation};
use scorekeeper_tests::process::serve;

/// Serve's peak RSS may grow by at most this under the four calls.
const GROWTH_CEILING_KB: u64 = 512 * 1024;

#[tokio::test]
async fn four_of_the_largest_writes_at_once_cost_bounded_memory() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let mut child =
        serve(env!("CARGO_BIN_EXE_scorekeeper"), &env).spawn().expect("starting scorekeeper serve");
    child.wait_healthy(std::time::Duration::from_secs(30)).await.expect("serve is healthy");
    let customer = env.customer_at("big", &child.grpc_url()).await;
    let page = "é".repeat(8 * 1024);
    let lines: Vec<(Speaker, &str)> = (0..256).map(|_| (Speaker::Agent, page.as_str())).collect();
    let before = child.peak_rss_kib().expect("serve runs");

    let calls: Vec<_> = (0..4)
        .map(|call| {
            let conversations =
                (0..3).map(|i| conversation(&format!("call-{call}-{i}"), "agent-1", T0, &lines)).collect();
            let mut client = customer.conversations();
            tokio::spawn(async move {
                client.upsert_conversations(v1::UpsertConversationsRequest { conversations }).await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("the largest valid call");
    }
    let after = child.peak_rss_kib().expect("serve runs");
    eprintln!(
        "4 concurrent UpsertConversations of 12 MiB of text each: serve's peak RSS {} MB before, {} MB after",
        before / 1024,
        after / 1024
    );
    assert!(after - before < GROWTH_CEILING_KB, "peak RSS grew by {} MB", (after - before) / 1024);
}
