//! What tests, benchmarks and fault runs need to stand the service up on
//! the local Postgres and ClickHouse servers, without the service's own
//! crates: Postgres URLs of databases beside the service's
//! ([`postgres_url`]) and creating them ([`database`]), the `scorekeeper`
//! binary ([`binary`]) and the one launcher of its `serve` processes
//! ([`serve`]), and talking to them on loopback ([`loopback`]).
//!
//! The test harness (`scorekeeper-tests`), the benchmarks and the fault
//! runs all build on this one copy.

pub mod binary;
pub mod database;
pub mod loopback;
pub mod postgres_url;
pub mod serve;
