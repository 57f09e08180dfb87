//! Transaction-scoped advisory locks named by text, so that every caller
//! that must serialise with others (claims, per-customer limits) names its
//! lock the same way and none collides with another's by accident.

use tokio_postgres::Transaction;

use crate::error::Result;

/// Takes the advisory lock named `name` for the rest of `tx`, waiting for
/// whoever holds it. Names are namespaced by their caller, e.g.
/// `scorekeeper_jobs_claim` or `scorekeeper_audit_calls:<customer>`.
pub async fn advisory_xact_lock(tx: &Transaction<'_>, name: &str) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&name]).await?;
    Ok(())
}
