//! How long to wait after a failure, and how to try again: one
//! [`Backoff`] (exponential, capped) for every loop that waits after a
//! failure, and one helper, [`retry`], that owns counting and sleeping
//! while its caller decides, error by error, whether another try may help.
//!
//! A crate of its own so that both the job engine and the sync paths use it
//! without depending on each other. About a hundred lines of ours rather
//! than a retry crate: what we need is a doubling delay and a deadline,
//! and the classification stays with the caller anyway.

mod backoff;
mod retry;

pub use backoff::Backoff;
pub use retry::{Attempt, Retry, Verdict, retry};
