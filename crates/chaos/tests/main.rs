//! The chaos crate's tests, one binary: short runs of the five fault
//! scenarios, the regression test of the outbox bug they found, and a test
//! that the final check can fail.

mod faults;
mod outbox_settle;
mod verify_detects;
