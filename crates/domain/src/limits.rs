//! Request limits, checked by the API before anything is written. Documented
//! in docs/operations.md; change both together.

/// Longest name, external id or agent id, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest message text, in bytes.
pub const MAX_MESSAGE_TEXT_BYTES: usize = 16 * 1024;
/// Longest AutoQA pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Most criteria on one template.
pub const MAX_CRITERIA_PER_TEMPLATE: usize = 100;
/// Most scores in one create or update.
pub const MAX_SCORES_PER_SCORECARD: usize = MAX_CRITERIA_PER_TEMPLATE;
/// Most conversations linked to one process scorecard.
pub const MAX_LINKED_CONVERSATIONS: usize = 1000;
/// Most conversations in one UpsertConversations call.
pub const MAX_CONVERSATIONS_PER_UPSERT: usize = 500;
/// Most messages in one conversation.
pub const MAX_MESSAGES_PER_CONVERSATION: usize = 5000;
/// Most message text in one conversation, its messages' texts together, in
/// bytes: a long call's transcript is tens of KiB.
pub const MAX_TRANSCRIPT_TEXT_BYTES: usize = 4 << 20;
/// Most message text in one UpsertConversations call, in bytes.
pub const MAX_UPSERT_TEXT_BYTES: usize = 12 << 20;
/// Most messages in one UpsertConversations call. With the text limit it
/// keeps the largest valid request under the gRPC message limit
/// (`scorekeeper_proto::MAX_MESSAGE_BYTES`, 16 MiB: at most 13.7 MiB with
/// every limit reached; checked by a test of the API).
pub const MAX_MESSAGES_PER_UPSERT: usize = 100_000;
/// Most explicit ids in BatchIndexConversations or AutoscoreConversations.
pub const MAX_IDS_PER_BATCH: usize = 10_000;
/// Largest page of a List call; 0 asks for the default.
pub const MAX_PAGE_SIZE: usize = 500;
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest criterion weight. Bounds keep the weighted total exact enough to
/// compare across Postgres and ClickHouse and far from overflow.
pub const MAX_CRITERION_WEIGHT: f64 = 1000.0;
/// Largest magnitude of a criterion's min_value or max_value.
pub const MAX_CRITERION_VALUE_MAGNITUDE: f64 = 1e9;
