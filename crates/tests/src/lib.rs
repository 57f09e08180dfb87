//! The harness of the end-to-end tests: each test gets its own Postgres
//! database and ClickHouse database on the local stack (named by a random
//! suffix, dropped afterwards), an in-process gRPC server and outbox
//! dispatcher on top of them, and authenticated clients.
//!
//! The servers come from `DATABASE_URL` and `CLICKHOUSE_URL`
//! (`eval "$(scripts/stack env)"`); a test fails, never skips, when they are
//! missing.

pub mod env;
pub mod private_postgres;
pub mod process;
pub mod proxy;

pub use env::{Customer, TestEnv};
