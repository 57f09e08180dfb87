//! What the operator console keeps in Postgres (migration V11): its
//! sessions, the audit reports it shows, and each process's writes to
//! ClickHouse per path. In Postgres so that every `serve` process behind a
//! load balancer answers the same.

use std::time::Duration;

use chrono::{DateTime, Utc};
use scorekeeper_domain::CustomerId;
use uuid::Uuid;

use crate::Store;
use crate::error::Result;
use crate::tenants::{Principal, TokenId};

/// A live console session: who it acts for and its CSRF token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    pub principal: Principal,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// An audit's report as stored for the console.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAudit {
    pub id: i64,
    /// `None`: every customer.
    pub customer_id: Option<CustomerId>,
    /// The audit job that ran it; `None`: an Audit call.
    pub job_id: Option<Uuid>,
    /// `audit`, or `verify` (the audit a repair runs after it).
    pub phase: String,
    pub started_at: DateTime<Utc>,
    pub elapsed_ms: i64,
    pub span_start: Option<DateTime<Utc>>,
    pub span_end: Option<DateTime<Utc>>,
    pub drifted_rows: i64,
    /// The report as `scorekeeper_sync::audit::record` shapes it.
    pub report: serde_json::Value,
}

/// Reports kept per customer (and for all customers); older ones are
/// deleted as new ones are stored.
pub const AUDITS_KEPT: i64 = 200;

/// One write path's rows across the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathActivity {
    pub path: String,
    pub rows_written: i64,
    pub last_write_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Starts a session for the token `token_id` under `id_hash` (the
    /// SHA-256 of the cookie's id), for `lifetime`; returns its expiry.
    /// Expired sessions are deleted on the way.
    pub async fn start_console_session(
        &self,
        token_id: TokenId,
        id_hash: &[u8],
        csrf: &str,
        lifetime: Duration,
    ) -> Result<DateTime<Utc>> {
        let client = self.pool().get().await?;
        client.execute("DELETE FROM console_sessions WHERE expires_at < now()", &[]).await?;
        let row = client
            .query_one(
                "INSERT INTO console_sessions (id_hash, token_id, csrf, expires_at)
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                 RETURNING expires_at",
                &[&id_hash, &token_id.0, &csrf, &lifetime.as_secs_f64()],
            )
            .await?;
        Ok(row.try_get("expires_at")?)
    }

    /// The session under `id_hash`, if it has not expired and its token is
    /// not revoked.
    pub async fn console_session(&self, id_hash: &[u8]) -> Result<Option<ConsoleSession>> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT t.customer_id, t.is_admin, s.csrf, s.expires_at
                 FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id
                 WHERE s.id_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL",
                &[&id_hash],
            )
            .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                principal: Principal {
                    customer_id: CustomerId(r.try_get("customer_id")?),
                    is_admin: r.try_get("is_admin")?,
                },
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends the session under `id_hash` (logging out).
    pub async fn end_console_session(&self, id_hash: &[u8]) -> Result<()> {
        let client = self.pool().get().await?;
        client.execute("DELETE FROM console_sessions WHERE id_hash = $1", &[&id_hash]).await?;
        Ok(())
    }

    /// Stores an audit's report and returns its id; keeps the newest
    /// [`AUDITS_KEPT`] of its customer (or of all-customer audits).
    pub async fn store_audit(&self, audit: &StoredAudit) -> Result<i64> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let customer = audit.customer_id.map(|c| c.0);
        let row = tx
            .query_one(
                "INSERT INTO audit_reports (customer_id, job_id, phase, started_at, elapsed_ms,
                                            span_start, span_end, drifted_rows, report)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &customer,
                    &audit.job_id,
                    &audit.phase,
                    &audit.started_at,
                    &audit.elapsed_ms,
                    &audit.span_start,
                    &audit.span_end,
                    &audit.drifted_rows,
                    &audit.report,
                ],
            )
            .await?;
        tx.execute(
            "DELETE FROM audit_reports WHERE customer_id IS NOT DISTINCT FROM $1 AND id < (
                 SELECT min(id) FROM (SELECT id FROM audit_reports
                                      WHERE customer_id IS NOT DISTINCT FROM $1
                                      ORDER BY id DESC LIMIT $2) newest)",
            &[&customer, &AUDITS_KEPT],
        )
        .await?;
        tx.commit().await?;
        Ok(row.try_get("id")?)
    }

    /// The newest `limit` stored audits, of `customer` only when given;
    /// each report holds only its `tables` (the list needs no more).
    pub async fn recent_audits(&self, customer: Option<CustomerId>, limit: i64) -> Result<Vec<StoredAudit>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id, customer_id, job_id, phase, started_at, elapsed_ms, span_start, span_end,
                        drifted_rows, jsonb_build_object('tables', report->'tables') AS report
                 FROM audit_reports
                 WHERE $1::bigint IS NULL OR customer_id = $1
                 ORDER BY id DESC LIMIT $2",
                &[&customer.map(|c| c.0), &limit],
            )
            .await?;
        rows.iter().map(stored_audit).collect()
    }

    /// The stored audit `id`, if it is `customer`'s (any, when `None`).
    pub async fn stored_audit(&self, id: i64, customer: Option<CustomerId>) -> Result<Option<StoredAudit>> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT id, customer_id, job_id, phase, started_at, elapsed_ms, span_start, span_end,
                        drifted_rows, report
                 FROM audit_reports WHERE id = $1 AND ($2::bigint IS NULL OR customer_id = $2)",
                &[&id, &customer.map(|c| c.0)],
            )
            .await?;
        row.as_ref().map(stored_audit).transpose()
    }

    /// Records this `process`'s rows written per path since it started and
    /// its last write; forgets processes silent for a day.
    pub async fn report_write_activity(&self, process: &str, paths: &[PathActivity]) -> Result<()> {
        let client = self.pool().get().await?;
        let names: Vec<&str> = paths.iter().map(|p| p.path.as_str()).collect();
        let rows: Vec<i64> = paths.iter().map(|p| p.rows_written).collect();
        let last: Vec<Option<DateTime<Utc>>> = paths.iter().map(|p| p.last_write_at).collect();
        client
            .execute(
                "INSERT INTO write_activity (process, path, rows_written, last_write_at)
                 SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::timestamptz[])
                 ON CONFLICT (process, path) DO UPDATE
                 SET rows_written = excluded.rows_written, last_write_at = excluded.last_write_at,
                     reported_at = now()",
                &[&process, &names, &rows, &last],
            )
            .await?;
        client
            .execute("DELETE FROM write_activity WHERE reported_at < now() - interval '1 day'", &[])
            .await?;
        Ok(())
    }

    /// Rows written per path over every process that reported in the last
    /// day, and the last write of any.
    pub async fn write_activity(&self) -> Result<Vec<PathActivity>> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT path, sum(rows_written)::bigint AS rows_written, max(last_write_at) AS last_write_at
                 FROM write_activity GROUP BY path ORDER BY path",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PathActivity {
                    path: r.try_get("path")?,
                    rows_written: r.try_get("rows_written")?,
                    last_write_at: r.try_get("last_write_at")?,
                })
            })
            .collect()
    }
}

fn stored_audit(r: &tokio_postgres::Row) -> Result<StoredAudit> {
    Ok(StoredAudit {
        id: r.try_get("id")?,
        customer_id: r.try_get::<_, Option<i64>>("customer_id")?.map(CustomerId),
        job_id: r.try_get("job_id")?,
        phase: r.try_get("phase")?,
        started_at: r.try_get("started_at")?,
        elapsed_ms: r.try_get("elapsed_ms")?,
        span_start: r.try_get("span_start")?,
        span_end: r.try_get("span_end")?,
        drifted_rows: r.try_get("drifted_rows")?,
        report: r.try_get("report")?,
    })
}
