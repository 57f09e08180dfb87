//! The one boundary where errors become gRPC statuses, with a small closed
//! set of codes. Internal details (SQL, server messages) are logged, never
//! sent to the client.
//!
//! Each RPC body returns an [`ApiResult`], with `?` on store, sync,
//! analytics and validation errors alike (the `From` impls below classify
//! them), and its handler answers through [`respond`], which converts an
//! error to a status once.

use scorekeeper_analytics::AnalyticsError;
use scorekeeper_autoqa::AutoQaError;
use scorekeeper_autoqa::budget::Stopped;
use scorekeeper_domain::Invalid;
use scorekeeper_store::StoreError;
use scorekeeper_sync::SyncError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API token")]
    Unauthenticated,
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Aborted(String),
    /// A limit of the server's was reached (named in the text); retry later
    /// or ask for less.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("Postgres")]
    Store(#[source] StoreError),
    #[error("ClickHouse")]
    Analytics(#[source] AnalyticsError),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid(invalid) => ApiError::Invalid(invalid),
            StoreError::NotFound { what, id } => ApiError::NotFound { what, id: id.to_string() },
            e @ StoreError::VersionMismatch { .. } => ApiError::Aborted(e.to_string()),
            other => ApiError::Store(other),
        }
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(error: AnalyticsError) -> Self {
        ApiError::Analytics(error)
    }
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Store(e) => e.into(),
            SyncError::Analytics(e) => e.into(),
            SyncError::Invalid(e) => e.into(),
        }
    }
}

impl From<AutoQaError> for ApiError {
    fn from(error: AutoQaError) -> Self {
        match error {
            AutoQaError::Store(e) => e.into(),
            AutoQaError::Invalid(e) => e.into(),
            AutoQaError::Busy(e) => ApiError::ResourceExhausted(e.to_string()),
            AutoQaError::Stopped(e @ Stopped::ClientDeadline) => {
                ApiError::DeadlineExceeded(format!("{e}; nothing was written"))
            }
            AutoQaError::Stopped(e @ Stopped::Ceiling(_)) => {
                ApiError::ResourceExhausted(format!("{e}; nothing was written"))
            }
            AutoQaError::Stopped(e @ Stopped::Cancelled) => {
                ApiError::Cancelled(format!("{e}; nothing was written"))
            }
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        match &error {
            ApiError::Unauthenticated => Status::unauthenticated(error.to_string()),
            ApiError::PermissionDenied(_) => Status::permission_denied(error.to_string()),
            ApiError::Invalid(_) => Status::invalid_argument(error.to_string()),
            ApiError::NotFound { .. } => Status::not_found(error.to_string()),
            ApiError::Aborted(_) => Status::aborted(error.to_string()),
            ApiError::ResourceExhausted(_) => Status::resource_exhausted(error.to_string()),
            ApiError::DeadlineExceeded(_) => Status::deadline_exceeded(error.to_string()),
            ApiError::Cancelled(_) => Status::cancelled(error.to_string()),
            ApiError::Store(e) => backend_status("Postgres", e.is_transient(), &error),
            ApiError::Analytics(e) => backend_status("ClickHouse", e.is_transient(), &error),
        }
    }
}

fn backend_status(backend: &str, transient: bool, error: &ApiError) -> Status {
    let chain = scorekeeper_domain::report::error_chain(error);
    if transient {
        tracing::warn!(error = %chain, "{backend} unavailable");
        Status::new(Code::Unavailable, format!("{backend} is unavailable; retry later"))
    } else {
        tracing::error!(error = %chain, "{backend} failed");
        Status::new(Code::Internal, "internal error; see the server log")
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// Awaits an RPC body and answers with its response, or with the status its
/// error stands for: the one place an [`ApiError`] becomes a [`Status`].
pub(crate) async fn respond<T>(
    body: impl Future<Output = ApiResult<T>>,
) -> Result<tonic::Response<T>, Status> {
    body.await.map(tonic::Response::new).map_err(Status::from)
}
