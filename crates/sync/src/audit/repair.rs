//! Repair of what an audit found, touching only what drifted:
//!
//! * missing and stale rows: reindex jobs. A conversation, a conversation
//!   scorecard or one of its scores is repaired by a reindex of its
//!   conversation (explicit ids, conversation activity); a process
//!   scorecard or its score by a reindex of the process scorecards created
//!   in a window from the first to the last drifted one of that hour. A
//!   bucket ClickHouse lacks entirely is reindexed as that window.
//! * rows newer in ClickHouse than in Postgres: their Postgres version is
//!   bumped first (the update trigger draws a new one), then they are
//!   reindexed like stale rows; otherwise the reindex would lose.
//! * rows gone from Postgres: tombstones (ClickHouse's row, `is_deleted`
//!   set, at a fresh version from Postgres's `mirror_version`) through
//!   `Analytics::write`, the one insert path. A reindex cannot do it: it
//!   reads Postgres, which no longer has the row.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use scorekeeper_analytics::{Analytics, WritePath};
use scorekeeper_domain::audit::{AuditTable, DriftKind, HOUR_SECONDS, RepairReport};
use scorekeeper_domain::limits::MAX_IDS_PER_BATCH;
use scorekeeper_domain::mirror::MirrorBatch;
use scorekeeper_domain::reindex::{ReindexScope, ReindexSpec, TimeBase, TimeWindow};
use scorekeeper_domain::time::utc_at_second;
use scorekeeper_domain::{ConversationId, CustomerId, TemplateType};
use scorekeeper_jobs::{JobStore, NewJob};
use scorekeeper_store::Store;
use uuid::Uuid;

use super::walk::Findings;
use crate::error::{Result, SyncError};

/// What to do for one customer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerRepair {
    /// Reindexed with the conversation activity, by id.
    pub conversation_ids: BTreeSet<i64>,
    /// `[start, end)` seconds of conversation start, reindexed whole.
    pub conversation_windows: Vec<(i64, i64)>,
    /// `[start, end)` seconds of process scorecard creation.
    pub process_windows: Vec<(i64, i64)>,
    /// Rows whose Postgres version is bumped before the reindex.
    pub bump: BTreeMap<AuditTable, Vec<i64>>,
    /// Rows that get a tombstone.
    pub tombstones: BTreeMap<AuditTable, Vec<i64>>,
}

/// The repair of one audit's findings, by customer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepairPlan {
    pub customers: BTreeMap<CustomerId, CustomerRepair>,
}

fn secs(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp()
}

/// Sorted, with overlapping or touching windows merged.
fn merge(mut windows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    windows.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
    for (start, end) in windows {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Windows `[first, last + 1)` seconds of the given creation times, one per
/// hour that has any.
fn hour_windows(times: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    let mut by_hour: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for t in times {
        let window = by_hour.entry(t.div_euclid(HOUR_SECONDS)).or_insert((t, t + 1));
        window.0 = window.0.min(t);
        window.1 = window.1.max(t + 1);
    }
    by_hour.into_values().collect()
}

impl RepairPlan {
    /// Works out what repairs `findings`, asking Postgres where each
    /// drifted scorecard or score belongs.
    pub async fn new(store: &Store, findings: &Findings) -> Result<RepairPlan> {
        let mut plan = RepairPlan::default();
        let mut grouped: BTreeMap<(CustomerId, AuditTable), Vec<(i64, DriftKind)>> = BTreeMap::new();
        for row in &findings.rows {
            grouped.entry((row.customer_id, row.table)).or_default().push((row.id, row.kind));
        }
        for ((customer, table), rows) in grouped {
            let repair = plan.customers.entry(customer).or_default();
            let mut reindexed = Vec::new();
            for (id, kind) in rows {
                match kind {
                    DriftKind::OnlyInClickhouse => repair.tombstones.entry(table).or_default().push(id),
                    DriftKind::Newer => {
                        repair.bump.entry(table).or_default().push(id);
                        reindexed.push(id);
                    }
                    DriftKind::Missing | DriftKind::Stale => reindexed.push(id),
                    // Cannot be mirrored faithfully (the row encoder
                    // refuses it): left for an operator, reported again.
                    DriftKind::OutOfRange => {}
                }
            }
            if table == AuditTable::Conversations {
                repair.conversation_ids.extend(reindexed);
                continue;
            }
            let mut process_times = Vec::new();
            for chunk in reindexed.chunks(MAX_IDS_PER_BATCH) {
                for place in store.audit_scorecard_places(table, customer, chunk).await? {
                    match (place.template_type, place.conversation_id) {
                        (TemplateType::Conversation, Some(conversation)) => {
                            repair.conversation_ids.insert(conversation.0);
                        }
                        _ => process_times.push(secs(place.created_at)),
                    }
                }
            }
            repair.process_windows.extend(hour_windows(process_times));
        }
        for range in &findings.missing_ranges {
            let repair = plan.customers.entry(range.customer_id).or_default();
            let window = (range.start_seconds, range.end_seconds);
            if range.table == AuditTable::Conversations {
                repair.conversation_windows.push(window);
                continue;
            }
            let (conversations, process) = store
                .audit_scorecard_bucket(range.customer_id, range.start_seconds, range.end_seconds)
                .await?;
            repair.conversation_ids.extend(conversations.iter().map(|c| c.0));
            if process {
                repair.process_windows.push(window);
            }
        }
        for repair in plan.customers.values_mut() {
            repair.conversation_windows = merge(std::mem::take(&mut repair.conversation_windows));
            repair.process_windows = merge(std::mem::take(&mut repair.process_windows));
        }
        Ok(plan)
    }

    /// The reindex jobs of the plan, in order: conversations by id (at most
    /// `MAX_IDS_PER_BATCH` per job), conversation windows, process windows.
    pub fn jobs(&self) -> Vec<NewJob> {
        let mut jobs = Vec::new();
        for (&customer, repair) in &self.customers {
            let ids: Vec<ConversationId> =
                repair.conversation_ids.iter().map(|&id| ConversationId(id)).collect();
            for chunk in ids.chunks(MAX_IDS_PER_BATCH) {
                jobs.push(reindex_job(customer, None, chunk.to_vec(), TemplateType::Conversation));
            }
            for &(start, end) in &repair.conversation_windows {
                jobs.push(reindex_job(customer, Some((start, end)), Vec::new(), TemplateType::Conversation));
            }
            for &(start, end) in &repair.process_windows {
                jobs.push(reindex_job(customer, Some((start, end)), Vec::new(), TemplateType::Process));
            }
        }
        jobs
    }
}

fn reindex_job(
    customer: CustomerId,
    window: Option<(i64, i64)>,
    conversation_ids: Vec<ConversationId>,
    kind: TemplateType,
) -> NewJob {
    let spec = ReindexSpec {
        scope: ReindexScope {
            customer_id: Some(customer),
            // Conversations by start, process scorecards by creation: the
            // times the audit's buckets are cut by.
            window: window.map(|(start, end)| TimeWindow {
                start: utc_at_second(start),
                end: utc_at_second(end),
                base: TimeBase::ConversationStart,
            }),
            conversation_ids,
        },
        scorecard_types: vec![kind],
        conversations_batch_size: None,
        process_scorecards_batch_size: None,
    };
    crate::reindex::new_job(&spec, Some(customer))
}

/// Repairs `findings`: bumps versions, writes tombstones, queues the
/// reindex jobs (keys `<dedupe>:<n>` when `dedupe` is given, so a second
/// call with the same findings and key queues nothing new). Does not wait
/// for the jobs ([`wait_for_jobs`]).
pub async fn repair(
    store: &Store,
    analytics: &Analytics,
    findings: &Findings,
    dedupe: Option<&str>,
) -> Result<RepairReport> {
    let plan = RepairPlan::new(store, findings).await?;
    let mut report = RepairReport::default();
    for (&customer, repair) in &plan.customers {
        for (&table, ids) in &repair.bump {
            report.versions_bumped += store.audit_bump_versions(table, customer, ids).await?;
        }
        for (&table, ids) in &repair.tombstones {
            for chunk in ids.chunks(MAX_IDS_PER_BATCH) {
                let mut batch = analytics.audit_tombstones(table, customer, chunk).await?;
                let versions = store.next_mirror_versions(batch.rows()).await?;
                set_versions(&mut batch, &versions);
                analytics.write(WritePath::Reindex, &batch).await?;
                report.tombstones += batch.rows() as u64;
            }
        }
    }
    let jobs = JobStore::new(store);
    for (n, job) in plan.jobs().into_iter().enumerate() {
        // A scope already being repaired by a queued or running job is not
        // queued twice: a repeated audit with repair gets that job back.
        let mut job = job.one_active_per_payload();
        job.dedupe_key = dedupe.map(|key| format!("{key}:{n}"));
        let (created, _) = jobs.create_job(&job).await?;
        report.jobs.push(created.id.to_string());
    }
    tracing::info!(
        jobs = report.jobs.len(),
        tombstones = report.tombstones,
        versions_bumped = report.versions_bumped,
        "audit repair queued"
    );
    Ok(report)
}

/// Gives the tombstones their versions, in order.
fn set_versions(batch: &mut MirrorBatch, versions: &[i64]) {
    let mut versions = versions.iter().copied();
    for row in &mut batch.conversations {
        row.version = versions.next().unwrap_or(row.version);
    }
    for row in &mut batch.scorecards {
        row.version = versions.next().unwrap_or(row.version);
    }
    for row in &mut batch.scores {
        row.version = versions.next().unwrap_or(row.version);
    }
}

/// Waits until every job in `ids` has ended (succeeded, failed or
/// cancelled), or `within` has passed; whichever comes first. The jobs run
/// on any worker sharing this Postgres.
pub async fn wait_for_jobs(store: &Store, ids: &[String], within: Duration) -> Result<()> {
    let started = Instant::now();
    let ids: Vec<Uuid> = ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
    let mut pending = ids;
    let jobs = JobStore::new(store);
    while !pending.is_empty() && started.elapsed() < within {
        let mut still = Vec::new();
        for id in pending {
            let job = jobs.get_job(id, None).await.map_err(SyncError::from)?;
            if job.is_some_and(|j| !j.state.is_terminal()) {
                still.push(id);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if !pending.is_empty() {
        tracing::warn!(jobs = pending.len(), "audit repair: reindex jobs still running; auditing anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_merge_when_they_touch() {
        assert_eq!(
            merge(vec![(10, 20), (0, 5), (20, 25), (24, 30), (40, 41)]),
            vec![(0, 5), (10, 30), (40, 41)]
        );
    }

    #[test]
    fn process_rows_repair_by_hour_from_first_to_last() {
        let hour = HOUR_SECONDS;
        assert_eq!(
            hour_windows([hour + 5, hour + 100, 3 * hour + 7, hour + 50]),
            vec![(hour + 5, hour + 101), (3 * hour + 7, 3 * hour + 8)]
        );
    }

    #[test]
    fn jobs_cover_ids_in_chunks_and_windows_by_kind() {
        let mut plan = RepairPlan::default();
        let repair = plan.customers.entry(CustomerId(7)).or_default();
        repair.conversation_ids = (1..=(MAX_IDS_PER_BATCH as i64 + 1)).collect();
        repair.process_windows = vec![(100, 200)];
        let jobs = plan.jobs();
        assert_eq!(jobs.len(), 3);
        let spec = |job: &NewJob| serde_json::from_value::<ReindexSpec>(job.payload.clone()).unwrap();
        assert_eq!(spec(&jobs[0]).scope.conversation_ids.len(), MAX_IDS_PER_BATCH);
        assert_eq!(spec(&jobs[1]).scope.conversation_ids, vec![ConversationId(MAX_IDS_PER_BATCH as i64 + 1)]);
        let process = spec(&jobs[2]);
        assert_eq!(process.scorecard_types, vec![TemplateType::Process]);
        assert_eq!(process.scope.customer_id, Some(CustomerId(7)));
        let window = process.scope.window.unwrap();
        assert_eq!(
            (window.start.timestamp(), window.end.timestamp(), window.base),
            (100, 200, TimeBase::ConversationStart)
        );
        assert!(
            jobs.iter()
                .all(|j| j.customer_id == Some(CustomerId(7)) && j.job_type == crate::reindex::JOB_TYPE)
        );
    }
}
