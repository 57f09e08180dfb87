//! Fault runs ("prove nothing is lost"): real `scorekeeper serve` processes
//! on real Postgres and ClickHouse, with workers killed (`kill -9`), servers
//! stopped and started, and ClickHouse inserts torn halfway. Every scenario
//! ends with the same proof ([`verify`]): every write the API acknowledged
//! is in Postgres, and once the outbox drained ClickHouse (`FINAL`) holds
//! exactly what Postgres holds, which the drift audit confirms with zero
//! drift.
//!
//! The pieces: [`world`] (one run's databases), [`fleet`] (serve children
//! spawned, killed, restarted), [`fault`] (a server made unavailable, for
//! real or through a proxy), [`load`] (CreateScorecard/UpdateScorecard over
//! gRPC, recording what was acknowledged), [`verify`], [`report`] (a row per
//! scenario), and one module per scenario under [`scenarios`].

pub mod fault;
pub mod fleet;
pub mod load;
pub mod report;
pub mod scenarios;
pub mod verify;
pub mod world;
