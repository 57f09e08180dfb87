//! Drift and its repair. Two realistic ways for ClickHouse to drift from
//! Postgres without any error anywhere: rows that reach Postgres without the
//! API (a bulk import writing SQL, which no write path copies), and rows
//! lost from ClickHouse (a lost part, a mistaken cleanup). The analytics are
//! then wrong; reindex jobs (JobService, as `scorekeeper reindex` creates
//! them) copy the customer's rows from Postgres again and the analytics
//! match once more.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use scorekeeper_analytics::ClickHouseConfig;
use scorekeeper_domain::CustomerId;
use scorekeeper_domain::scoring::{CriterionScale, total_score};
use scorekeeper_proto::coaching::{Score, ScorecardTemplateType};
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::{
    CreateJobRequest, GetJobRequest, Job, JobPayload, JobState, JobType, ReindexConversationsPayload,
};
use scorekeeper_store::Store;

use super::api::{Api, RpcOutcome};
use super::compare::{self, Show};
use super::scoring::review_scores;
use super::world::{DemoConversation, DemoTemplate, Rng, Templates};
use super::{DRIFT_SEED, section};

/// How long the ClickHouse mutation that loses rows may take.
const MUTATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reindex job may take (queued and running).
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// How long ClickHouse may take to show the repaired rows (it should at
/// once: a job succeeds only after ClickHouse acknowledged every batch).
const REPAIR_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the job is read while it runs.
const JOB_POLL: Duration = Duration::from_millis(200);

pub(super) struct DriftOutcome {
    pub(super) imported_scorecards: usize,
    pub(super) lost_scorecards: usize,
    pub(super) jobs: Vec<JobOutcome>,
    /// The customer's live scorecards after the repair (both sides).
    pub(super) live_scorecards: i64,
}

pub(super) struct JobOutcome {
    pub(super) id: String,
    pub(super) rows: i64,
}

pub(super) async fn drift_and_repair(
    api: &mut Api,
    store: &Store,
    clickhouse: &ClickHouseConfig,
    customer_id: CustomerId,
    templates: &Templates,
    conversations: &[DemoConversation],
) -> anyhow::Result<DriftOutcome> {
    section("8. Drift and its repair");
    let step_started = Instant::now();
    let clickhouse = DirectClickHouse::new(clickhouse)?;
    println!("two ways for ClickHouse to drift from Postgres without an error anywhere:");
    // Chosen before the import, so only rows ClickHouse has are lost.
    let to_lose = scorecards_to_lose(store, customer_id).await?;
    let imported = bulk_import(store, customer_id, templates, conversations).await?;
    let lost = lose_rows(&clickhouse, customer_id, &to_lose).await?;

    println!("\nthe analytics now, only the rows that differ:");
    let before = compare::compare(api, store, customer_id).await?;
    if before.matches() {
        bail!(
            "ClickHouse still matches Postgres after the drift: the import or the lost rows did not show \
             (does serve use the same databases as the demo?)"
        );
    }
    let differing = before.differing();
    compare::print_lines(&before, templates, Show::Differing);
    let (in_clickhouse, in_postgres) = before.live_scorecards();
    println!(
        "\nClickHouse matches Postgres: no ({in_clickhouse} live scorecards in ClickHouse, {in_postgres} in Postgres)"
    );

    println!(
        "\nthe repair: reindex jobs copy the customer's rows from Postgres to ClickHouse again, \
         whatever ClickHouse holds (the highest version wins, so rows it already has are harmless)"
    );
    let process = reindex(api, customer_id, ScorecardTemplateType::Process).await?;
    let middle = compare::compare(api, store, customer_id).await?;
    let (process_ch, process_pg) = middle.live_scorecards_of(true);
    let (conversation_ch, conversation_pg) = middle.live_scorecards_of(false);
    println!(
        "after it: process scorecards {process_ch} in ClickHouse, {process_pg} in Postgres; \
         conversation scorecards still {conversation_ch} and {conversation_pg} (not in this job's scope)"
    );
    let conversation = reindex(api, customer_id, ScorecardTemplateType::Conversation).await?;

    println!("\nthe analytics again, the rows that differed:");
    let after = compare::converge(api, store, customer_id, templates, REPAIR_TIMEOUT).await?;
    compare::print_lines(&after, templates, Show::These(&differing));
    println!("\nClickHouse matches Postgres: yes");
    println!("(drift and repair took {:.1?})", step_started.elapsed());
    Ok(DriftOutcome {
        imported_scorecards: imported,
        lost_scorecards: lost,
        jobs: vec![process, conversation],
        live_scorecards: after.live_scorecards().1,
    })
}

// ---------------------------------------------------------------------------
// Drift A: a bulk import straight into Postgres.

/// A scorecard as an import tool writes it.
struct ImportedScorecard<'a> {
    template: &'a DemoTemplate,
    /// Conversation scorecards only.
    conversation_id: Option<i64>,
    /// Process scorecards only: the conversation of the case.
    linked_conversation_id: Option<i64>,
    agent_id: &'a str,
    scores: Vec<Score>,
}

impl ImportedScorecard<'_> {
    fn total_score(&self) -> f64 {
        total_score(self.template.criteria.iter().zip(&self.scores).map(|(c, s)| {
            (CriterionScale { weight: c.weight, min_value: c.min_value, max_value: c.max_value }, s.value)
        }))
    }
}

/// Writes process scorecards (each linking one conversation of its agent)
/// and conversation scorecards on existing conversations, with their
/// scores, in one transaction of plain SQL: no outbox entry, no API call,
/// so no write path copies them to ClickHouse. Returns how many scorecards.
async fn bulk_import(
    store: &Store,
    customer_id: CustomerId,
    templates: &Templates,
    conversations: &[DemoConversation],
) -> anyhow::Result<usize> {
    let count = conversations.len();
    ensure!(count > 0, "no conversations to import scorecards for");
    let mut rng = Rng::new(DRIFT_SEED);
    let mut cards = Vec::new();
    let process_wanted = (count / 10).clamp(1, 300);
    for _ in 0..process_wanted {
        let anchor = &conversations[rng.below(count as u64) as usize];
        cards.push(ImportedScorecard {
            template: &templates.process,
            conversation_id: None,
            linked_conversation_id: Some(anchor.id),
            agent_id: &anchor.agent_id,
            scores: review_scores(&mut rng, &templates.process),
        });
    }
    let conversation_wanted = (count / 20).clamp(1, 150);
    for conversation in
        conversations.iter().step_by((count / conversation_wanted).max(1)).take(conversation_wanted)
    {
        cards.push(ImportedScorecard {
            template: &templates.conversation,
            conversation_id: Some(conversation.id),
            linked_conversation_id: None,
            agent_id: &conversation.agent_id,
            scores: review_scores(&mut rng, &templates.conversation),
        });
    }

    let mut client = store.pool().get().await.context("a Postgres connection for the import")?;
    let tx = client.transaction().await?;
    // Ids taken from the table's identity sequence up front, as a COPY-style
    // import does, so scores and links can refer to them in the same batch.
    let ids: Vec<i64> = tx
        .query(
            "SELECT nextval(pg_get_serial_sequence('scorecards', 'id')) FROM generate_series(1, $1::int)",
            &[&(cards.len() as i32)],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let template_ids: Vec<i64> = cards.iter().map(|c| c.template.id).collect();
    let template_types: Vec<i16> =
        cards.iter().map(|c| if c.conversation_id.is_some() { 1 } else { 2 }).collect();
    let conversation_ids: Vec<Option<i64>> = cards.iter().map(|c| c.conversation_id).collect();
    let agent_ids: Vec<&str> = cards.iter().map(|c| c.agent_id).collect();
    let totals: Vec<f64> = cards.iter().map(ImportedScorecard::total_score).collect();
    tx.execute(
        "INSERT INTO scorecards (id, customer_id, template_id, template_type, conversation_id, agent_id, source, total_score)
         OVERRIDING SYSTEM VALUE
         SELECT id, $1::bigint, template_id, template_type, conversation_id, agent_id, 1, total_score
         FROM unnest($2::bigint[], $3::bigint[], $4::smallint[], $5::bigint[], $6::text[], $7::float8[])
              AS t(id, template_id, template_type, conversation_id, agent_id, total_score)",
        &[&customer_id.0, &ids, &template_ids, &template_types, &conversation_ids, &agent_ids, &totals],
    )
    .await
    .context("importing scorecards")?;
    let (mut score_cards, mut criteria, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (id, card) in ids.iter().zip(&cards) {
        for score in &card.scores {
            score_cards.push(*id);
            criteria.push(score.criterion_id);
            values.push(score.value);
        }
    }
    tx.execute(
        "INSERT INTO scores (customer_id, scorecard_id, criterion_id, value)
         SELECT $1::bigint, scorecard_id, criterion_id, value
         FROM unnest($2::bigint[], $3::bigint[], $4::float8[]) AS t(scorecard_id, criterion_id, value)",
        &[&customer_id.0, &score_cards, &criteria, &values],
    )
    .await
    .context("importing scores")?;
    let (link_cards, link_conversations): (Vec<i64>, Vec<i64>) =
        ids.iter().zip(&cards).filter_map(|(id, card)| card.linked_conversation_id.map(|c| (*id, c))).unzip();
    tx.execute(
        "INSERT INTO process_scorecard_conversations (scorecard_id, conversation_id)
         SELECT * FROM unnest($1::bigint[], $2::bigint[])",
        &[&link_cards, &link_conversations],
    )
    .await
    .context("importing process scorecard links")?;
    tx.commit().await.context("committing the import")?;

    let processes = cards.iter().filter(|c| c.conversation_id.is_none()).count();
    println!(
        "  a. bulk import: {processes} process scorecards (each linking one conversation of its agent) and {} \
         conversation scorecards on existing conversations, with {} scores,",
        cards.len() - processes,
        values.len()
    );
    println!(
        "     written straight into Postgres with SQL, as an import tool would: no API call, no outbox entry, \
         so nothing told ClickHouse"
    );
    Ok(cards.len())
}

// ---------------------------------------------------------------------------
// Drift B: rows lost from ClickHouse.

/// Up to 30 of the customer's live process scorecards, spread over them.
async fn scorecards_to_lose(store: &Store, customer_id: CustomerId) -> anyhow::Result<Vec<i64>> {
    let client = store.pool().get().await.context("a Postgres connection")?;
    let ids: Vec<i64> = client
        .query(
            "SELECT id FROM scorecards
             WHERE customer_id = $1 AND template_type = 2 AND deleted_at IS NULL ORDER BY id",
            &[&customer_id.0],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok(ids.into_iter().step_by(3).take(30).collect())
}

/// Deletes the scorecards and their scores from ClickHouse only, with
/// `ALTER TABLE … DELETE` (a mutation: asynchronous, so waited for).
/// Returns how many scorecards were lost.
async fn lose_rows(
    clickhouse: &DirectClickHouse,
    customer_id: CustomerId,
    ids: &[i64],
) -> anyhow::Result<usize> {
    if ids.is_empty() {
        println!("  b. ClickHouse rows lost: skipped, the customer has no live process scorecards to lose");
        return Ok(0);
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let scorecards_sql = format!(
        "SELECT count(DISTINCT id) FROM scorecards WHERE customer_id = {customer_id} AND id IN ({list})"
    );
    let scores_sql = format!(
        "SELECT count(DISTINCT id) FROM scores WHERE customer_id = {customer_id} AND scorecard_id IN ({list})"
    );
    let present = clickhouse.count(&scorecards_sql).await?;
    ensure!(
        present == ids.len() as u64,
        "ClickHouse database {} at {} holds {present} of the {} scorecards to lose; \
         does serve use another CLICKHOUSE_URL or CLICKHOUSE_DATABASE than the demo?",
        clickhouse.database,
        clickhouse.url,
        ids.len()
    );
    let scores = clickhouse.count(&scores_sql).await?;
    let started = Instant::now();
    clickhouse.delete("scorecards", &format!("customer_id = {customer_id} AND id IN ({list})")).await?;
    clickhouse.delete("scores", &format!("customer_id = {customer_id} AND scorecard_id IN ({list})")).await?;
    loop {
        let left = clickhouse.count(&scorecards_sql).await? + clickhouse.count(&scores_sql).await?;
        if left == 0 {
            break;
        }
        ensure!(
            started.elapsed() < MUTATION_TIMEOUT,
            "ClickHouse still has {left} of the deleted rows after {MUTATION_TIMEOUT:?} \
             (see system.mutations for the ALTER TABLE … DELETE)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  b. ClickHouse rows lost: {} of the customer's process scorecards and their {scores} scores deleted \
         from ClickHouse only,",
        ids.len()
    );
    println!(
        "     with ALTER TABLE … DELETE (a mutation, gone after {:.1?}), as a lost part or a mistaken cleanup \
         would; Postgres still has them",
        started.elapsed()
    );
    Ok(ids.len())
}

// ---------------------------------------------------------------------------
// The repair: reindex jobs through JobService.

fn kind_name(kind: ScorecardTemplateType) -> &'static str {
    match kind {
        ScorecardTemplateType::Process => "process",
        _ => "conversation",
    }
}

/// Creates a reindex job of the customer's scorecards of `kind` and
/// follows it until it succeeds, printing its progress; fails if the job
/// fails, is cancelled or takes longer than [`JOB_TIMEOUT`].
async fn reindex(
    api: &mut Api,
    customer_id: CustomerId,
    kind: ScorecardTemplateType,
) -> anyhow::Result<JobOutcome> {
    let name = kind_name(kind);
    let started = Instant::now();
    let payload = ReindexConversationsPayload {
        customer_id: customer_id.0,
        reindex_scorecard_types: vec![kind as i32],
        ..Default::default()
    };
    let job = api
        .jobs
        .create_job(CreateJobRequest {
            r#type: JobType::ReindexConversations as i32,
            payload: Some(JobPayload { payload: Some(Payload::ReindexConversations(payload)) }),
        })
        .await
        .during(format!("CreateJob (reindex {name})"))?
        .job
        .context("CreateJob returned no job")?;
    println!(
        "\njob {} created: reindex {name} of customer {customer_id}   \
         (what `scorekeeper reindex --types {name} --customer {customer_id} --wait` does)",
        job.id
    );
    // Rows done of each activity when last printed.
    let mut printed: BTreeMap<String, i64> = BTreeMap::new();
    let mut failed_attempts = 0;
    loop {
        let job = api
            .jobs
            .get_job(GetJobRequest { id: job.id.clone() })
            .await
            .during(format!("GetJob {}", job.id))?
            .job
            .context("GetJob returned no job")?;
        for a in &job.progress {
            if a.rows_done > 0 && printed.get(&a.activity) != Some(&a.rows_done) {
                let of =
                    if a.rows_estimated > 0 { format!(" of {}", a.rows_estimated) } else { String::new() };
                println!(
                    "  {:<28} {:>7}{of} rows, {} page{}, {} checkpoint{}, {:.0} rows/s",
                    a.activity,
                    a.rows_done,
                    a.pages_done,
                    if a.pages_done == 1 { "" } else { "s" },
                    a.checkpoints_done,
                    if a.checkpoints_done == 1 { "" } else { "s" },
                    a.rows_per_second
                );
                printed.insert(a.activity.clone(), a.rows_done);
            }
        }
        if let Some(error) = &job.error
            && job.attempts > failed_attempts
            && job.state == JobState::Queued as i32
        {
            println!(
                "  attempt {} failed ({}), the job will retry: {}",
                job.attempts, error.code, error.message
            );
            failed_attempts = job.attempts;
        }
        match JobState::try_from(job.state).unwrap_or(JobState::Unspecified) {
            JobState::Succeeded => return Ok(report(&job, kind, started.elapsed())),
            state @ (JobState::Failed | JobState::Cancelled) => {
                let why = job.error.as_ref().map_or(String::new(), |e| format!(": {} {}", e.code, e.message));
                bail!("reindex job {} ended {}{why}", job.id, state.as_str_name());
            }
            _ => {}
        }
        ensure!(
            started.elapsed() < JOB_TIMEOUT,
            "reindex job {} has not finished after {JOB_TIMEOUT:?} (state {}); is serve running job workers \
             (SK_NO_WORKER)? `scorekeeper jobs get {}` shows it",
            job.id,
            JobState::try_from(job.state).map_or("unknown", |s| s.as_str_name()),
            job.id
        );
        tokio::time::sleep(JOB_POLL).await;
    }
}

/// Prints a succeeded job's outcome.
fn report(job: &Job, kind: ScorecardTemplateType, elapsed: Duration) -> JobOutcome {
    let rows: i64 = job.progress.iter().map(|a| a.rows_done).sum();
    // Each activity's rate is over its own running time; the job's is over
    // the sum of those times.
    let seconds: f64 = job
        .progress
        .iter()
        .filter(|a| a.rows_per_second > 0.0)
        .map(|a| a.rows_done as f64 / a.rows_per_second)
        .sum();
    let rate = if seconds > 0.0 { rows as f64 / seconds } else { 0.0 };
    println!(
        "job {} succeeded: {rows} rows copied ({}), {rate:.0} rows/s, {} attempt{}, \
         {elapsed:.1?} from creation to success",
        job.id,
        match kind {
            ScorecardTemplateType::Process => "process scorecards and their scores",
            _ => "conversations, their scorecards and scores",
        },
        job.attempts,
        if job.attempts == 1 { "" } else { "s" }
    );
    JobOutcome { id: job.id.clone(), rows }
}

// ---------------------------------------------------------------------------
// ClickHouse itself, behind the application's back.

/// The demo plays something that changes ClickHouse behind the
/// application's back, so it talks to ClickHouse itself (with the same
/// client crate) rather than through `scorekeeper_analytics`, whose writes
/// are the application's own.
struct DirectClickHouse {
    client: clickhouse::Client,
    config: ClickHouseConfig,
    url: String,
    database: String,
}

impl DirectClickHouse {
    fn new(config: &ClickHouseConfig) -> anyhow::Result<DirectClickHouse> {
        let client = scorekeeper_analytics::server_client(config).with_database(&config.database);
        Ok(DirectClickHouse {
            client,
            config: config.clone(),
            url: config.url.clone(),
            database: config.database.clone(),
        })
    }

    /// Starts the deletion of `table`'s rows matching `condition` (on a
    /// cluster, of every node's local table: a Distributed table takes no
    /// ALTER).
    async fn delete(&self, table: &str, condition: &str) -> anyhow::Result<()> {
        let sql = scorekeeper_analytics::maintenance::delete_statement(&self.config, table, condition);
        self.client.query(&sql).execute().await.with_context(|| format!("ClickHouse at {}: {sql}", self.url))
    }

    /// Runs a query returning one number.
    async fn count(&self, sql: &str) -> anyhow::Result<u64> {
        self.client
            .query(sql)
            .fetch_one::<u64>()
            .await
            .with_context(|| format!("ClickHouse at {}: {sql}", self.url))
    }
}
