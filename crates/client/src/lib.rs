//! A client of a running `scorekeeper serve`, shared by the CLI, the demo,
//! the benchmarks, the fault runs and the tests:
//!
//! * [`channel`]: connecting (the connect timeout every tool uses) or a lazy
//!   channel, over TLS for `https://` URLs ([`tls`]: whom to trust);
//! * [`bearer`]: the one interceptor that adds `authorization: Bearer
//!   <token>` to every call (the server derives the customer from it);
//! * [`api`]: typed clients of every service carrying that token;
//! * [`follow`]: following a job to its end, with a progress bar per
//!   activity;
//! * [`views`]: jobs and audit reports as the CLI prints them (text and
//!   JSON).
//!
//! It speaks the gRPC contract only (`scorekeeper-proto`): nothing here
//! knows Postgres, ClickHouse or the service's own crates.

pub mod api;
pub mod bearer;
pub mod channel;
pub mod error;
pub mod follow;
pub mod tls;
pub mod views;

pub use api::Api;
pub use bearer::{Authed, BearerToken};
pub use error::{ClientError, Result};
pub use tls::ClientTls;
