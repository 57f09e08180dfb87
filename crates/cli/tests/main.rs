//! The CLI's tests, one binary with a module per command: the real
//! `scorekeeper` binary run as a user runs it, against real `serve`
//! processes on each test's own databases.

mod audit_cli;
mod auth_flood;
mod hostile_autoqa;
mod large_requests;
mod partitioned_reindex;
mod reindex_cli;
mod serve;
mod tls;
mod tokens_cli;
mod worker_kill;
