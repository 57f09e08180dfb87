//! The paths that bring Postgres rows into ClickHouse, all through
//! `Analytics::write`: the outbox dispatcher (API and AutoQA changes), batch
//! indexing of conversations, and AutoQA scoring. The retry policy for all of
//! them lives in [`retry`].

pub mod autoqa;
pub mod batch_index;
pub mod error;
pub mod outbox;
pub mod reindex;
pub mod reindex_schedule;
pub mod retry;

pub use error::{Result, SyncError};
