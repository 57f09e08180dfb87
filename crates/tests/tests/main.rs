//! End-to-end tests on the real servers: one binary, one module per area.

mod architecture_map;
mod audit;
mod autoqa;
mod bad_input;
mod contract;
mod fuzz_validation;
mod hostile_strings;
mod job_api;
mod job_faults;
mod metrics_docs;
mod migrations;
mod reindex_scope;
mod scheduler;
mod tenancy;
mod write_paths;
