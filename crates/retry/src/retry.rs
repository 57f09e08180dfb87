//! The retry helper: tries an operation again after each failure the
//! caller judges passing, sleeping as a [`Backoff`] says, until it
//! succeeds, the caller says stop, or the next sleep would end past the
//! deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::Backoff;

/// How a bounded retry waits and when it gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// The pause after the n-th failure is `backoff.delay(n)`.
    pub backoff: Backoff,
    /// Give up rather than sleep past this much time since the first try
    /// (say, a lease after which the work is someone else's). `None`: no
    /// deadline, only the caller stops it.
    pub within: Option<Duration>,
}

/// The caller's judgement of one failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A passing fault: sleep, then try again.
    Retry,
    /// Trying again cannot help: return this error now.
    Stop,
}

/// One failed try, as the caller's judge sees it before the pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Failures so far, this one included (1-based).
    pub failures: u32,
    /// The sleep before the next try, if the judge says retry.
    pub pause: Duration,
    /// Time since the first try started.
    pub elapsed: Duration,
}

/// Runs `operation` until it succeeds, returning its value; or returns
/// its last error as soon as `judge` says [`Verdict::Stop`] or the next
/// pause would end at or past `plan.within`. The helper owns counting and
/// sleeping (on Tokio's clock, so tests can pause it); `judge` owns the
/// classification, and is the place to log a retry: it is called only
/// when the deadline still allows one.
pub async fn retry<T, E, Operation, Tried, Judge>(
    plan: Retry,
    mut judge: Judge,
    mut operation: Operation,
) -> Result<T, E>
where
    Operation: FnMut() -> Tried,
    Tried: Future<Output = Result<T, E>>,
    Judge: FnMut(&E, &Attempt) -> Verdict,
{
    let started = Instant::now();
    let mut failures = 0u32;
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        failures = failures.saturating_add(1);
        let attempt = Attempt { failures, pause: plan.backoff.delay(failures), elapsed: started.elapsed() };
        if plan.within.is_some_and(|within| attempt.elapsed + attempt.pause >= within) {
            return Err(error);
        }
        if judge(&error, &attempt) == Verdict::Stop {
            return Err(error);
        }
        tokio::time::sleep(attempt.pause).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[derive(Debug, PartialEq)]
    enum Fault {
        Passing(u32),
        Lasting,
    }

    /// Fails with what `script` says, try by try, then succeeds; records
    /// when each try started.
    struct Script {
        faults: RefCell<Vec<Fault>>,
        tries: RefCell<Vec<Duration>>,
        start: Instant,
    }

    impl Script {
        fn new(mut faults: Vec<Fault>) -> Script {
            faults.reverse();
            Script { faults: RefCell::new(faults), tries: RefCell::new(Vec::new()), start: Instant::now() }
        }

        async fn run(&self) -> Result<&'static str, Fault> {
            self.tries.borrow_mut().push(self.start.elapsed());
            match self.faults.borrow_mut().pop() {
                Some(fault) => Err(fault),
                None => Ok("done"),
            }
        }
    }

    fn passing_only(error: &Fault, _: &Attempt) -> Verdict {
        if matches!(error, Fault::Passing(_)) { Verdict::Retry } else { Verdict::Stop }
    }

    const PLAN: Retry =
        Retry { backoff: Backoff::new(Duration::from_millis(100), Duration::from_millis(400)), within: None };

    #[tokio::test(start_paused = true)]
    async fn passing_faults_are_retried_after_doubling_capped_pauses() {
        let script = Script::new((1..=5).map(Fault::Passing).collect());
        let mut seen = Vec::new();
        let judge = |error: &Fault, attempt: &Attempt| {
            seen.push((attempt.failures, attempt.pause));
            passing_only(error, attempt)
        };
        assert_eq!(retry(PLAN, judge, || script.run()).await, Ok("done"));
        let pauses = [100, 200, 400, 400, 400].map(|ms| ms * MS);
        assert_eq!(seen, (1..=5).zip(pauses).collect::<Vec<_>>());
        // Each try starts when the pauses before it have passed, no sooner.
        assert_eq!(*script.tries.borrow(), [0, 100, 300, 700, 1100, 1500].map(|ms| ms * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_fault_stops_at_once() {
        let script = Script::new(vec![Fault::Passing(1), Fault::Lasting, Fault::Passing(2)]);
        assert_eq!(retry(PLAN, passing_only, || script.run()).await, Err(Fault::Lasting));
        assert_eq!(*script.tries.borrow(), [0, 100].map(|ms| ms * MS), "no sleep after the lasting fault");
        assert_eq!(script.start.elapsed(), 100 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn it_gives_up_rather_than_sleep_past_the_deadline() {
        let script = Script::new((1..=100).map(Fault::Passing).collect());
        let plan = Retry { within: Some(Duration::from_millis(1000)), ..PLAN };
        let mut judged = 0;
        let judge = |error: &Fault, attempt: &Attempt| {
            judged += 1;
            passing_only(error, attempt)
        };
        // Tries at 0, 100, 300, 700; the pause after the fourth would end at 1100.
        assert_eq!(retry(plan, judge, || script.run()).await, Err(Fault::Passing(4)));
        assert_eq!(*script.tries.borrow(), [0, 100, 300, 700].map(|ms| ms * MS));
        assert_eq!(judged, 3, "the judge is not asked once the deadline decided");
        assert_eq!(script.start.elapsed(), 700 * MS, "gave up at once, before the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_success_returns_without_sleeping() {
        let script = Script::new(Vec::new());
        assert_eq!(retry(PLAN, passing_only, || script.run()).await, Ok("done"));
        assert_eq!(script.start.elapsed(), Duration::ZERO);
    }
}
