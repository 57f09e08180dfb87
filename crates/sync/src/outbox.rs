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
use scorekeeper_store::Store;
use scorekeeper_store::outbox::{OutboxEntry, OutboxOrigin};
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
                    retry::backoff(consecutive_failures)
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
                self.settle(|| self.store.complete_outbox(&ids)).await?;
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
                self.settle(|| self.store.fail_outbox(&ids, delay, &reason)).await?;
                metrics::counter!(crate::metrics::OUTBOX_FAILURES_TOTAL).increment(1);
            }
        }
        Ok(entries.len())
    }

    /// Records the outcome of a claimed batch (`complete_outbox` or
    /// `fail_outbox`), retrying transient failures (Postgres unreachable,
    /// restarting) for at most
    /// the claim's lease. Giving up at once would leave the entries hidden
    /// for the rest of the lease (60 s) although this dispatcher is alive:
    /// a Postgres restart in the middle of a delivery made every write in
    /// flight reach ClickHouse up to a minute late (found by
    /// `scorekeeper-chaos`, scenario 3).
    async fn settle<F, Fut>(&self, record: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = scorekeeper_store::Result<()>>,
    {
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            match record().await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    attempt += 1;
                    let pause = retry::backoff(attempt).min(Duration::from_secs(2));
                    if !error.is_transient() || started.elapsed() + pause >= self.config.lease {
                        return Err(error.into());
                    }
                    tracing::debug!(%error, attempt, "recording an outbox outcome failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
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

/// The write path an outbox origin stands for.
fn path_of(origin: &OutboxOrigin) -> WritePath {
    match origin {
        OutboxOrigin::Api => WritePath::Api,
        OutboxOrigin::AutoQa => WritePath::AutoQa,
    }
}
