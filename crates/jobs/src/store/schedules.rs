//! Cron schedules' shared state: the last tick each schedule fired, in the
//! `schedules` table.
//!
//! Contract: a tick is fired by the one transaction that moves the
//! schedule's `last_tick` forward to it, and that transaction also creates
//! the tick's job. So each tick yields at most one job however many
//! schedulers (one per `serve` process) fire it, a tick older than the last
//! one fired yields none, and a tick and its job are never recorded one
//! without the other. As a second guard, the job's `dedupe_key` is
//! [`tick_dedupe_key`], unique in `jobs`.
//!
//! The row also tells the scheduler what was fired before it: the job
//! builder is given the previous tick, so a job fired after downtime can
//! cover every tick that was missed (one catch-up job, not one per tick).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use scorekeeper_store::{Result, StoreError};

use super::JobStore;
use super::queue::insert_job;
use crate::job::{Job, NewJob};

/// The `dedupe_key` of the job of schedule `name` at `tick`:
/// `schedule:<name>:<tick, RFC 3339 UTC>`.
pub fn tick_dedupe_key(name: &str, tick: DateTime<Utc>) -> String {
    format!("schedule:{name}:{}", tick.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

impl JobStore {
    /// The newest tick schedule `name` fired (or recorded), `None` if it
    /// never did.
    pub async fn schedule_last_tick(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        let client = self.pool().get().await?;
        let row = client.query_opt("SELECT last_tick FROM schedules WHERE name = $1", &[&name]).await?;
        row.map(|r| r.try_get("last_tick")).transpose().map_err(Into::into)
    }

    /// Records `tick` as schedule `name`'s last tick, without a job, if the
    /// schedule has no row yet. `true` when this call created the row (the
    /// schedule's first start anywhere), `false` when it existed already
    /// (nothing changed).
    ///
    /// The scheduler calls this on start so that installing a schedule does
    /// not fire the tick that happened just before: only ticks after the
    /// recorded one create jobs.
    pub async fn seed_schedule(&self, name: &str, tick: DateTime<Utc>) -> Result<bool> {
        let client = self.pool().get().await?;
        let created = client
            .execute(
                "INSERT INTO schedules (name, last_tick) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &tick.trunc_subsecs(6)],
            )
            .await?;
        Ok(created == 1)
    }

    /// Fires `tick` of schedule `name`: if `tick` is newer than the
    /// schedule's last tick (or the schedule has none), moves the last tick
    /// to it and creates the job `make_job` builds, in one transaction, and
    /// returns that job. Returns `None`, writing nothing, when this tick or
    /// a later one was already fired, by another scheduler or an earlier
    /// call.
    ///
    /// `make_job` is given the previous last tick (`None` for the first tick
    /// ever), so the job can cover everything since then, ticks missed while
    /// no scheduler ran included. It runs with the schedule's row locked:
    /// keep it quick. Its `dedupe_key` is replaced by
    /// [`tick_dedupe_key`]`(name, tick)`; should a job with that key exist
    /// already (the row was reset by hand), the tick is still recorded but
    /// no second job is created, and `None` is returned.
    ///
    /// `tick` is taken to the microsecond, Postgres's precision.
    pub async fn fire_tick(
        &self,
        name: &str,
        tick: DateTime<Utc>,
        make_job: impl FnOnce(Option<DateTime<Utc>>) -> NewJob,
    ) -> Result<Option<Job>> {
        let tick = tick.trunc_subsecs(6);
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Lock the schedule's row, creating it if there is none. Two
        // rounds at most: an insert that conflicts waited for the
        // transaction that created the row to commit, so the next SELECT
        // (a new snapshot) finds it.
        let mut previous = None;
        let mut locked = false;
        for _ in 0..2 {
            let row =
                tx.query_opt("SELECT last_tick FROM schedules WHERE name = $1 FOR UPDATE", &[&name]).await?;
            if let Some(row) = row {
                let last: DateTime<Utc> = row.try_get("last_tick")?;
                if last >= tick {
                    // Fired already (or a later tick was): roll back.
                    return Ok(None);
                }
                tx.execute(
                    "UPDATE schedules SET last_tick = $2, updated_at = now() WHERE name = $1",
                    &[&name, &tick],
                )
                .await?;
                previous = Some(last);
                locked = true;
                break;
            }
            let inserted = tx
                .execute(
                    "INSERT INTO schedules (name, last_tick) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &tick],
                )
                .await?;
            if inserted == 1 {
                locked = true;
                break;
            }
        }
        if !locked {
            return Err(StoreError::Corrupt(format!(
                "schedule {name:?} was created and removed while firing a tick"
            )));
        }
        let mut new = make_job(previous);
        new.dedupe_key = Some(tick_dedupe_key(name, tick));
        let created = insert_job(&tx, &new).await?;
        tx.commit().await?;
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn dedupe_keys_name_the_schedule_and_the_exact_tick() {
        let tick = Utc.with_ymd_and_hms(2025, 3, 1, 2, 0, 0).unwrap();
        assert_eq!(tick_dedupe_key("reindex", tick), "schedule:reindex:2025-03-01T02:00:00Z");
        let later = tick + chrono::Duration::milliseconds(1);
        assert_ne!(tick_dedupe_key("reindex", tick), tick_dedupe_key("reindex", later));
    }
}
