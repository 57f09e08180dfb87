//! The durable job engine, on Postgres: its tables, migrations and SQL
//! ([`store`]), the worker loop, cron schedules, and the contract a job
//! type implements ([`handler`]). Our own rather than a queue crate: the job
//! row *is* the `JobService` resource (typed payload, progress, cancel), and
//! a crate with its own task table would give us two job states to keep in
//! sync.
//!
//! A job's attempt may split an activity into partitions (ranges of its
//! rows) that any worker claims on leases of their own, so many processes
//! share one job; the attempt waits for them, working on them itself.
//!
//! Semantics: a worker claims a job with `FOR UPDATE SKIP LOCKED` and holds
//! it with a lease renewed by heartbeat; the attempt number is a fencing
//! token checked by every progress, checkpoint and result write, so a worker
//! that lost its lease cannot write; failures are retried with exponential
//! backoff up to `max_attempts`, then the job is `failed` with the stored
//! error; a cancel stops a running job at its next checkpoint.
//!
//! The store's domain tables are not this crate's; it only shares the
//! store's connection pool and error type.

pub mod context;
pub mod handler;
pub mod job;
pub mod lease;
pub mod metrics;
pub mod scheduler;
pub mod store;
pub mod worker;

pub use context::{Covered, JobContext};
pub use handler::{Activity, JobHandler, Registry, RegistryError, RetryPolicy, RunError};
pub use job::{
    ActivityProgress, AttemptOutcome, Claim, Holding, Job, JobError, JobFilter, JobState, Lease, NewJob,
    PartitionClaim, PartitionProgress, PartitionState, Split,
};
pub use store::{JobStore, migrate_postgres};
pub use worker::{Worker, WorkerConfig};
