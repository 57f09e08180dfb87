//! Holding a claimed attempt of a job, or a claimed partition: renewing its
//! lease while it runs ([`keep_lease`]) and recording how it ended
//! ([`record_end`]), over the two calls they make of the job tables
//! ([`Leases`]), so that both loops can be tested on a paused clock without
//! a server.

use std::future::Future;
use std::time::Duration;

use scorekeeper_retry::{Backoff, Retry, Verdict, retry};
use scorekeeper_store::Result;
use tokio::time::Instant;

use crate::context::StopSignal;
use crate::handler::StopReason;
use crate::job::{AttemptOutcome, Holding, Lease};
use crate::store::{JobStore, PartitionKey};

/// The fenced writes of a running attempt's owner: renew the lease, record
/// the end. [`JobStore`] in production.
pub trait Leases: Send + Sync {
    /// Extends the lease of claim `fence` of `holding` by `lease`, or
    /// finds it lost; also reports a cancel asked for.
    fn heartbeat(
        &self,
        holding: &Holding,
        fence: i32,
        lease: Duration,
    ) -> impl Future<Output = Result<Lease>> + Send;

    /// Records how claim `fence` ended; `false` when it had lost the job
    /// (or partition).
    fn finish_attempt(
        &self,
        holding: &Holding,
        fence: i32,
        outcome: &AttemptOutcome,
    ) -> impl Future<Output = Result<bool>> + Send;
}

impl Leases for JobStore {
    async fn heartbeat(&self, holding: &Holding, fence: i32, lease: Duration) -> Result<Lease> {
        match holding {
            Holding::Job(id) => JobStore::heartbeat(self, *id, fence, lease).await,
            Holding::Partition { job, activity, n } => {
                let key = PartitionKey { job: *job, activity, n: *n };
                self.heartbeat_partition(&key, fence, lease).await
            }
        }
    }

    async fn finish_attempt(&self, holding: &Holding, fence: i32, outcome: &AttemptOutcome) -> Result<bool> {
        match holding {
            Holding::Job(id) => JobStore::finish_attempt(self, *id, fence, outcome).await,
            Holding::Partition { job, activity, n } => {
                let key = PartitionKey { job: *job, activity, n: *n };
                self.finish_partition(&key, fence, outcome).await
            }
        }
    }
}

/// Renews the lease of claim `fence` of `holding` every third of `lease`
/// until it is lost, then stops the attempt (`LeaseLost`) and returns, so
/// the caller drops the handler at once. A cancel seen on a heartbeat
/// stops the attempt with `Cancelled` and the lease is kept (the handler
/// ends at its next checkpoint). Heartbeats that fail for a whole lease
/// since the last renewal count as lost: past it another worker may have
/// claimed the job, and running on would be unfenced reading.
pub async fn keep_lease(
    leases: &impl Leases,
    holding: &Holding,
    fence: i32,
    lease: Duration,
    stop: &StopSignal,
) {
    let mut last_renewed = Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        match leases.heartbeat(holding, fence, lease).await {
            Ok(Lease::Held { cancel_requested }) => {
                last_renewed = Instant::now();
                if cancel_requested {
                    stop.stop(StopReason::Cancelled);
                }
            }
            Ok(Lease::Lost) => break,
            Err(error) => {
                tracing::warn!(%error, "heartbeat failed");
                if last_renewed.elapsed() >= lease {
                    break;
                }
            }
        }
    }
    stop.stop(StopReason::LeaseLost);
}

/// Records `outcome` of claim `fence` of `holding`, retrying failures (Postgres
/// unreachable) with `backoff` for up to one `lease`: after that the job is
/// another worker's to take over anyway, and it runs again.
pub async fn record_end(
    leases: &impl Leases,
    holding: &Holding,
    fence: i32,
    outcome: &AttemptOutcome,
    lease: Duration,
    backoff: Backoff,
) {
    let plan = Retry { backoff, within: Some(lease) };
    // Every error is worth another try here: a write that cannot succeed
    // costs a few retries, giving up early costs a lease of waiting.
    let judge = |error: &scorekeeper_store::StoreError, attempt: &scorekeeper_retry::Attempt| {
        tracing::warn!(%error, failures = attempt.failures, "recording the attempt's end failed; retrying");
        Verdict::Retry
    };
    match retry(plan, judge, || leases.finish_attempt(holding, fence, outcome)).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the job was taken over before this attempt could record its end"),
        Err(error) => tracing::error!(
            %error,
            "could not record the attempt's end; the lease will expire and the job run again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use deadpool_postgres::{PoolError, TimeoutType};
    use scorekeeper_store::StoreError;
    use uuid::Uuid;

    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    /// Answers heartbeats and end records from a script, in order (the last
    /// answer repeats), and records when each call came.
    struct ScriptedLeases {
        heartbeats: Mutex<Vec<Answer>>,
        ends: Mutex<Vec<Answer>>,
        calls: Mutex<Vec<Duration>>,
        start: Instant,
    }

    #[derive(Clone, Copy)]
    enum Answer {
        Held,
        Cancel,
        Lost,
        Unreachable,
        Recorded,
    }

    fn unreachable() -> StoreError {
        StoreError::Pool(PoolError::Timeout(TimeoutType::Wait))
    }

    impl ScriptedLeases {
        fn new(heartbeats: &[Answer], ends: &[Answer]) -> ScriptedLeases {
            ScriptedLeases {
                heartbeats: Mutex::new(heartbeats.iter().rev().copied().collect()),
                ends: Mutex::new(ends.iter().rev().copied().collect()),
                calls: Mutex::new(Vec::new()),
                start: Instant::now(),
            }
        }

        fn next(&self, script: &Mutex<Vec<Answer>>) -> Answer {
            self.calls.lock().unwrap().push(self.start.elapsed());
            let mut script = script.lock().unwrap();
            if script.len() > 1 { script.pop().unwrap() } else { script[0] }
        }

        fn calls(&self) -> Vec<u64> {
            self.calls.lock().unwrap().iter().map(|d| d.as_secs()).collect()
        }
    }

    impl Leases for ScriptedLeases {
        fn heartbeat(&self, _: &Holding, _: i32, _: Duration) -> impl Future<Output = Result<Lease>> + Send {
            let answer = self.next(&self.heartbeats);
            std::future::ready(match answer {
                Answer::Held => Ok(Lease::Held { cancel_requested: false }),
                Answer::Cancel => Ok(Lease::Held { cancel_requested: true }),
                Answer::Lost => Ok(Lease::Lost),
                Answer::Unreachable => Err(unreachable()),
                Answer::Recorded => unreachable!("not a heartbeat answer"),
            })
        }

        fn finish_attempt(
            &self,
            _: &Holding,
            _: i32,
            _: &AttemptOutcome,
        ) -> impl Future<Output = Result<bool>> + Send {
            let answer = self.next(&self.ends);
            std::future::ready(match answer {
                Answer::Recorded => Ok(true),
                Answer::Lost => Ok(false),
                Answer::Unreachable => Err(unreachable()),
                _ => unreachable!("not an end answer"),
            })
        }
    }

    async fn keep(leases: &ScriptedLeases, stop: &StopSignal, within: Duration) -> bool {
        tokio::time::timeout(within, keep_lease(leases, &Holding::Job(Uuid::nil()), 1, LEASE, stop))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_lease_is_renewed_every_third_of_it() {
        let (leases, stop) = (ScriptedLeases::new(&[Answer::Held], &[]), StopSignal::new());
        assert!(!keep(&leases, &stop, Duration::from_secs(105)).await, "it runs while the lease is held");
        assert_eq!(leases.calls(), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(stop.reason(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_lease_stops_the_attempt_at_once() {
        let leases = ScriptedLeases::new(&[Answer::Held, Answer::Held, Answer::Lost], &[]);
        let stop = StopSignal::new();
        assert!(keep(&leases, &stop, Duration::from_secs(600)).await);
        assert_eq!(leases.calls(), [10, 20, 30]);
        assert_eq!(stop.reason(), Some(StopReason::LeaseLost));
        assert!(stop.token().is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_failing_for_a_whole_lease_stop_the_attempt() {
        let leases = ScriptedLeases::new(&[Answer::Held, Answer::Unreachable], &[]);
        let stop = StopSignal::new();
        assert!(keep(&leases, &stop, Duration::from_secs(600)).await);
        // Renewed at 10 s; failing from 20 s; a lease after the renewal, 40 s.
        assert_eq!(leases.calls(), [10, 20, 30, 40]);
        assert_eq!(stop.reason(), Some(StopReason::LeaseLost));
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_failing_for_less_than_a_lease_are_survived() {
        let script =
            [Answer::Unreachable, Answer::Unreachable, Answer::Held, Answer::Unreachable, Answer::Held];
        let (leases, stop) = (ScriptedLeases::new(&script, &[]), StopSignal::new());
        assert!(!keep(&leases, &stop, Duration::from_secs(95)).await, "never a whole lease without renewal");
        assert_eq!(stop.reason(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancel_seen_on_a_heartbeat_stops_the_handler_but_keeps_the_lease() {
        let (leases, stop) =
            (ScriptedLeases::new(&[Answer::Held, Answer::Cancel, Answer::Held], &[]), StopSignal::new());
        assert!(!keep(&leases, &stop, Duration::from_secs(45)).await, "the lease is still renewed");
        assert_eq!(leases.calls(), [10, 20, 30, 40]);
        assert_eq!(stop.reason(), Some(StopReason::Cancelled));
        assert!(stop.token().is_cancelled(), "the handler is told at once");
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_is_recorded_through_outages_shorter_than_a_lease() {
        let leases = ScriptedLeases::new(&[], &[Answer::Unreachable, Answer::Unreachable, Answer::Recorded]);
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        record_end(&leases, &Holding::Job(Uuid::nil()), 1, &AttemptOutcome::Succeeded, LEASE, backoff).await;
        assert_eq!(leases.calls(), [0, 1, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn recording_the_end_gives_up_within_one_lease() {
        let leases = ScriptedLeases::new(&[], &[Answer::Unreachable]);
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        record_end(&leases, &Holding::Job(Uuid::nil()), 1, &AttemptOutcome::Succeeded, LEASE, backoff).await;
        // Pauses of 1, 2, 4, 5, 5, … s; the one after the try at 27 s would end at 32 s.
        assert_eq!(leases.calls(), [0, 1, 3, 7, 12, 17, 22, 27]);
        assert!(leases.start.elapsed() < LEASE);
    }
}
