//! The reindex bench's dataset: generated in Postgres by set-based SQL in
//! one transaction, deterministic (every value derives from a row number),
//! and kept between runs: a `bench_dataset` row says which scale and
//! generator made it, so a second run of the same scale starts at once.
//!
//! Shape, per scale of N conversations: 5 customers, each with a
//! conversation template and a process template of 10 criteria; N
//! conversations over 90 days; 4 conversation scorecards per conversation
//! and N process scorecards (20 % of 5N), each process scorecard linked to
//! 2 conversations; 10 scores per scorecard; about 10 % of each table
//! soft-deleted. Scorecards of both types interleave in id order, and scores
//! follow their scorecard, as the API writes them.

use std::time::Instant;

use anyhow::Context;
use scorekeeper_store::Store;

/// Bump when the generated rows change, so older datasets are remade.
const GENERATOR: i32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// 20k conversations, 100k scorecards, 1M scores.
    S,
    /// 100k conversations, 500k scorecards, 5M scores.
    M,
    /// 400k conversations, 2M scorecards, 20M scores.
    L,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::S => "s",
            Scale::M => "m",
            Scale::L => "l",
        }
    }

    pub fn conversations(self) -> i64 {
        match self {
            Scale::S => 20_000,
            Scale::M => 100_000,
            Scale::L => 400_000,
        }
    }
}

/// Rows per table in the dataset.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct DatasetRows {
    pub conversations: i64,
    pub scorecards: i64,
    pub scores: i64,
}

impl DatasetRows {
    pub fn total(&self) -> i64 {
        self.conversations + self.scorecards + self.scores
    }
}

/// Makes sure the database holds the dataset of `scale`; returns its row
/// counts and whether it was generated now (with the time it took).
pub async fn ensure(store: &Store, scale: Scale) -> anyhow::Result<(DatasetRows, Option<f64>)> {
    let client = store.pool().get().await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_dataset (
                 scale text NOT NULL, generator integer NOT NULL, generated_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let made = client.query_opt("SELECT scale, generator FROM bench_dataset", &[]).await?;
    let current = made
        .as_ref()
        .is_some_and(|row| row.get::<_, String>(0) == scale.name() && row.get::<_, i32>(1) == GENERATOR);
    let mut generated = None;
    if !current {
        if made.is_some() {
            anyhow::bail!(
                "the bench database holds another dataset ({}); drop that database to regenerate",
                made.map(|r| r.get::<_, String>(0)).unwrap_or_default()
            );
        }
        let started = Instant::now();
        eprintln!("generating the scale-{} dataset (once; later runs reuse it)…", scale.name());
        client.batch_execute(&generate_sql(scale)).await.context("generating the bench dataset")?;
        // Sets hint bits and the visibility map now, so that no measured
        // read pays for them.
        client
            .batch_execute(
                "VACUUM (ANALYZE) conversations, scorecards, scores, process_scorecard_conversations",
            )
            .await?;
        generated = Some(started.elapsed().as_secs_f64());
    }
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM scorecards),
                    (SELECT count(*) FROM scores)",
            &[],
        )
        .await?;
    Ok((DatasetRows { conversations: row.get(0), scorecards: row.get(1), scores: row.get(2) }, generated))
}

/// The whole dataset in one transaction, so that an interrupted run leaves
/// nothing half made. Foreign-key triggers are skipped where the role may
/// (`session_replication_role`); the rows satisfy them by construction.
fn generate_sql(scale: Scale) -> String {
    let n = scale.conversations();
    let name = scale.name();
    format!(
        "BEGIN;
         SET LOCAL synchronous_commit = off;
         DO $$ BEGIN SET LOCAL session_replication_role = replica; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
         CREATE TEMP TABLE bench_customer ON COMMIT DROP AS
             SELECT k, 0::bigint AS id, 0::bigint AS conversation_template, 0::bigint AS process_template
             FROM generate_series(0, 4) k;
         WITH c AS (INSERT INTO customers (name) SELECT 'bench-' || k FROM generate_series(0, 4) k RETURNING id, name)
         UPDATE bench_customer b SET id = c.id FROM c WHERE c.name = 'bench-' || b.k;
         WITH t AS (INSERT INTO scorecard_templates (customer_id, name, template_type)
                    SELECT id, 'bench conversation', 1 FROM bench_customer RETURNING id, customer_id)
         UPDATE bench_customer b SET conversation_template = t.id FROM t WHERE t.customer_id = b.id;
         WITH t AS (INSERT INTO scorecard_templates (customer_id, name, template_type)
                    SELECT id, 'bench process', 2 FROM bench_customer RETURNING id, customer_id)
         UPDATE bench_customer b SET process_template = t.id FROM t WHERE t.customer_id = b.id;
         INSERT INTO criteria (template_id, position, name, weight, min_value, max_value)
         SELECT t.id, p, 'criterion ' || p, 1, 0, 5
         FROM scorecard_templates t CROSS JOIN generate_series(1, 10) p ORDER BY t.id, p;

         -- Conversation g (1..N) of customer g % 5, ids contiguous from the first.
         INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at, message_count,
                                    created_at, updated_at, deleted_at)
         SELECT b.id, 'bench-' || g, 'agent-' || (g % 500), t, t + interval '5 minutes', (g % 40)::int,
                t, t + interval '10 minutes', CASE WHEN g % 10 = 3 THEN t + interval '1 day' END
         FROM generate_series(1, {n}) g
         CROSS JOIN LATERAL (SELECT timestamptz '2026-03-01 00:00:00+00' + (g::float8 / {n}) * interval '90 days' AS t) time
         JOIN bench_customer b ON b.k = g % 5
         ORDER BY g;

         -- 4 conversation scorecards per conversation and one process
         -- scorecard per conversation number, interleaved by creation time.
         INSERT INTO scorecards (customer_id, template_id, template_type, conversation_id, agent_id, source,
                                 total_score, created_at, updated_at, deleted_at)
         SELECT customer_id, template_id, template_type, conversation_id, agent_id, source, total_score,
                created_at, created_at + interval '1 minute', deleted_at
         FROM (
             SELECT c.customer_id, b.conversation_template AS template_id, 1::smallint AS template_type,
                    c.id AS conversation_id, c.agent_id, CASE WHEN j = 1 THEN 2 ELSE 1 END::smallint AS source,
                    ((c.id * 7 + j) % 100)::float8 AS total_score, c.started_at + j * interval '1 hour' AS created_at,
                    CASE WHEN (c.id * 4 + j) % 10 = 5 THEN c.started_at + interval '2 days' END AS deleted_at
             FROM conversations c JOIN bench_customer b ON b.id = c.customer_id CROSS JOIN generate_series(1, 4) j
             UNION ALL
             SELECT b.id, b.process_template, 2::smallint, NULL, 'agent-' || (g % 500), 1::smallint,
                    ((g * 11) % 100)::float8,
                    timestamptz '2026-03-01 00:00:00+00' + (g::float8 / {n}) * interval '90 days' + interval '30 minutes',
                    CASE WHEN g % 10 = 7 THEN timestamptz '2026-06-01 00:00:00+00' END
             FROM generate_series(1, {n}) g JOIN bench_customer b ON b.k = g % 5
         ) s
         ORDER BY created_at, conversation_id NULLS LAST;

         -- Process scorecard g links conversations g and g ± 5 (same customer).
         INSERT INTO process_scorecard_conversations (scorecard_id, conversation_id)
         SELECT p.id, first.id + g - 1 + d
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS g FROM scorecards WHERE template_type = 2) p
         CROSS JOIN (SELECT min(id) AS id FROM conversations) first
         CROSS JOIN LATERAL (VALUES (0), (CASE WHEN p.g + 5 <= {n} THEN 5 ELSE -5 END)) link(d);

         -- 10 scores per scorecard, following it.
         INSERT INTO scores (customer_id, scorecard_id, criterion_id, value, created_at, updated_at, deleted_at)
         SELECT s.customer_id, s.id, cr.id, ((s.id * 13 + p) % 6)::float8, s.created_at, s.updated_at,
                CASE WHEN (s.id + p * 7) % 10 = 1 THEN s.created_at + interval '3 days' END
         FROM scorecards s CROSS JOIN generate_series(1, 10) p
         JOIN criteria cr ON cr.template_id = s.template_id AND cr.position = p
         ORDER BY s.id, p;

         INSERT INTO bench_dataset (scale, generator) VALUES ('{name}', {GENERATOR});
         COMMIT;"
    )
}
