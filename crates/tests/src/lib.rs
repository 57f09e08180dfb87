//! The harness of the end-to-end tests: each test gets its own Postgres
//! database and ClickHouse database on the local stack (named by a random
//! suffix, dropped afterwards), an in-process gRPC server and outbox
//! dispatcher on top of them, and authenticated clients.
//!
//! The servers come from `DATABASE_URL` and `CLICKHOUSE_URL`
//! (`eval "$(scripts/stack env)"`); a test fails, never skips, when they are
//! missing.
//!
//! Beside the environment, what the test files share lives here, so that
//! no test file imports another's: request builders ([`fixtures`]), the
//! JobService driven to a state ([`jobs`]), the reindex tests' two-customer
//! [`world`] and what Postgres says ClickHouse must hold ([`mirror`]), a
//! fingerprint of everything stored ([`snapshot`]), refused requests
//! ([`rejection`]) and AutoQA work as costly as the limits admit
//! ([`costly_autoqa`]). Tests on the ClickHouse cluster start with
//! [`env::Options::cluster`] and kill nodes through [`cluster`].

pub mod cluster;
pub mod costly_autoqa;
pub mod env;
pub mod fixtures;
pub mod jobs;
pub mod mirror;
pub mod private_postgres;
pub mod process;
pub mod proxy;
pub mod rejection;
pub mod snapshot;
pub mod stack;
pub mod stored_jobs;
pub mod world;

pub use env::{Customer, TestEnv};
