//! End-to-end tests on the real servers: one binary, one module per area.

// `audit` and `reindex_scope` read the deprecated `batches_done` on
// purpose: it keeps its meaning (checkpoint commits) for older clients.
#[allow(deprecated)]
mod audit;
mod autoqa;
mod bad_input;
mod contract;
mod fixtures;
mod fuzz_validation;
mod hostile_strings;
mod job_api;
mod job_faults;
mod metrics_docs;
mod migrations;
mod progress;
#[allow(deprecated)]
mod reindex_scope;
mod scheduler;
mod tenancy;
mod write_paths;
