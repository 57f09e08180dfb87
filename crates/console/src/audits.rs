//! `/ui/api/audits`: the stored audits, one audit's heat map and rows, and
//! audit jobs started from the page (a plain audit, or the repair of an
//! audit: the audit job with `repair`, which `scorekeeper audit --repair`
//! also amounts to: audit, repair what drifted, audit again).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use scorekeeper_proto::time::to_timestamp;
use scorekeeper_proto::v1::job_payload::Payload;
use scorekeeper_proto::v1::{AuditPayload, CreateJobRequest, JobPayload, JobType};
use scorekeeper_store::console::StoredAudit;
use scorekeeper_store::tenants::Principal;
use scorekeeper_sync::audit::record::{DayCell, NamedRow, StoredReport, TableCounts};
use serde::{Deserialize, Serialize};

use crate::Console;
use crate::error::{ConsoleError, ConsoleResult};
use crate::session::Session;
use crate::views::JobView;

#[derive(Serialize)]
pub struct AuditView {
    id: i64,
    /// 0: every customer.
    customer_id: i64,
    job_id: Option<String>,
    phase: String,
    started_at: DateTime<Utc>,
    elapsed_ms: i64,
    span_start: Option<DateTime<Utc>>,
    span_end: Option<DateTime<Utc>>,
    drifted_rows: i64,
    tables: Vec<TableCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<Vec<DayCell>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<Vec<NamedRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows_truncated: Option<bool>,
}

impl AuditView {
    /// The audit with its days and rows when `whole`, else its summary.
    fn of(audit: StoredAudit, whole: bool) -> ConsoleResult<AuditView> {
        let report: StoredReport = serde_json::from_value(audit.report).map_err(|e| ConsoleError {
            code: tonic::Code::Internal,
            message: format!("stored audit {} cannot be read: {e}", audit.id),
        })?;
        Ok(AuditView {
            id: audit.id,
            customer_id: audit.customer_id.map_or(0, |c| c.0),
            job_id: audit.job_id.map(|j| j.to_string()),
            phase: audit.phase,
            started_at: audit.started_at,
            elapsed_ms: audit.elapsed_ms,
            span_start: audit.span_start,
            span_end: audit.span_end,
            drifted_rows: audit.drifted_rows,
            tables: report.tables,
            days: whole.then_some(report.days),
            rows: whole.then_some(report.rows),
            rows_truncated: whole.then_some(report.rows_truncated),
        })
    }
}

#[derive(Deserialize)]
pub struct ListFilter {
    #[serde(default)]
    customer_id: i64,
}

#[derive(Serialize)]
pub struct AuditList {
    audits: Vec<AuditView>,
}

pub async fn list(
    State(console): State<Console>,
    session: Session,
    Query(filter): Query<ListFilter>,
) -> ConsoleResult<Json<AuditList>> {
    let audits = console.calls.recent_audits(session.principal, filter.customer_id).await?;
    let audits = audits.into_iter().map(|a| AuditView::of(a, false)).collect::<ConsoleResult<_>>()?;
    Ok(Json(AuditList { audits }))
}

/// A stored audit's id from the path.
fn audit_id(text: &str) -> ConsoleResult<i64> {
    text.parse().map_err(|_| scorekeeper_domain::Invalid::new("id", "not an audit id").into())
}

pub async fn get(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> ConsoleResult<Json<AuditView>> {
    let audit = console.calls.stored_audit(session.principal, audit_id(&id)?).await?;
    Ok(Json(AuditView::of(audit, true)?))
}

#[derive(Deserialize, Default)]
pub struct StartAudit {
    #[serde(default)]
    customer_id: i64,
}

#[derive(Serialize)]
pub struct Started {
    job: JobView,
}

/// Queues an audit job through CreateJob, as `principal`.
async fn create(
    console: &Console,
    principal: Principal,
    payload: AuditPayload,
) -> ConsoleResult<Json<Started>> {
    let request = CreateJobRequest {
        r#type: JobType::Audit as i32,
        payload: Some(JobPayload { payload: Some(Payload::Audit(payload)) }),
    };
    let job = console.calls.create_job(principal, &request).await?;
    Ok(Json(Started { job: JobView::from(&job) }))
}

/// `POST /ui/api/audits`: an audit without repair of `customer_id` (0: the
/// token's own customer; from an admin token, every customer).
pub async fn start(
    State(console): State<Console>,
    session: Session,
    headers: HeaderMap,
    body: Option<Json<StartAudit>>,
) -> ConsoleResult<Json<Started>> {
    session.check_post(&headers)?;
    let Json(body) = body.unwrap_or_default();
    let principal = session.principal;
    let customer_id = match body.customer_id {
        0 if !principal.is_admin => principal.customer_id.0,
        id => id,
    };
    create(&console, principal, AuditPayload { customer_id, start_time: None, end_time: None, repair: false })
        .await
}

/// `POST /ui/api/audits/<id>/repair`: the audit job with repair, over the
/// customer and span of the stored audit `<id>`.
pub async fn repair(
    State(console): State<Console>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult<Json<Started>> {
    session.check_post(&headers)?;
    let audit = console.calls.stored_audit(session.principal, audit_id(&id)?).await?;
    let payload = AuditPayload {
        customer_id: audit.customer_id.map_or(0, |c| c.0),
        start_time: audit.span_start.map(to_timestamp),
        end_time: audit.span_end.map(to_timestamp),
        repair: true,
    };
    create(&console, session.principal, payload).await
}
