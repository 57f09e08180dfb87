//! The outbox dispatcher: after a scorecard change commits, writes the
//! scorecard and its scores, as Postgres holds them then, to ClickHouse.
//!
//! Delivery is at least once. Entries are claimed with a lease, so a
//! dispatcher that dies mid-batch loses nothing: its entries come back when
//! the lease runs out. Reading the current state (not a snapshot taken at
//! enqueue time) is safe because ClickHouse keeps the highest version.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use scorekeeper_analytics::{Analytics, WritePath};
use scorekeeper_retry::{Attempt, Backoff, Retry, Verdict};
use scorekeeper_store::outbox::{OutboxEntry, OutboxOrigin};
use scorekeeper_store::{Store, StoreError};
use tokio::sync::{Notify, watch};

use crate::error::Result;
use crate::retry::{self, RetryDecision};

#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// Most entries written to ClickHouse in one batch.
    pub batch_size: usize,
    /// How long a claim hides entries from other dispatchers.
    pub lease: Duration,
    /// Poll interval when no notification arrives.
    pub poll_interval: Duration,
    /// Batches this dispatcher delivers at once. Delivery waits mostly on
    /// ClickHouse and on Postgres commits, so a second batch in flight can
    /// drain more; claims never overlap (`SKIP LOCKED`) and order does not
    /// matter (versions decide). 1 by default: on the 2-core bench machine
    /// a second loop showed no clear gain.
    pub concurrency: usize,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            batch_size: 500,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            concurrency: 1,
        }
    }
}

pub struct OutboxDispatcher {
    store: Store,
    analytics: Analytics,
    config: DispatcherConfig,
    wake: Arc<Notify>,
}

impl OutboxDispatcher {
    pub fn new(store: Store, analytics: Analytics, config: DispatcherConfig) -> OutboxDispatcher {
        OutboxDispatcher { store, analytics, config, wake: Arc::new(Notify::new()) }
    }

    /// Runs until `shutdown` turns true: `concurrency` loops each drain due
    /// entries, then wait for a Postgres notification or the poll interval.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let listener = {
            let store = self.store.clone();
            let wake = self.wake.clone();
            tokio::spawn(async move { store.listen_outbox(wake).await })
        };
        let dispatcher = Arc::new(self);
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..dispatcher.config.concurrency.max(1) {
            let dispatcher = dispatcher.clone();
            let shutdown = shutdown.clone();
            loops.spawn(async move { dispatcher.dispatch_loop(shutdown).await });
        }
        while loops.join_next().await.is_some() {}
        listener.abort();
    }

    async fn dispatch_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut consecutive_failures = 0u32;
        while !*shutdown.borrow() {
            let pause = match self.dispatch_once().await {
                Ok(0) => {
                    consecutive_failures = 0;
                    self.config.poll_interval
                }
                Ok(_) => {
                    consecutive_failures = 0;
                    // More may be due; the other loops were perhaps asleep.
                    self.wake.notify_one();
                    continue;
                }
                // Postgres itself failed (claiming or completing): back off.
                Err(error) => {
                    consecutive_failures += 1;
                    tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "outbox dispatch failed");
                    retry::BACKOFF.delay(consecutive_failures)
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims one batch of due entries and delivers it. Returns how many
    /// entries were claimed (0 when none were due). A ClickHouse failure is
    /// not an error here: the entries are put back for a later try.
    pub async fn dispatch_once(&self) -> Result<usize> {
        let entries = self.store.claim_outbox(self.config.batch_size, self.config.lease).await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        match self.deliver(&entries).await {
            Ok(()) => {
                settle(self.config.lease, || self.store.complete_outbox(&ids)).await?;
                metrics::counter!(crate::metrics::OUTBOX_DELIVERED_TOTAL).increment(entries.len() as u64);
            }
            Err(error) => {
                let attempts = entries.iter().map(|e| e.attempts).max().unwrap_or(1).max(1) as u32;
                let delay = match retry::decide(&error, attempts) {
                    RetryDecision::RetryLater(delay) => delay,
                    RetryDecision::NeedsOperator(delay) => {
                        tracing::error!(%error, source = ?std::error::Error::source(&error), "outbox delivery refused by ClickHouse; an operator must look; will keep retrying");
                        delay
                    }
                    // Nothing in a claimed entry is the caller's to fix; keep it.
                    RetryDecision::Never => retry::MAX,
                };
                let reason = format!(
                    "{error}: {}",
                    std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default()
                );
                settle(self.config.lease, || self.store.fail_outbox(&ids, delay, &reason)).await?;
                metrics::counter!(crate::metrics::OUTBOX_FAILURES_TOTAL).increment(1);
            }
        }
        Ok(entries.len())
    }

    /// Writes the current state of the entries' scorecards, one ClickHouse
    /// write per origin so the path label is right.
    async fn deliver(&self, entries: &[OutboxEntry]) -> Result<()> {
        for path in [WritePath::Api, WritePath::AutoQa] {
            let ids: BTreeSet<_> =
                entries.iter().filter(|e| path_of(&e.origin) == path).map(|e| e.scorecard_id).collect();
            if ids.is_empty() {
                continue;
            }
            let ids: Vec<_> = ids.into_iter().collect();
            let batch = self.store.scorecard_mirror(&ids).await?;
            self.analytics.write(path, &batch).await?;
        }
        Ok(())
    }
}

/// Pauses between tries of [`settle`]: the sync paths' backoff, at most
/// 2 s apart so that a Postgres back after a restart is noticed soon.
const SETTLE_BACKOFF: Backoff = Backoff::new(retry::BACKOFF.base(), Duration::from_secs(2));

/// Records the outcome of a claimed batch (`record` is `complete_outbox` or
/// `fail_outbox`), retrying transient failures (Postgres unreachable,
/// restarting) for at most the claim's `lease`; any other failure is
/// returned at once. Giving up at once on a transient one would leave the
/// entries hidden for the rest of the lease (60 s) although this
/// dispatcher is alive: a Postgres restart in the middle of a delivery
/// made every write in flight reach ClickHouse up to a minute late (found
/// by `scorekeeper-chaos`'s Postgres restart scenario).
async fn settle<F, Fut>(lease: Duration, record: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = scorekeeper_store::Result<()>>,
{
    let plan = Retry { backoff: SETTLE_BACKOFF, within: Some(lease) };
    let judge = |error: &StoreError, attempt: &Attempt| {
        if !error.is_transient() {
            return Verdict::Stop;
        }
        tracing::debug!(%error, attempt = attempt.failures, "recording an outbox outcome failed; retrying");
        Verdict::Retry
    };
    Ok(scorekeeper_retry::retry(plan, judge, record).await?)
}

/// The write path an outbox origin stands for.
fn path_of(origin: &OutboxOrigin) -> WritePath {
    match origin {
        OutboxOrigin::Api => WritePath::Api,
        OutboxOrigin::AutoQa => WritePath::AutoQa,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use deadpool_postgres::{PoolError, TimeoutType};
    use tokio::time::Instant;

    use super::*;
    use crate::SyncError;

    const LEASE: Duration = Duration::from_secs(60);

    /// A record call that fails as scripted (then succeeds) and notes when
    /// it was called, in milliseconds since the start.
    struct Record {
        failures: Mutex<Vec<StoreError>>,
        calls: Mutex<Vec<u128>>,
        start: Instant,
    }

    fn unreachable() -> StoreError {
        StoreError::Pool(PoolError::Timeout(TimeoutType::Wait))
    }

    impl Record {
        fn failing(failures: Vec<StoreError>) -> Record {
            let failures = failures.into_iter().rev().collect();
            Record { failures: Mutex::new(failures), calls: Mutex::new(Vec::new()), start: Instant::now() }
        }

        fn call(&self) -> std::future::Ready<scorekeeper_store::Result<()>> {
            self.calls.lock().unwrap().push(self.start.elapsed().as_millis());
            std::future::ready(self.failures.lock().unwrap().pop().map_or(Ok(()), Err))
        }

        fn calls(&self) -> Vec<u128> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_the_outcome_is_recorded() {
        let record = Record::failing(vec![unreachable(), unreachable(), unreachable()]);
        settle(LEASE, || record.call()).await.expect("recorded in the end");
        assert_eq!(record.calls(), [0, 200, 600, 1400]);
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_stay_at_two_seconds_and_it_gives_up_before_the_lease() {
        let record = Record::failing((0..1000).map(|_| unreachable()).collect());
        let error = settle(LEASE, || record.call()).await.expect_err("Postgres never came back");
        assert!(matches!(error, SyncError::Store(StoreError::Pool(_))), "{error:?}");
        let calls = record.calls();
        assert_eq!(&calls[..6], [0, 200, 600, 1400, 3000, 5000]);
        assert!(calls.windows(2).all(|w| w[1] - w[0] <= 2000), "{calls:?}");
        let last = *calls.last().unwrap();
        assert!(last + 2000 >= LEASE.as_millis() && last < LEASE.as_millis(), "gave up at {last} ms");
        assert_eq!(record.start.elapsed().as_millis(), last, "without sleeping past the lease");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_is_not_transient_is_returned_at_once() {
        let record = Record::failing(vec![unreachable(), StoreError::Corrupt("a broken row".into())]);
        let error = settle(LEASE, || record.call()).await.expect_err("not retried");
        assert!(matches!(error, SyncError::Store(StoreError::Corrupt(_))), "{error:?}");
        assert_eq!(record.calls(), [0, 200]);
    }
}
