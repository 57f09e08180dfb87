//! What a job type plugs into the engine: a handler, registered by type.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::JobContext;
use crate::job::JobError;

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

/// Runs one job type. `run` is called once per attempt and must resume from
/// the checkpoints in `ctx` (activities already finished are skipped).
pub trait JobHandler: Send + Sync + 'static {
    /// The activities of a job of this type with this payload, in order;
    /// shown as progress from the moment the job is created.
    fn activities(&self, payload: &serde_json::Value) -> Result<Vec<String>, String>;

    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<(), RunError>>;
}

/// Handlers by job type number. A type that is not registered cannot be
/// created.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<i16, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn register(mut self, job_type: i16, handler: Arc<dyn JobHandler>) -> Registry {
        self.handlers.insert(job_type, handler);
        self
    }

    pub fn handler(&self, job_type: i16) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(&job_type)
    }

    pub fn job_types(&self) -> Vec<i16> {
        let mut types: Vec<i16> = self.handlers.keys().copied().collect();
        types.sort_unstable();
        types
    }
}
