//! The transactional outbox. An entry is written in the same transaction as
//! the scorecard change it announces; a dispatcher claims due entries with a
//! lease (so a dead dispatcher's entries come back), writes ClickHouse, and
//! deletes them. Delivery is at least once; ClickHouse's version column makes
//! repeats harmless.
//!
//! Writers wake dispatchers after their commit with an [`OutboxAnnouncer`],
//! not with a NOTIFY inside the writing transaction: Postgres serialises the
//! commits of notifying transactions, fsync included.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_domain::{CustomerId, ScorecardId};
use tokio::sync::{Notify, mpsc};
use tokio_postgres::Transaction;

use crate::Store;
use crate::error::Result;
use crate::listen::Heard;

/// The Postgres channel an [`OutboxAnnouncer`] notifies and dispatchers
/// listen on.
const CHANNEL: &str = "scorekeeper_outbox";

/// Which write path queued an entry; a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxOrigin {
    Api,
    AutoQa,
}

impl OutboxOrigin {
    /// As stored in `outbox.origin`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxOrigin::Api => "api",
            OutboxOrigin::AutoQa => "autoqa",
        }
    }

    /// The origin a stored `outbox.origin` stands for. Anything but
    /// `autoqa` counts as the API's: the column is free text, and entries
    /// inserted by hand (see `docs/operations.md`) have always been
    /// delivered as API writes.
    pub fn from_stored(stored: &str) -> OutboxOrigin {
        if stored == OutboxOrigin::AutoQa.as_str() { OutboxOrigin::AutoQa } else { OutboxOrigin::Api }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub customer_id: CustomerId,
    pub scorecard_id: ScorecardId,
    pub origin: OutboxOrigin,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Tells the dispatchers of every process that outbox entries committed.
/// Cheap to clone; [`OutboxAnnouncer::written`] never waits.
///
/// Announcements are coalesced: one background task per announcer sends a
/// `NOTIFY` in a transaction of its own with `synchronous_commit` off (a
/// lost notification costs only delay, dispatchers also poll), at most one
/// every [`ANNOUNCE_SPACING`], so the database-wide notify lock is held
/// briefly and rarely, never across a write's fsync. The task ends when the
/// last clone is dropped.
#[derive(Clone, Debug)]
pub struct OutboxAnnouncer {
    pending: mpsc::Sender<()>,
}

/// Least time between two announcements of one announcer: a busy
/// dispatcher does not wait for them (it claims again after every batch),
/// an idle one wakes at most this much later.
pub const ANNOUNCE_SPACING: Duration = Duration::from_millis(5);

impl OutboxAnnouncer {
    /// Call after a transaction that wrote outbox entries committed (or may
    /// have: an extra announcement only costs a claim that finds nothing).
    pub fn written(&self) {
        // Full means an announcement is pending already: it covers this one.
        let _ = self.pending.try_send(());
    }
}

/// How far behind the outbox is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutboxStats {
    pub depth: i64,
    pub oldest_age_seconds: f64,
}

pub(crate) async fn enqueue(
    tx: &Transaction<'_>,
    customer_id: CustomerId,
    scorecard_id: ScorecardId,
    origin: OutboxOrigin,
) -> Result<()> {
    tx.execute(
        "INSERT INTO outbox (customer_id, scorecard_id, origin) VALUES ($1, $2, $3)",
        &[&customer_id.0, &scorecard_id.0, &origin.as_str()],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` due entries, oldest first, for `lease`: until
    /// then no other dispatcher sees them. Several dispatchers never claim
    /// the same entry at once (`SKIP LOCKED`).
    pub async fn claim_outbox(&self, limit: usize, lease: Duration) -> Result<Vec<OutboxEntry>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "UPDATE outbox SET attempts = attempts + 1,
                        next_attempt_at = now() + make_interval(secs => $2)
                 WHERE id IN (SELECT id FROM outbox WHERE next_attempt_at <= now()
                              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, customer_id, scorecard_id, origin, attempts, created_at",
                &[&(limit as i64), &lease.as_secs_f64()],
            )
            .await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                Ok(OutboxEntry {
                    id: r.try_get("id")?,
                    customer_id: CustomerId(r.try_get("customer_id")?),
                    scorecard_id: ScorecardId(r.try_get("scorecard_id")?),
                    origin: OutboxOrigin::from_stored(r.try_get("origin")?),
                    attempts: r.try_get("attempts")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.id);
        Ok(entries)
    }

    /// Removes delivered entries.
    pub async fn complete_outbox(&self, ids: &[i64]) -> Result<()> {
        let client = self.pool().get().await?;
        client.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids]).await?;
        Ok(())
    }

    /// Puts entries back for another try after `retry_in`, recording why.
    pub async fn fail_outbox(&self, ids: &[i64], retry_in: Duration, error: &str) -> Result<()> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
                 WHERE id = ANY($1)",
                &[&ids, &retry_in.as_secs_f64(), &error],
            )
            .await?;
        Ok(())
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        let client = self.pool().get().await?;
        let row = client
            .query_one(
                "SELECT count(*) AS depth,
                        coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) AS oldest_age_seconds
                 FROM outbox",
                &[],
            )
            .await?;
        Ok(OutboxStats {
            depth: row.try_get("depth")?,
            oldest_age_seconds: row.try_get("oldest_age_seconds")?,
        })
    }

    /// An announcer for writers of this process; its task runs on the
    /// current Tokio runtime.
    pub fn outbox_announcer(&self) -> OutboxAnnouncer {
        let (pending, mut announcements) = mpsc::channel(1);
        let store = self.clone();
        tokio::spawn(async move {
            while announcements.recv().await.is_some() {
                if let Err(error) = store.announce_outbox().await {
                    tracing::debug!(%error, "outbox announcement failed; dispatchers will poll");
                }
                tokio::time::sleep(ANNOUNCE_SPACING).await;
            }
        });
        OutboxAnnouncer { pending }
    }

    /// One NOTIFY on the outbox channel, committed without waiting for the
    /// WAL flush (set_config's `true` scopes it to this statement's own
    /// transaction).
    async fn announce_outbox(&self) -> Result<()> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')")
            .await?;
        client.execute(&statement, &[&CHANNEL]).await?;
        Ok(())
    }

    /// Wakes `notify` whenever an outbox entry is announced, until the process
    /// ends; reconnects after losing Postgres. Dispatchers also poll, so a
    /// missed notification only delays delivery.
    pub async fn listen_outbox(&self, notify: Arc<Notify>) {
        self.listen_channel(CHANNEL, notify).await
    }

    /// Wakes `notify` on every notification of the Postgres `channel` (a
    /// plain identifier), until the process ends; reconnects after losing
    /// Postgres.
    pub async fn listen_channel(&self, channel: &str, notify: Arc<Notify>) {
        self.listen(channel, |heard| match heard {
            // Whatever was missed meanwhile is found by the dispatcher's poll.
            Heard::Notification(_) | Heard::Lost => notify.notify_one(),
            Heard::Listening => {}
        })
        .await
    }
}
