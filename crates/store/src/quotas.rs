//! Limits on what one customer may start per unit of time, kept in
//! Postgres so every API process counts against the same budget.

use scorekeeper_domain::CustomerId;

use crate::Store;
use crate::error::Result;
use crate::locks::advisory_xact_lock;

impl Store {
    /// Admits one more audit by `customer_id` if fewer than `per_minute`
    /// were admitted in the last 60 s, and records it; `false` when the
    /// customer is at its limit (nothing recorded). Exact across processes:
    /// a customer's admissions are serialised by an advisory lock.
    pub async fn admit_audit(&self, customer_id: CustomerId, per_minute: u32) -> Result<bool> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        advisory_xact_lock(&tx, &format!("scorekeeper_audit_calls:{}", customer_id.0)).await?;
        tx.execute(
            "DELETE FROM audit_calls WHERE customer_id = $1 AND called_at < now() - interval '1 minute'",
            &[&customer_id.0],
        )
        .await?;
        let recent: i64 = tx
            .query_one("SELECT count(*) FROM audit_calls WHERE customer_id = $1", &[&customer_id.0])
            .await?
            .try_get(0)?;
        if recent >= i64::from(per_minute) {
            return Ok(false);
        }
        tx.execute("INSERT INTO audit_calls (customer_id) VALUES ($1)", &[&customer_id.0]).await?;
        tx.commit().await?;
        Ok(true)
    }
}
