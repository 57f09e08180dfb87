//! The two-customer world the reindex and job tests start from, written
//! through the API and then left in Postgres only, and [`Truth`]: Postgres
//! as the mirror readers see it, cut into the rows a scope must copy.

use chrono::DateTime;
use scorekeeper_analytics::rows::{self, OutOfMirrorRange};
use scorekeeper_domain::mirror::{ConversationRecord, MirrorBatch};
use scorekeeper_domain::reindex::{KeyRange, ReindexScope, TimeBase, TimeWindow};
use scorekeeper_proto::coaching as pb;

use crate::env::Options;
use crate::fixtures::{
    T0, conversation_scorecard, conversation_template, conversations, create_scorecards, process_scorecard,
    process_template,
};
use crate::mirror::{Rows, clickhouse_rows};
use crate::{Customer, TestEnv};

/// A day in seconds.
pub const DAY: i64 = 86_400;

/// One customer's part of the world.
pub struct Side {
    pub customer: Customer,
    pub conversation_template: pb::ScorecardTemplate,
    pub process_template: pb::ScorecardTemplate,
    /// Conversation `i` started at `T0 + i days`.
    pub conversations: Vec<i64>,
    /// The first conversation scorecard of each conversation (conversation
    /// 0 has a second one).
    pub cards: Vec<i64>,
    /// Process scorecards, in the order of their links.
    pub process: Vec<i64>,
}

impl Side {
    /// `count` conversations a day apart, a conversation scorecard on
    /// each (two on the first), and a process scorecard per entry of
    /// `links` (indexes into the conversations) created at `T0 + days`.
    async fn build(env: &TestEnv, name: &str, count: usize, links: &[(&[usize], f64)]) -> Side {
        let customer = env.customer(name).await;
        let conversation_template = conversation_template(&customer).await;
        let process_template = process_template(&customer).await;
        let conversations: Vec<i64> = conversations(&customer, count).await.iter().map(|c| c.id).collect();
        // As a bulk import would: conversation i starts on day i.
        let client = env.store.pool().get().await.expect("a Postgres connection");
        for (i, id) in conversations.iter().enumerate() {
            let started = (T0 + i as i64 * DAY) as f64;
            client
                .execute(
                    "UPDATE conversations SET started_at = to_timestamp($2), ended_at = to_timestamp($2 + 600)
                     WHERE id = $1",
                    &[id, &started],
                )
                .await
                .expect("spreading the conversations over days");
        }
        let card = |i: usize| {
            conversation_scorecard(&conversation_template, conversations[i], &[(i % 6) as f64, 7.0])
        };
        // The second scorecard of conversation 0 comes last.
        let mut cards =
            create_scorecards(&customer, (0..conversations.len()).chain([0]).map(card).collect()).await;
        cards.pop();
        let process_cards = links
            .iter()
            .enumerate()
            .map(|(k, (linked, _))| {
                process_scorecard(
                    &process_template,
                    format!("lead-{k}"),
                    linked.iter().map(|&i| conversations[i]).collect(),
                    &[(k % 5) as f64],
                )
            })
            .collect();
        let process = create_scorecards(&customer, process_cards).await;
        // And process scorecards created over days.
        for (id, (_, created_days)) in process.iter().zip(links) {
            let created = T0 as f64 + created_days * DAY as f64;
            client
                .execute("UPDATE scorecards SET created_at = to_timestamp($2) WHERE id = $1", &[id, &created])
                .await
                .expect("back-dating a process scorecard");
        }
        Side { customer, conversation_template, process_template, conversations, cards, process }
    }

    /// Deletes a scorecard through the API.
    pub async fn delete(&self, id: i64) {
        self.customer
            .scorecards()
            .delete_scorecard(pb::DeleteScorecardRequest { id })
            .await
            .expect("deleting a scorecard");
    }

    /// Replaces a scorecard's scores through the API.
    pub async fn update(&self, id: i64, scores: Vec<pb::Score>) {
        self.customer
            .scorecards()
            .update_scorecard(pb::UpdateScorecardRequest { id, scores, ..Default::default() })
            .await
            .expect("updating a scorecard");
    }
}

/// Two customers' conversations and scorecards, in Postgres only:
///
/// * A: conversations a0..a5 (external ids c0..c5; a_i started on day i,
///   that is at `T0 + i` days); a conversation scorecard on each, two on
///   a0, the one on a3 deleted; process scorecards P0 (links a0, a1;
///   created on day 0.5), P1 (a3; day 1), P2 (none; day 4), P3 (a4, a5;
///   day 2.5; deleted).
/// * B: conversations b0..b2 with a scorecard each, the one on b1 deleted;
///   Q0 (links b0; created day 2).
pub struct World {
    pub a: Side,
    pub b: Side,
    /// Every scorecard and score as it was before the deletes.
    pub before_deletes: MirrorBatch,
}

impl World {
    /// A fresh environment (outbox dispatcher off, job worker on) holding
    /// the world in Postgres and nothing in ClickHouse.
    pub async fn start() -> (TestEnv, World) {
        World::start_with(Options { dispatcher: false, ..Default::default() }).await
    }

    /// As [`World::start`] with other options; the dispatcher must be off,
    /// or the world would not stay in Postgres only.
    pub async fn start_with(options: Options) -> (TestEnv, World) {
        let env = TestEnv::start_with(options).await;
        let (a, b) = tokio::join!(
            Side::build(&env, "acme", 6, &[(&[0, 1], 0.5), (&[3], 1.0), (&[], 4.0), (&[4, 5], 2.5)]),
            Side::build(&env, "globex", 3, &[(&[0], 2.0)]),
        );
        let before_deletes = env.postgres_scorecards().await;
        tokio::join!(a.delete(a.cards[3]), a.delete(a.process[3]), b.delete(b.cards[1]));
        let client = env.store.pool().get().await.expect("a Postgres connection");
        client.execute("DELETE FROM outbox", &[]).await.expect("emptying the outbox");
        assert_eq!(clickhouse_rows(&env).await, Rows::default(), "the world must start in Postgres only");
        (env, World { a, b, before_deletes })
    }
}

/// Postgres now, as the mirror readers see it (deleted rows included).
pub struct Truth {
    /// Both customers' conversations.
    pub conversations: Vec<ConversationRecord>,
    /// Every scorecard and score.
    pub scorecards: MirrorBatch,
}

impl Truth {
    pub async fn read(env: &TestEnv, world: &World) -> Truth {
        let mut conversations = Vec::new();
        for side in [&world.a, &world.b] {
            let everything = ReindexScope {
                customer_id: Some(side.customer.id),
                window: Some(TimeWindow {
                    start: DateTime::UNIX_EPOCH,
                    end: DateTime::from_timestamp(T0 + 3650 * DAY, 0).expect("a valid time"),
                    base: TimeBase::ConversationStart,
                }),
                conversation_ids: Vec::new(),
            };
            conversations.extend(
                env.store
                    .conversations_in_scope(&everything, KeyRange::ALL, 10_000)
                    .await
                    .expect("reading conversations"),
            );
        }
        Truth { conversations, scorecards: env.postgres_scorecards().await }
    }

    /// The conversation scorecards of these conversations.
    pub fn cards_of(&self, conversations: &[i64]) -> Vec<i64> {
        self.scorecards
            .scorecards
            .iter()
            .filter(|s| !s.template_type.is_process())
            .filter(|s| s.conversation_id.is_some_and(|c| conversations.contains(&c.0)))
            .map(|s| s.id.0)
            .collect()
    }

    /// The rows of these conversations and scorecards, with every score of
    /// the scorecards; deleted rows as tombstones.
    pub fn rows(&self, conversations: &[i64], scorecards: &[i64]) -> Rows {
        let mut rows = Rows {
            conversations: pick(&self.conversations, |c| conversations.contains(&c.id.0)),
            scorecards: pick(&self.scorecards.scorecards, |s| scorecards.contains(&s.id.0)),
            scores: pick(&self.scorecards.scores, |s| scorecards.contains(&s.scorecard_id.0)),
        };
        assert_eq!(
            rows.conversations.len(),
            conversations.len(),
            "the test asks for conversations Postgres does not hold"
        );
        assert_eq!(
            rows.scorecards.len(),
            scorecards.len(),
            "the test asks for scorecards Postgres does not hold"
        );
        rows.sort();
        rows
    }

    /// What a reindex of `conversations` (with their conversation
    /// scorecards) and of the `process` scorecards must write.
    pub fn scope(&self, conversations: &[i64], process: &[i64]) -> Rows {
        let mut scorecards = self.cards_of(conversations);
        scorecards.extend_from_slice(process);
        self.rows(conversations, &scorecards)
    }

    /// Everything of `side`, both scorecard types.
    pub fn all_of(&self, side: &Side) -> Rows {
        self.scope(&side.conversations, &side.process)
    }
}

/// The ClickHouse rows of the records `keep` accepts.
fn pick<R, T>(records: &[R], keep: impl Fn(&R) -> bool) -> Vec<T>
where
    T: for<'r> TryFrom<&'r R, Error = OutOfMirrorRange>,
{
    rows::encode_all(records.iter().filter(|r| keep(r))).expect("a time ClickHouse holds")
}
