//! `/ui/api/jobs`: the jobs list, a job, and its cancel, through the
//! API's ListJobs, GetJob and CancelJob.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use scorekeeper_proto::v1::ListJobsRequest;
use scorekeeper_proto::words;
use serde::{Deserialize, Serialize};

use crate::Console;
use crate::error::ConsoleResult;
use crate::session::Session;
use crate::views::JobView;

/// Jobs a page of the list holds.
const PAGE_SIZE: i32 = 50;

#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    state: String,
    #[serde(default, rename = "type")]
    job_type: String,
    #[serde(default)]
    customer_id: Option<String>,
    #[serde(default)]
    page_token: String,
}

#[derive(Serialize)]
pub struct JobsPage {
    jobs: Vec<JobView>,
    next_page_token: String,
}

/// A filter word the page does not offer is refused as the API refuses an
/// unknown enum value.
fn filter_word<T>(field: &str, word: &str, parse: fn(&str) -> Option<T>) -> ConsoleResult<Option<T>> {
    match word {
        "" => Ok(None),
        w => parse(w)
            .map(Some)
            .ok_or_else(|| scorekeeper_domain::Invalid::new(field, format!("unknown value {w:?}")).into()),
    }
}

pub async fn list(
    State(console): State<Console>,
    session: Session,
    Query(filter): Query<Filter>,
) -> ConsoleResult<Json<JobsPage>> {
    let customer_id = match filter.customer_id.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => {
            text.parse().map_err(|_| scorekeeper_domain::Invalid::new("customer_id", "not a customer id"))?
        }
    };
    let request = ListJobsRequest {
        state: filter_word("state", &filter.state, words::job_state_of)?.map_or(0, |s| s as i32),
        r#type: filter_word("type", &filter.job_type, words::job_type_of)?.map_or(0, |t| t as i32),
        customer_id,
        page_size: PAGE_SIZE,
        page_token: filter.page_token,
    };
    let page = console.calls.list_jobs(session.principal, &request).await?;
    Ok(Json(JobsPage {
        jobs: page.jobs.iter().map(JobView::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

pub async fn get(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> ConsoleResult<Json<JobView>> {
    let job = console.calls.get_job(session.principal, &id).await?;
    Ok(Json(JobView::from(&job)))
}

pub async fn cancel(
    State(console): State<Console>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ConsoleResult<Json<JobView>> {
    session.check_post(&headers)?;
    let job = console.calls.cancel_job(session.principal, &id).await?;
    Ok(Json(JobView::from(&job)))
}
