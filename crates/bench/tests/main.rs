//! The bench's tests, one binary with a module per bench: the real
//! `scorekeeper-bench` run briefly on bench databases of their own (the
//! running, the stack's settings and the cleanup come from
//! `scorekeeper-tests`).

mod api;
mod audit;
