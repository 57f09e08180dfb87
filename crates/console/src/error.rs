//! The console's errors as HTTP answers: the API's errors keep their gRPC
//! code, turned into a status by the API's own boundary
//! (`tonic::Status::from(ApiError)`, which also logs what a server failure
//! hides), then into the HTTP status of that code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scorekeeper_api::error::ApiError;
use scorekeeper_domain::Invalid;
use serde::Serialize;
use tonic::Code;

/// A refusal or failure: its gRPC code and the message the API would send.
#[derive(Debug)]
pub struct ConsoleError {
    pub code: Code,
    pub message: String,
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

impl ConsoleError {
    pub fn unauthenticated() -> ConsoleError {
        ConsoleError { code: Code::Unauthenticated, message: "log in at /ui/login".into() }
    }

    pub fn forbidden(message: &str) -> ConsoleError {
        ConsoleError { code: Code::PermissionDenied, message: message.into() }
    }
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        let status = tonic::Status::from(error);
        ConsoleError { code: status.code(), message: status.message().to_owned() }
    }
}

impl From<Invalid> for ConsoleError {
    fn from(invalid: Invalid) -> Self {
        ApiError::from(invalid).into()
    }
}

/// The HTTP status and word of a gRPC code (docs/console.md's table).
pub fn http_status(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
        Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Code::Aborted => (StatusCode::CONFLICT, "aborted"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        Code::Cancelled => (StatusCode::CONFLICT, "cancelled"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'static str,
    message: &'a str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, code) = http_status(self.code);
        (status, Json(Body { code, message: &self.message })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of docs/console.md.
    #[test]
    fn each_grpc_code_has_the_documented_http_status() {
        let table = [
            (Code::Unauthenticated, 401, "unauthenticated"),
            (Code::PermissionDenied, 403, "permission_denied"),
            (Code::InvalidArgument, 400, "invalid_argument"),
            (Code::NotFound, 404, "not_found"),
            (Code::Aborted, 409, "aborted"),
            (Code::ResourceExhausted, 429, "resource_exhausted"),
            (Code::Unavailable, 503, "unavailable"),
            (Code::Internal, 500, "internal"),
        ];
        for (code, status, word) in table {
            assert_eq!(http_status(code), (StatusCode::from_u16(status).unwrap(), word), "{code:?}");
        }
    }

    #[test]
    fn an_api_error_keeps_the_code_and_message_the_api_sends() {
        let error = ConsoleError::from(ApiError::NotFound { what: "job", id: "7".into() });
        assert_eq!((error.code, error.message.as_str()), (Code::NotFound, "job 7 not found"));
        let error = ConsoleError::from(Invalid::new("state", "unknown value"));
        assert_eq!(error.code, Code::InvalidArgument);
    }
}
