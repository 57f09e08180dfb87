//! What a job type plugs into the engine: a typed [`JobHandler`] (its type
//! number, payload, activities with their checkpoints, retry policy), and
//! the [`Registry`] that erases the types once, so that decoding the
//! payload and failing a job whose payload does not decode happen here, in
//! the engine, not in every handler.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use scorekeeper_domain::CustomerId;
use scorekeeper_retry::Backoff;
use serde::de::DeserializeOwned;
use serde::{Deserialize as _, Serialize};
use sha2::{Digest, Sha256};

use crate::context::JobContext;
use crate::job::{JobError, NewJob};

/// Why a handler stopped early without failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Someone asked to cancel the job.
    Cancelled,
    /// Another worker holds the job now; this attempt must not write.
    LeaseLost,
}

/// How a handler's run ended, other than by success.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    Stopped(StopReason),
    /// The attempt failed; `retryable` says whether another attempt may help.
    Failed(JobError),
}

impl RunError {
    /// A failure no other attempt can mend (a payload the handler cannot
    /// read, a bug): the job fails at once with `code` and `message`.
    pub fn fatal(code: &str, message: String) -> RunError {
        RunError::Failed(JobError {
            code: code.into(),
            message,
            retryable: false,
            details: serde_json::Value::Null,
        })
    }
}

/// The backoff between attempts of the job types we have: 1 s doubling to
/// 5 min.
pub const DEFAULT_RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));

/// How a job type is retried: the attempts a job gets (stored on the job
/// when it is created) and the delay before each next attempt
/// (`backoff.delay(attempts so far)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub backoff: Backoff,
}

/// One activity of a job type, named as its progress row, with the type
/// of the checkpoint it records. A handle the handler passes to
/// [`JobContext`]'s progress methods, which encode and decode the
/// checkpoint: a checkpoint of the wrong type cannot be written, and one
/// that does not decode fails the attempt (see
/// [`JobContext::checkpoint`]).
pub struct Activity<C> {
    name: &'static str,
    checkpoint: PhantomData<fn() -> C>,
}

impl<C> Activity<C> {
    pub const fn new(name: &'static str) -> Activity<C> {
        Activity { name, checkpoint: PhantomData }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<C> Clone for Activity<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Activity<C> {}

impl<C> std::fmt::Debug for Activity<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Activity").field(&self.name).finish()
    }
}

/// A job type: what its payload is, which activities a payload makes, how
/// it retries, and how one attempt runs.
///
/// Contract of `run`: called once per attempt, with the payload decoded;
/// it must resume from the checkpoints in `ctx` (activities already
/// finished are skipped), record progress only through `ctx` (fenced), and
/// return soon after `ctx.stopping()` fires.
///
/// An activity with more rows than one worker should copy in one go is
/// split: `run` plans it into ranges of type `Partition`
/// ([`JobContext::plan_partitions`]) and hands it to the engine
/// ([`JobContext::run_partitions`]), which has any worker, in this process
/// or another, call `run_partition` for each range, under the same
/// contract, with the partition's own checkpoint in its `ctx`.
pub trait JobHandler: Send + Sync + 'static {
    /// The proto `JobType` number, stored in `jobs.job_type`.
    const JOB_TYPE: i16;
    /// A word for logs and messages, e.g. `reindex`.
    const NAME: &'static str;
    const RETRY_POLICY: RetryPolicy;
    /// Stored as JSON in `jobs.payload`.
    type Payload: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The rows of one partition of an activity, stored as JSON in
    /// `job_partitions.range`; `()` for a type that never partitions.
    type Partition: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The activities of a job with this payload, in order; shown as
    /// progress from the moment the job is created.
    fn activities(payload: &Self::Payload) -> Vec<&'static str>;

    fn run<'a>(&'a self, ctx: &'a JobContext, payload: Self::Payload) -> BoxFuture<'a, Result<(), RunError>>;

    /// Runs one partition, `range`, of the activity `ctx.partition()`
    /// names. Only called for activities `run` partitioned.
    fn run_partition<'a>(
        &'a self,
        ctx: &'a JobContext,
        payload: Self::Payload,
        range: Self::Partition,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        let _ = (ctx, payload, range);
        Box::pin(std::future::ready(Err(RunError::fatal(
            "internal",
            format!("{} jobs have no partitions", Self::NAME),
        ))))
    }
}

impl NewJob {
    /// The job of type `H` with `payload`, owned by `customer_id` (`None`:
    /// an operator's, across customers): its activities and attempts come
    /// from `H`. No dedupe key; set one for a job that must exist once.
    pub fn of<H: JobHandler>(payload: &H::Payload, customer_id: Option<CustomerId>) -> NewJob {
        NewJob {
            customer_id,
            job_type: H::JOB_TYPE,
            payload: serde_json::to_value(payload).expect("a job payload serialises"),
            max_attempts: H::RETRY_POLICY.max_attempts,
            dedupe_key: None,
            active_key: None,
            activities: H::activities(payload).into_iter().map(str::to_owned).collect(),
        }
    }

    /// This job, unless one of the same type, customer and payload is
    /// already queued or running: then creating it returns that one. For
    /// work that a second copy would only repeat, such as the repair of a
    /// scope an earlier repair is still reindexing.
    pub fn one_active_per_payload(mut self) -> NewJob {
        let identity = serde_json::json!([self.job_type, self.customer_id.map(|c| c.0), &self.payload]);
        let digest = Sha256::digest(identity.to_string().as_bytes());
        self.active_key = Some(format!("payload:{}", hex::encode(digest)));
        self
    }
}

/// Why the registry cannot answer for a job.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no handler is registered for job type {job_type}")]
    Unregistered { job_type: i16 },
    #[error("{name} job: the payload does not decode")]
    InvalidPayload {
        name: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A handler with its types erased: what the worker and the API need.
trait ErasedHandler: Send + Sync {
    fn activities(&self, payload: &serde_json::Value) -> Result<Vec<String>, RegistryError>;
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>>;
    fn run_partition<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>>;
    fn retry_policy(&self) -> RetryPolicy;
}

struct Typed<H>(H);

impl<H: JobHandler> Typed<H> {
    fn payload(payload: &serde_json::Value) -> Result<H::Payload, RegistryError> {
        H::Payload::deserialize(payload)
            .map_err(|source| RegistryError::InvalidPayload { name: H::NAME, source })
    }
}

impl<H: JobHandler> ErasedHandler for Typed<H> {
    fn activities(&self, payload: &serde_json::Value) -> Result<Vec<String>, RegistryError> {
        Ok(H::activities(&Self::payload(payload)?).into_iter().map(str::to_owned).collect())
    }

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>> {
        match Self::payload(&ctx.job().payload) {
            Ok(payload) => self.0.run(ctx, payload),
            // Stored by an older version or by hand: no attempt can read it.
            Err(error) => Box::pin(std::future::ready(Err(RunError::fatal(
                "invalid_payload",
                scorekeeper_domain::report::error_chain(&error),
            )))),
        }
    }

    fn run_partition<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>> {
        let range = ctx.partition().map(|p| (p.n, H::Partition::deserialize(&p.range)));
        match (Self::payload(&ctx.job().payload), range) {
            (Ok(payload), Some((_, Ok(range)))) => self.0.run_partition(ctx, payload, range),
            (Err(error), _) => Box::pin(std::future::ready(Err(RunError::fatal(
                "invalid_payload",
                scorekeeper_domain::report::error_chain(&error),
            )))),
            (Ok(_), Some((n, Err(error)))) => Box::pin(std::future::ready(Err(RunError::fatal(
                "invalid_partition",
                format!("{} job: the range of partition {n} does not decode: {error}", H::NAME),
            )))),
            (Ok(_), None) => Box::pin(std::future::ready(Err(RunError::fatal(
                "internal",
                "a partition's run was given no partition".into(),
            )))),
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        H::RETRY_POLICY
    }
}

/// Handlers by job type number. A type that is not registered cannot be
/// created through the API, nor claimed by a worker.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<i16, Arc<dyn ErasedHandler>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `handler` for its type, `H::JOB_TYPE`.
    pub fn register<H: JobHandler>(mut self, handler: H) -> Registry {
        self.handlers.insert(H::JOB_TYPE, Arc::new(Typed(handler)));
        self
    }

    pub fn is_registered(&self, job_type: i16) -> bool {
        self.handlers.contains_key(&job_type)
    }

    /// The activities a job of `job_type` with `payload` has, decoding the
    /// payload as its handler does.
    pub fn activities(
        &self,
        job_type: i16,
        payload: &serde_json::Value,
    ) -> Result<Vec<String>, RegistryError> {
        self.handler(job_type)?.activities(payload)
    }

    /// The retry policy of `job_type`.
    pub fn retry_policy(&self, job_type: i16) -> Result<RetryPolicy, RegistryError> {
        Ok(self.handler(job_type)?.retry_policy())
    }

    /// Runs one attempt of the job in `ctx` with its type's handler,
    /// decoding its payload first (a payload that does not decode fails the
    /// job: `invalid_payload`, not retryable).
    pub(crate) fn run<'a>(
        &'a self,
        ctx: &'a JobContext,
    ) -> Result<BoxFuture<'a, Result<(), RunError>>, RegistryError> {
        Ok(self.handler(ctx.job().job_type)?.run(ctx))
    }

    /// Runs one claim of the partition in `ctx` with its job type's
    /// handler, decoding the payload and the partition's range first.
    pub(crate) fn run_partition<'a>(
        &'a self,
        ctx: &'a JobContext,
    ) -> Result<BoxFuture<'a, Result<(), RunError>>, RegistryError> {
        Ok(self.handler(ctx.job().job_type)?.run_partition(ctx))
    }

    fn handler(&self, job_type: i16) -> Result<&Arc<dyn ErasedHandler>, RegistryError> {
        self.handlers.get(&job_type).ok_or(RegistryError::Unregistered { job_type })
    }

    pub fn job_types(&self) -> Vec<i16> {
        let mut types: Vec<i16> = self.handlers.keys().copied().collect();
        types.sort_unstable();
        types
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use scorekeeper_store::Store;
    use serde::Deserialize;

    use super::*;
    use crate::job::{ActivityProgress, Job, JobState};
    use crate::store::JobStore;

    #[derive(Serialize, Deserialize)]
    struct Count {
        to: u32,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Reached {
        at: u32,
    }

    const COUNTING: Activity<Reached> = Activity::new("counting");

    /// Resumes from its checkpoint and reports where it would start.
    struct Counter;

    impl JobHandler for Counter {
        const JOB_TYPE: i16 = 7;
        const NAME: &'static str = "counter";
        const RETRY_POLICY: RetryPolicy = RetryPolicy { max_attempts: 4, backoff: DEFAULT_RETRY_BACKOFF };
        type Payload = Count;
        type Partition = ();

        fn activities(_: &Count) -> Vec<&'static str> {
            vec![COUNTING.name()]
        }

        fn run<'a>(&'a self, ctx: &'a JobContext, payload: Count) -> BoxFuture<'a, Result<(), RunError>> {
            Box::pin(async move {
                let from = ctx.checkpoint(&COUNTING)?.map_or(0, |r| r.at);
                if from >= payload.to {
                    Ok(())
                } else {
                    Err(RunError::fatal("not_there", format!("at {from}")))
                }
            })
        }
    }

    /// A context on a pool that never connects: these runs touch no table.
    fn context(payload: serde_json::Value, checkpoint: Option<serde_json::Value>) -> JobContext {
        let store = Store::connect("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
        let now = Utc::now();
        let job = Job {
            id: uuid::Uuid::nil(),
            customer_id: None,
            job_type: Counter::JOB_TYPE,
            payload,
            state: JobState::Running,
            attempts: 1,
            max_attempts: 4,
            run_after: now,
            lease_owner: Some("test".into()),
            cancel_requested: false,
            error: None,
            dedupe_key: None,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            activities: vec![ActivityProgress {
                activity: COUNTING.name().into(),
                position: 0,
                rows_done: 0,
                pages_done: 0,
                checkpoints_done: 0,
                checkpoint,
                finished: false,
                active_ms: 0,
                rows_estimated: 0,
                partitions: Vec::new(),
            }],
        };
        JobContext::new(JobStore::new(&store), job, 1, None)
    }

    fn failure(outcome: Result<(), RunError>) -> JobError {
        match outcome {
            Err(RunError::Failed(error)) => error,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_job_is_built_from_its_handler() {
        let job = NewJob::of::<Counter>(&Count { to: 3 }, Some(CustomerId(9)));
        assert_eq!((job.job_type, job.max_attempts, job.customer_id), (7, 4, Some(CustomerId(9))));
        assert_eq!(
            (job.activities, job.payload, job.dedupe_key),
            (vec!["counting".to_owned()], serde_json::json!({ "to": 3 }), None)
        );
    }

    #[tokio::test]
    async fn the_registry_decodes_the_payload_and_the_checkpoint() {
        let registry = Registry::new().register(Counter);
        assert_eq!(registry.job_types(), [7]);
        assert_eq!(registry.retry_policy(7).unwrap().max_attempts, 4);
        assert_eq!(registry.activities(7, &serde_json::json!({ "to": 1 })).unwrap(), ["counting"]);
        let ctx = context(serde_json::json!({ "to": 5 }), Some(serde_json::json!({ "at": 5 })));
        assert_eq!(registry.run(&ctx).unwrap().await, Ok(()), "resumed at the checkpoint");
        let ctx = context(serde_json::json!({ "to": 5 }), None);
        assert_eq!(failure(registry.run(&ctx).unwrap().await).code, "not_there", "no checkpoint: from 0");
    }

    #[tokio::test]
    async fn a_payload_that_does_not_decode_fails_the_job_in_the_engine() {
        let registry = Registry::new().register(Counter);
        let bad = serde_json::json!({ "to": "three" });
        assert!(matches!(
            registry.activities(7, &bad),
            Err(RegistryError::InvalidPayload { name: "counter", .. })
        ));
        let error = failure(registry.run(&context(bad, None)).unwrap().await);
        assert_eq!((error.code.as_str(), error.retryable), ("invalid_payload", false), "{error:?}");
        assert!(error.message.starts_with("counter job: the payload does not decode: "), "{error:?}");
        assert!(matches!(
            registry.activities(8, &serde_json::json!({})),
            Err(RegistryError::Unregistered { job_type: 8 })
        ));
    }

    #[tokio::test]
    async fn a_checkpoint_that_does_not_decode_fails_loudly_naming_the_activity() {
        let registry = Registry::new().register(Counter);
        let ctx = context(serde_json::json!({ "to": 5 }), Some(serde_json::json!({ "at": "five" })));
        let error = failure(registry.run(&ctx).unwrap().await);
        assert_eq!((error.code.as_str(), error.retryable), ("invalid_checkpoint", false), "{error:?}");
        assert!(error.message.contains("counting"), "{error:?}");
        assert_eq!(error.details["activity"], "counting");
        assert_eq!(error.details["checkpoint"], serde_json::json!({ "at": "five" }));
    }
}
