//! End-to-end tests on the real servers: one binary, one module per area.

mod autoqa;
mod fixtures;
mod write_paths;
