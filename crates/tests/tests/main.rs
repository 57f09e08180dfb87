//! End-to-end tests on the real servers: one binary, one module per area.

mod alerting;
mod architecture_map;
mod audit;
mod autoqa;
mod autoqa_limits;
mod bad_input;
mod cluster;
mod console;
mod console_browser;
mod contract;
mod fair_sharing;
mod fuzz_validation;
mod hostile_strings;
mod job_api;
mod job_faults;
mod message_size;
mod metrics_docs;
mod migrations;
mod progress;
// Reads the wire's deprecated `batches_done` on purpose: it keeps its
// meaning (checkpoint commits) for older clients.
#[allow(deprecated)]
mod reindex_scope;
mod scheduler;
mod tenancy;
mod token_revocation;
mod write_paths;
