//! The chaos crate's tests, one binary: short runs of the six fault
//! scenarios, the regression test of the outbox bug they found, and a test
//! that the final check can fail.

mod cluster;
mod faults;
mod outbox_settle;
mod verify_detects;
