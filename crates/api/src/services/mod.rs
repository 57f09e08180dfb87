//! One module per gRPC service.

pub mod analytics;
pub mod autoqa;
pub mod conversations;
pub mod jobs;
pub mod scorecards;
