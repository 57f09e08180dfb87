//! The gRPC API. Each service authenticates the caller, validates the
//! request (naming the bad field), calls the store or a sync path, and turns
//! errors into statuses in one place ([`error`]).

mod auth;
pub mod calls;
mod convert;
mod deadline;
pub mod error;
pub mod health;
mod latency;
pub mod metrics;
mod oversize;
mod server;
mod services;
mod validate;

pub use server::{ApiState, TenantLimits, local_addr, serve};
