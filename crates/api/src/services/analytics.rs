//! `AnalyticsService`: statistics read from ClickHouse, and the drift audit
//! of ClickHouse against Postgres (`scorekeeper_sync::audit`).

use chrono::{DateTime, Utc};
use scorekeeper_analytics::stats::GroupBy;
use scorekeeper_domain::audit::{self as domain, AuditScope, AuditWindow};
use scorekeeper_domain::{CustomerId, Invalid};
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1::analytics_service_server::AnalyticsService;
use scorekeeper_proto::v1::*;
use scorekeeper_store::tenants::Principal;
use tonic::{Request, Response, Status};

use crate::error::{ApiError, ApiResult, respond};
use crate::server::ApiState;
use crate::validate::{self, Checked};

pub struct Analytics(pub ApiState);

#[tonic::async_trait]
impl AnalyticsService for Analytics {
    async fn get_score_stats(
        &self,
        request: Request<GetScoreStatsRequest>,
    ) -> Result<Response<GetScoreStatsResponse>, Status> {
        respond(get_score_stats(&self.0, request)).await
    }

    async fn audit(&self, request: Request<AuditRequest>) -> Result<Response<AuditResponse>, Status> {
        respond(audit(&self.0, request)).await
    }
}

async fn get_score_stats(
    state: &ApiState,
    request: Request<GetScoreStatsRequest>,
) -> ApiResult<GetScoreStatsResponse> {
    let principal = state.auth.principal(&request).await?;
    let StatsRequest { group_by, start, end } = stats_request(request.get_ref())?;
    let rows = state.analytics.score_stats(principal.customer_id, group_by, start, end).await?;
    Ok(GetScoreStatsResponse {
        rows: rows
            .into_iter()
            .map(|row| ScoreStatsRow {
                key: row.key,
                is_process_scorecard: row.is_process_scorecard != 0,
                scorecards: row.scorecards as i64,
                average_total_score: row.average_total_score,
            })
            .collect(),
    })
}

/// What a GetScoreStats asks for.
struct StatsRequest {
    group_by: GroupBy,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

fn stats_request(r: &GetScoreStatsRequest) -> Checked<StatsRequest> {
    let group_by = match validate::known_enum::<StatsGroupBy>("group_by", r.group_by, false)? {
        StatsGroupBy::Agent => GroupBy::Agent,
        StatsGroupBy::Template => GroupBy::Template,
        StatsGroupBy::Day => GroupBy::Day,
        StatsGroupBy::Unspecified => return Err(Invalid::new("group_by", "required")),
    };
    let start = validate::optional_timestamp("start_time", &r.start_time)?;
    let end = validate::optional_timestamp("end_time", &r.end_time)?;
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(Invalid::new("end_time", "must be after start_time"));
    }
    Ok(StatsRequest { group_by, start, end })
}

async fn audit(state: &ApiState, request: Request<AuditRequest>) -> ApiResult<AuditResponse> {
    let principal = state.auth.principal(&request).await?;
    let r = request.get_ref();
    let scope = audit_scope(principal, r)?;
    admit_audit(state, principal).await?;
    if let Some(customer) = scope.customer_id
        && customer != principal.customer_id
        && !state.store.customer_exists(customer).await?
    {
        return Err(Invalid::new("customer_id", format!("unknown customer {customer}")).into());
    }
    let (store, analytics) = (&state.store, &state.analytics);
    let quiet = scorekeeper_sync::audit::Quiet;
    let (report, findings) =
        scorekeeper_sync::audit::audit_with_findings(store, analytics, &scope, &quiet).await?;
    // Kept for the console; the caller has the report either way.
    if let Err(error) = scorekeeper_sync::audit::record::record(
        store,
        &scope,
        &report,
        None,
        scorekeeper_sync::audit::record::Phase::Audit,
    )
    .await
    {
        tracing::warn!(error = %scorekeeper_domain::report::error_chain(&error), "the audit's report was not stored");
    }
    let repair = if r.repair && !findings.is_empty() {
        let done = scorekeeper_sync::audit::repair(store, analytics, &findings, None).await?;
        Some(AuditRepair {
            job_ids: done.jobs,
            tombstones: done.tombstones as i64,
            versions_bumped: done.versions_bumped as i64,
        })
    } else {
        None
    };
    Ok(AuditResponse { report: Some(report_to_wire(&report)), repair })
}

/// Counts an audit against the caller's customer's limit of audits a
/// minute, or refuses it: an audit scans a customer's whole mirror, so it
/// is counted per customer, whatever scope it names (Audit calls and audit
/// jobs alike).
pub(crate) async fn admit_audit(state: &ApiState, principal: Principal) -> ApiResult<()> {
    let per_minute = state.limits.audits_per_minute_per_customer;
    if !state.store.admit_audit(principal.customer_id, per_minute).await? {
        return Err(ApiError::ResourceExhausted(format!(
            "this customer already ran {per_minute} audits in the last minute \
             (AUDITS_PER_MINUTE_PER_CUSTOMER); retry later"
        )));
    }
    Ok(())
}

/// The audit's scope from the request: the caller's own customer unless an
/// admin names another or all; a window needs both ends.
pub(crate) fn audit_scope(principal: Principal, r: &AuditRequest) -> ApiResult<AuditScope> {
    let customer_id = match (r.all_customers, r.customer_id) {
        (_, id) if id < 0 => return Err(Invalid::new("customer_id", "must not be negative").into()),
        (true, 0) if principal.is_admin => None,
        (true, 0) => return Err(ApiError::PermissionDenied("only an admin token may audit all customers")),
        (true, _) => return Err(Invalid::new("customer_id", "must be 0 with all_customers").into()),
        (false, 0) => Some(principal.customer_id),
        (false, id) if id == principal.customer_id.0 || principal.is_admin => Some(CustomerId(id)),
        (false, _) => {
            return Err(ApiError::PermissionDenied("a customer token may only audit its own customer"));
        }
    };
    let window = match (&r.start_time, &r.end_time) {
        (None, None) => None,
        (Some(_), None) => return Err(Invalid::new("end_time", "required with start_time").into()),
        (None, Some(_)) => return Err(Invalid::new("start_time", "required with end_time").into()),
        (Some(start), Some(end)) => {
            let start = validate::timestamp("start_time", start)?;
            let end = validate::timestamp("end_time", end)?;
            if end <= start {
                return Err(Invalid::new("end_time", "must be after start_time").into());
            }
            // ClickHouse's DateTime holds 1970 to 2106.
            if start.timestamp() < 0 {
                return Err(Invalid::new("start_time", "must not be before 1970").into());
            }
            if end.timestamp() > i64::from(u32::MAX) {
                return Err(Invalid::new("end_time", "must not be after 2106-02-07").into());
            }
            Some(AuditWindow { start, end })
        }
    };
    Ok(AuditScope { customer_id, window })
}

fn table_to_wire(table: domain::AuditTable) -> i32 {
    (match table {
        domain::AuditTable::Conversations => AuditTable::Conversations,
        domain::AuditTable::Scorecards => AuditTable::Scorecards,
        domain::AuditTable::Scores => AuditTable::Scores,
    }) as i32
}

fn kind_to_wire(kind: domain::DriftKind) -> i32 {
    (match kind {
        domain::DriftKind::Missing => DriftKind::Missing,
        domain::DriftKind::Stale => DriftKind::Stale,
        domain::DriftKind::Newer => DriftKind::Newer,
        domain::DriftKind::OnlyInClickhouse => DriftKind::OnlyInClickhouse,
        domain::DriftKind::OutOfRange => DriftKind::OutOfRange,
    }) as i32
}

fn counts_to_wire(counts: &domain::DriftCounts) -> DriftCounts {
    DriftCounts {
        missing: counts.missing as i64,
        stale: counts.stale as i64,
        newer: counts.newer as i64,
        only_in_clickhouse: counts.only_in_clickhouse as i64,
        out_of_range: counts.out_of_range as i64,
    }
}

fn report_to_wire(report: &domain::AuditReport) -> AuditReport {
    AuditReport {
        started_at: Some(to_timestamp(report.started_at)),
        elapsed_ms: report.elapsed_ms as i64,
        drifted_rows: report.drifted() as i64,
        tables: report
            .tables
            .iter()
            .map(|t| AuditTableReport {
                table: table_to_wire(t.table),
                rows_checked: t.rows_checked as i64,
                buckets: t.buckets as i64,
                drifted_buckets: t.drifted_buckets as i64,
                drift: Some(counts_to_wire(&t.drift)),
                elapsed_ms: t.elapsed_ms as i64,
            })
            .collect(),
        buckets: report
            .buckets
            .iter()
            .map(|b| AuditBucket {
                table: table_to_wire(b.table),
                customer_id: b.customer_id.0,
                start_time: Some(to_timestamp(b.start)),
                end_time: Some(to_timestamp(b.end)),
                rows_checked: b.rows_checked as i64,
                clickhouse_rows: b.clickhouse_rows as i64,
                drift: Some(counts_to_wire(&b.drift)),
                elapsed_ms: b.elapsed_ms as i64,
            })
            .collect(),
        rows: report
            .rows
            .iter()
            .map(|r| DriftedRow {
                table: table_to_wire(r.table),
                customer_id: r.customer_id.0,
                id: r.id,
                kind: kind_to_wire(r.kind),
                postgres_version: r.postgres_version.unwrap_or(0),
                clickhouse_version: r.clickhouse_version.unwrap_or(0),
            })
            .collect(),
        rows_truncated: report.rows_truncated,
    }
}
