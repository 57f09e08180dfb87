//! A worker's side of the job tables: claim with a lease, heartbeat, record
//! progress, finish. Every write made on behalf of a running attempt
//! carries its fencing token (the attempt number) and is refused, by the
//! same statement, once the job was claimed again or is no longer running.

use std::time::Duration;

use scorekeeper_store::Result;
use scorekeeper_store::locks::advisory_xact_lock;
use uuid::Uuid;

use super::rows::{self, JOB_COLUMNS};
use super::{JobStore, millis};
use crate::job::{AttemptOutcome, Claim, JobState, Lease, ProgressUpdate};

impl JobStore {
    /// Claims the next runnable job of one of `job_types`: queued and due, or
    /// running with an expired lease (its worker died). Raises `attempts`,
    /// which becomes this attempt's fencing token. Jobs whose lease expired
    /// with no attempts left are failed first.
    ///
    /// Fair between customers: of the runnable jobs, one of the customer
    /// with the fewest running jobs is claimed; among those, of the customer
    /// whose last claim is oldest (`job_turns`), then the oldest job. None
    /// of a customer that already runs `max_running_per_customer` is
    /// claimed (jobs of all customers count as one more customer). So the
    /// workers take turns between customers: a customer with one job waits
    /// for at most one job of each other customer, not for another's
    /// hundred queued ones. Claims are serialised by a transaction-scoped
    /// advisory lock, which keeps the limit exact across workers; a claim
    /// takes milliseconds.
    pub async fn claim_job(
        &self,
        worker: &str,
        lease: Duration,
        job_types: &[i16],
        max_running_per_customer: usize,
    ) -> Result<Option<Claim>> {
        let mut client = self.pool().get().await?;
        // Jobs whose worker died and that cannot run again: a cancel asked
        // for, or no attempts left.
        client
            .execute(
                "UPDATE jobs SET finished_at = now(), updated_at = now(), lease_owner = NULL,
                     state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
                     error = CASE WHEN cancel_requested THEN error ELSE jsonb_build_object(
                         'code', 'lease_expired', 'retryable', false, 'details', '{}'::jsonb,
                         'message', 'the worker of the last attempt stopped heartbeating, and no attempts are left') END
                 WHERE state = 'running' AND lease_expires_at < now()
                   AND (cancel_requested OR attempts >= max_attempts)",
                &[],
            )
            .await?;
        let max_running = i64::try_from(max_running_per_customer).unwrap_or(i64::MAX);
        let tx = client.transaction().await?;
        advisory_xact_lock(&tx, super::partitions::CLAIM_LOCK).await?;
        // `running`: each customer's jobs that hold a live lease now (a job
        // whose lease expired is runnable again, not running).
        let row = tx
            .query_opt(
                &format!(
                    "WITH running AS (
                         SELECT customer_id, count(*) AS jobs FROM jobs
                         WHERE state = 'running' AND lease_expires_at >= now()
                         GROUP BY customer_id),
                     claimed AS (
                         UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1,
                             lease_expires_at = now() + make_interval(secs => $2),
                             started_at = coalesce(started_at, now()), updated_at = now()
                         WHERE id = (
                             SELECT j.id FROM jobs j
                             LEFT JOIN running r ON r.customer_id IS NOT DISTINCT FROM j.customer_id
                             LEFT JOIN job_turns t ON t.customer_key = coalesce(j.customer_id, 0)
                             WHERE j.job_type = ANY($3) AND j.attempts < j.max_attempts AND NOT j.cancel_requested
                               AND ((j.state = 'queued' AND j.run_after <= now())
                                    OR (j.state = 'running' AND j.lease_expires_at < now()))
                               AND coalesce(r.jobs, 0) < $4
                             ORDER BY coalesce(r.jobs, 0), t.last_claimed_at NULLS FIRST, j.run_after, j.created_at
                             LIMIT 1
                             FOR UPDATE OF j SKIP LOCKED)
                         RETURNING *),
                     turn AS (
                         INSERT INTO job_turns (customer_key, last_claimed_at)
                         SELECT coalesce(customer_id, 0), clock_timestamp() FROM claimed
                         ON CONFLICT (customer_key) DO UPDATE SET last_claimed_at = excluded.last_claimed_at)
                     SELECT {JOB_COLUMNS} FROM claimed"
                ),
                &[&worker, &lease.as_secs_f64(), &job_types, &max_running],
            )
            .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let claimed = self.with_activities(rows::job(&row)?).await?;
        Ok(Some(Claim { fence: claimed.attempts, job: claimed }))
    }

    /// Extends the lease of attempt `fence`, unless it was lost.
    pub async fn heartbeat(&self, id: Uuid, fence: i32, lease: Duration) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
                 WHERE id = $1 AND attempts = $2 AND state = 'running'
                 RETURNING cancel_requested",
                &[&id, &fence, &lease.as_secs_f64()],
            )
            .await?;
        rows::lease(row)
    }

    /// Records progress (rows and pages, and the checkpoint to resume from)
    /// for attempt `fence`, in one statement that checks the fence; a write
    /// with a checkpoint counts one checkpoint commit (`batches_done`, the
    /// column's old name). `Lost` when the attempt no longer holds the job:
    /// nothing was written.
    pub async fn record_progress(&self, id: Uuid, fence: i32, update: &ProgressUpdate<'_>) -> Result<Lease> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE job_activities a SET
                     rows_done = a.rows_done + $4, pages_done = a.pages_done + $5,
                     batches_done = a.batches_done + CASE WHEN $6::jsonb IS NULL THEN 0 ELSE 1 END,
                     checkpoint = coalesce($6, a.checkpoint), finished = a.finished OR $7,
                     active_ms = a.active_ms + $8, updated_at = now()
                 FROM jobs j
                 WHERE a.job_id = j.id AND a.activity = $3 AND j.id = $1 AND j.attempts = $2 AND j.state = 'running'
                 RETURNING j.cancel_requested",
                &[
                    &id,
                    &fence,
                    &update.activity,
                    &update.rows,
                    &update.pages,
                    &update.checkpoint,
                    &update.finished,
                    &millis(update.active),
                ],
            )
            .await?;
        rows::lease(row)
    }

    /// Ends attempt `fence` in a terminal state (with the error for
    /// `Failed`), or puts the job back in the queue until `retry_at`.
    /// `false` when the attempt had lost the job: nothing was written.
    pub async fn finish_attempt(&self, id: Uuid, fence: i32, outcome: &AttemptOutcome) -> Result<bool> {
        let client = self.pool().get().await?;
        let (state, error, retry_at) = match outcome {
            AttemptOutcome::Succeeded => (JobState::Succeeded, None, None),
            AttemptOutcome::Cancelled => (JobState::Cancelled, None, None),
            AttemptOutcome::Failed(error) => (JobState::Failed, Some(error), None),
            AttemptOutcome::Retry { error, at } => (JobState::Queued, Some(error), Some(*at)),
        };
        let error = error.map(|e| serde_json::to_value(e).expect("a JobError always serialises"));
        let updated = client
            .execute(
                "UPDATE jobs SET state = $3, run_after = coalesce($5, run_after),
                     -- A success clears the error of earlier attempts; other ends keep the last one.
                     error = CASE WHEN $3 = 'succeeded' THEN NULL ELSE coalesce($4, error) END,
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
                     finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN now() END
                 WHERE id = $1 AND attempts = $2 AND state = 'running'",
                &[&id, &fence, &state.as_str(), &error, &retry_at],
            )
            .await?;
        Ok(updated == 1)
    }
}
