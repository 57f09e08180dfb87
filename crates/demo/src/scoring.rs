//! Scoring the uploaded conversations: the batch index into ClickHouse,
//! AutoQA (each score checked against what its transcript was written to
//! earn, then run again to show it is idempotent), and the reviewers' manual
//! scorecards with their updates and deletes.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use scorekeeper_domain::scoring::{CriterionScale, total_score};
use scorekeeper_proto::coaching::{
    CreateScorecardRequest, DeleteScorecardRequest, Score, Scorecard, UpdateScorecardRequest,
};
use scorekeeper_proto::v1::{AutoscoreConversationsRequest, AutoscoreResult, BatchIndexConversationsRequest};

use super::api::{Api, RpcOutcome, describe};
use super::world::{DemoConversation, DemoTemplate, FURTHER_HELP, GREETING, PROFANITY, Rng, Templates};
use scorekeeper_proto::time::to_timestamp;

use super::{AUTOSCORE_BATCH, REVIEW_SEED, nearly_equal, section};

// ---------------------------------------------------------------------------
// Step 4: batch index into ClickHouse.

pub(super) async fn index_conversations(
    api: &mut Api,
    conversations: &[DemoConversation],
) -> anyhow::Result<()> {
    section("4. Batch index into ClickHouse");
    let step_started = Instant::now();
    let (Some(first), Some(last)) =
        (conversations.iter().map(|c| c.started_at).min(), conversations.iter().map(|c| c.started_at).max())
    else {
        return Ok(());
    };
    // The window is [start, end): one second past the last start covers it.
    let end = last + chrono::Duration::seconds(1);
    let indexed = api
        .conversations
        .batch_index_conversations(BatchIndexConversationsRequest {
            conversation_ids: Vec::new(),
            start_time: Some(to_timestamp(first)),
            end_time: Some(to_timestamp(end)),
        })
        .await
        .during("BatchIndexConversations over the whole window")?;
    println!(
        "window {} .. {}: {} conversations, {} scorecards, {} scores indexed ({:.1?})",
        first.format("%Y-%m-%d %H:%M:%S"),
        end.format("%Y-%m-%d %H:%M:%S"),
        indexed.conversations_indexed,
        indexed.scorecards_indexed,
        indexed.scores_indexed,
        step_started.elapsed()
    );
    println!("(no scorecards yet; from now on every scorecard change reaches ClickHouse through the outbox)");
    Ok(())
}

// ---------------------------------------------------------------------------
// Step 5: AutoQA, and that running it again changes nothing.

pub(super) struct AutoqaOutcome {
    pub(super) scorecards: usize,
    pub(super) changed: usize,
    pub(super) average: f64,
    pub(super) rerun: usize,
}

pub(super) async fn autoscore(
    api: &mut Api,
    template: &DemoTemplate,
    conversations: &[DemoConversation],
) -> anyhow::Result<AutoqaOutcome> {
    section("5. AutoQA");
    let step_started = Instant::now();
    let ids: Vec<i64> = conversations.iter().map(|c| c.id).collect();
    let mut first_run: HashMap<i64, AutoscoreResult> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(AUTOSCORE_BATCH) {
        for result in autoscore_chunk(api, template.id, chunk).await? {
            first_run.insert(result.conversation_id, result);
        }
        println!("  scored {:>6} of {}", first_run.len(), ids.len());
    }
    ensure!(
        first_run.len() == ids.len(),
        "AutoscoreConversations returned results for {} of {} conversations",
        first_run.len(),
        ids.len()
    );
    let changed = first_run.values().filter(|r| r.changed).count();
    let average = first_run.values().map(|r| r.total_score).sum::<f64>() / first_run.len() as f64;
    println!(
        "{} AUTOQA scorecards: {changed} created or changed, {} unchanged; average score {average:.1}% ({:.1?})",
        first_run.len(),
        first_run.len() - changed,
        step_started.elapsed()
    );
    check_against_transcripts(template, conversations, &first_run)?;

    // Again on a spread of a few hundred: the transcripts and the template
    // are unchanged, so AutoQA must find its own scorecards and leave them.
    let sample: Vec<i64> = ids.iter().step_by(ids.len().div_ceil(300).max(1)).copied().collect();
    let again = autoscore_chunk(api, template.id, &sample).await?;
    let mut problems = Vec::new();
    for result in &again {
        match first_run.get(&result.conversation_id) {
            Some(first) if first.scorecard_id == result.scorecard_id && !result.changed => {}
            Some(first) => problems.push(format!(
                "conversation {}: scorecard {} (changed = {}), first run gave scorecard {}",
                result.conversation_id, result.scorecard_id, result.changed, first.scorecard_id
            )),
            None => {
                problems.push(format!("conversation {}: not scored the first time", result.conversation_id))
            }
        }
    }
    if !problems.is_empty() || again.len() != sample.len() {
        for problem in problems.iter().take(10) {
            println!("  {problem}");
        }
        bail!(
            "AutoscoreConversations is not idempotent: {} of {} results differ on the second run ({} results)",
            problems.len(),
            sample.len(),
            again.len()
        );
    }
    println!(
        "again on {} of them: changed = false and the same scorecard ids for all; AutoQA is idempotent",
        sample.len()
    );
    Ok(AutoqaOutcome { scorecards: first_run.len(), changed, average, rerun: sample.len() })
}

/// AutoQA is deterministic, so its scores must be exactly what the
/// transcripts were written to earn: the domain's weighted total over the
/// rule criteria (the manual criterion has no score yet and does not count).
fn check_against_transcripts(
    template: &DemoTemplate,
    conversations: &[DemoConversation],
    results: &HashMap<i64, AutoscoreResult>,
) -> anyhow::Result<()> {
    let mut disagreements = Vec::new();
    for conversation in conversations {
        let written = conversation.written;
        let mut scored = Vec::new();
        for c in &template.criteria {
            let Some(rule) = &c.autoqa_rule else { continue };
            let passes = match rule.pattern.as_str() {
                GREETING => written.greets_early,
                PROFANITY => written.clean,
                FURTHER_HELP => written.offers_help,
                other => bail!("criterion {} has a rule the demo did not write: {other:?}", c.id),
            };
            let scale = CriterionScale { weight: c.weight, min_value: c.min_value, max_value: c.max_value };
            scored.push((scale, if passes { c.max_value } else { c.min_value }));
        }
        let expected = total_score(scored);
        let actual = results.get(&conversation.id).map_or(f64::NAN, |r| r.total_score);
        if !nearly_equal(actual, expected) {
            disagreements.push(format!(
                "conversation {}: AutoQA gave {actual:.2}%, the transcript was written for {expected:.2}% ({written:?})",
                conversation.id
            ));
        }
    }
    if !disagreements.is_empty() {
        for line in disagreements.iter().take(10) {
            println!("  {line}");
        }
        bail!(
            "AutoQA disagrees with how {} of {} transcripts were written",
            disagreements.len(),
            conversations.len()
        );
    }
    println!(
        "every AutoQA score is exactly what its transcript was written to earn ({} conversations)",
        conversations.len()
    );
    Ok(())
}

async fn autoscore_chunk(
    api: &mut Api,
    template_id: i64,
    ids: &[i64],
) -> anyhow::Result<Vec<AutoscoreResult>> {
    Ok(api
        .autoqa
        .autoscore_conversations(AutoscoreConversationsRequest {
            template_id,
            conversation_ids: ids.to_vec(),
        })
        .await
        .during(format!("AutoscoreConversations ({} conversations)", ids.len()))?
        .results)
}

// ---------------------------------------------------------------------------
// Step 6: reviewers' manual scorecards.

pub(super) struct ReviewOutcome {
    pub(super) conversation_scorecards: usize,
    pub(super) process_scorecards: usize,
    pub(super) updated: usize,
    pub(super) deleted: usize,
}

/// Scores for every criterion of a template: whole numbers within each
/// criterion's range, as a reviewer would give them.
pub(super) fn review_scores(rng: &mut Rng, template: &DemoTemplate) -> Vec<Score> {
    template
        .criteria
        .iter()
        .map(|c| {
            let steps = (c.max_value - c.min_value).floor().max(0.0) as u64;
            Score { criterion_id: c.id, value: c.min_value + rng.below(steps + 1) as f64 }
        })
        .collect()
}

pub(super) async fn manual_scorecards(
    api: &mut Api,
    templates: &Templates,
    conversations: &[DemoConversation],
) -> anyhow::Result<ReviewOutcome> {
    section("6. Manual scorecards");
    let step_started = Instant::now();
    let mut rng = Rng::new(REVIEW_SEED);
    let mut created: Vec<Scorecard> = Vec::new();

    // Conversation scorecards on a spread of conversations; the agent is
    // taken from the conversation.
    let wanted = (conversations.len() / 10).clamp(1, 300);
    for conversation in conversations.iter().step_by(conversations.len() / wanted).take(wanted) {
        let scorecard = create_scorecard(
            api,
            CreateScorecardRequest {
                template_id: templates.conversation.id,
                conversation_id: conversation.id,
                scores: review_scores(&mut rng, &templates.conversation),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating a conversation scorecard for conversation {}", conversation.id))?;
        created.push(scorecard);
    }
    let conversation_scorecards = created.len();
    println!("{conversation_scorecards} conversation scorecards (template {})", templates.conversation.id);

    // Process scorecards: a case handled by one agent across 1–3 of their
    // conversations.
    let mut by_agent: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for c in conversations {
        by_agent.entry(c.agent_id.as_str()).or_default().push(c.id);
    }
    let process_wanted = (conversations.len() / 30).clamp(1, 100);
    for _ in 0..process_wanted {
        let anchor = &conversations[rng.below(conversations.len() as u64) as usize];
        let theirs = &by_agent[anchor.agent_id.as_str()];
        let mut linked = vec![anchor.id];
        for _ in 0..rng.below(3) {
            let other = theirs[rng.below(theirs.len() as u64) as usize];
            if !linked.contains(&other) {
                linked.push(other);
            }
        }
        let scorecard = create_scorecard(
            api,
            CreateScorecardRequest {
                template_id: templates.process.id,
                agent_id: anchor.agent_id.clone(),
                linked_conversation_ids: linked,
                scores: review_scores(&mut rng, &templates.process),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating a process scorecard for {}", anchor.agent_id))?;
        created.push(scorecard);
    }
    let process_scorecards = created.len() - conversation_scorecards;
    println!(
        "{process_scorecards} process scorecards (template {}), each linking 1-3 conversations of one agent",
        templates.process.id
    );

    // Second opinions: new scores on some, with the version read at create
    // time (optimistic concurrency; nothing else touches them meanwhile).
    let updates = (created.len() / 4).min(30);
    let mut stale = None;
    for scorecard in created.iter_mut().rev().take(updates) {
        let template = if scorecard.template_id == templates.process.id {
            &templates.process
        } else {
            &templates.conversation
        };
        let old_version = scorecard.version;
        let updated = api
            .scorecards
            .update_scorecard(UpdateScorecardRequest {
                id: scorecard.id,
                scores: review_scores(&mut rng, template),
                expected_version: old_version,
                ..Default::default()
            })
            .await
            .during(format!("updating scorecard {}", scorecard.id))?
            .scorecard
            .with_context(|| format!("UpdateScorecard {} returned no scorecard", scorecard.id))?;
        stale.get_or_insert((scorecard.id, old_version));
        *scorecard = updated;
    }
    println!("{updates} scorecards updated with new scores (expected_version set)");
    if let Some((id, version)) = stale {
        show_stale_update(api, id, version).await;
    }

    // Some reviews are withdrawn: soft deletes, which ClickHouse receives as
    // tombstones.
    let deletes = (created.len() / 4).min(20);
    for scorecard in created.iter().take(deletes) {
        api.scorecards
            .delete_scorecard(DeleteScorecardRequest { id: scorecard.id })
            .await
            .during(format!("deleting scorecard {}", scorecard.id))?;
    }
    println!("{deletes} scorecards deleted ({:.1?} for this step)", step_started.elapsed());
    Ok(ReviewOutcome { conversation_scorecards, process_scorecards, updated: updates, deleted: deletes })
}

async fn create_scorecard(api: &mut Api, request: CreateScorecardRequest) -> anyhow::Result<Scorecard> {
    api.scorecards
        .create_scorecard(request)
        .await
        .during("CreateScorecard")?
        .scorecard
        .context("CreateScorecard returned no scorecard")
}

/// An update based on an old version must be refused, not silently
/// overwrite the newer scores. Only reported: the stored data is the same
/// either way for the comparison that follows.
async fn show_stale_update(api: &mut Api, id: i64, stale_version: i64) {
    let outcome = api
        .scorecards
        .update_scorecard(UpdateScorecardRequest {
            id,
            expected_version: stale_version,
            ..Default::default()
        })
        .await;
    match outcome {
        Err(status) if status.code() == tonic::Code::Aborted => {
            println!(
                "an update with the stale version {stale_version} of scorecard {id} is refused: {}",
                describe(&status)
            );
        }
        Err(status) => println!(
            "WARNING: a stale update of scorecard {id} failed with {} (expected ABORTED)",
            describe(&status)
        ),
        Ok(_) => println!(
            "WARNING: a stale update of scorecard {id} (version {stale_version}) was accepted (expected ABORTED)"
        ),
    }
}
