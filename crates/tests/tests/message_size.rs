//! The transport limit and the request limits agree: the largest valid
//! writes go through (they did not fit tonic's default 4 MiB), text past a
//! limit is refused by field, and a request past the gRPC message limit
//! answers RESOURCE_EXHAUSTED naming it. Nothing refused is written.

use scorekeeper_proto::v1::{self, Speaker};
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::{Customer, Options};
use scorekeeper_tests::fixtures::{T0, conversation};
use tonic::Code;

/// 16 KiB of text, the most one message may hold.
fn page() -> String {
    "é".repeat(8 * 1024)
}

/// Conversations `tag-0..n`, each of `messages` messages of 16 KiB.
fn conversations(tag: &str, n: usize, messages: usize) -> Vec<v1::Conversation> {
    let page = page();
    let lines: Vec<(Speaker, &str)> = (0..messages).map(|_| (Speaker::Agent, page.as_str())).collect();
    (0..n).map(|i| conversation(&format!("{tag}-{i}"), "agent-1", T0, &lines)).collect()
}

async fn upsert(
    customer: &Customer,
    conversations: Vec<v1::Conversation>,
) -> Result<Vec<v1::Conversation>, tonic::Status> {
    // A client that sends whatever it is given: the server is what is tested.
    let mut client = customer.conversations().max_encoding_message_size(usize::MAX);
    let request = v1::UpsertConversationsRequest { conversations };
    client.upsert_conversations(request).await.map(|r| r.into_inner().conversations)
}

#[tokio::test]
async fn writes_up_to_the_limits_pass_and_larger_ones_are_refused_by_name() {
    let env = TestEnv::start_with(Options { dispatcher: false, worker: false, ..Options::default() }).await;
    let customer = env.customer("big").await;

    // 12 MiB of text, the most one call may carry: three conversations of
    // 4 MiB, the most one conversation may hold.
    let stored = upsert(&customer, conversations("most", 3, 256)).await.expect("the largest valid call");
    assert_eq!(stored.len(), 3);
    let read = customer
        .conversations()
        .get_conversation(v1::GetConversationRequest { id: stored[0].id, include_messages: true })
        .await
        .expect("the largest transcript is answered")
        .into_inner()
        .conversation
        .unwrap();
    assert_eq!(read.messages.len(), 256);

    let refused = upsert(&customer, conversations("long", 1, 257)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().starts_with("conversations[0].messages: "), "{}", refused.message());

    // 14 MiB of text in seven conversations of 2 MiB: under the message
    // limit, over the text a call may carry.
    let refused = upsert(&customer, conversations("many", 7, 128)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().starts_with("conversations: "), "{}", refused.message());

    // 17 MiB: refused before it is decoded.
    let refused = upsert(&customer, conversations("huge", 17, 64)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("larger than 16777216 bytes"), "{}", refused.message());

    assert_eq!(env.postgres_count("conversations").await, 3, "nothing refused was written");
}
