//! How long the API takes to answer, per method: a layer around the gRPC
//! server that times each call from its request to its response headers
//! (for a unary call, the handler's whole work) into
//! `scorekeeper_api_request_seconds{method, code}`.
//!
//! Labels stay bounded whatever clients send: a path no service knows is
//! answered UNIMPLEMENTED and counted as method `unknown`; `code` is the
//! status when the server answered with its status in the headers (tonic
//! does for every error of a unary call), else `ok`.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::Code;

/// The layer: wraps the server's routes.
#[derive(Clone, Copy, Debug, Default)]
pub struct LatencyLayer;

impl<S> tower::Layer<S> for LatencyLayer {
    type Service = Latency<S>;

    fn layer(&self, inner: S) -> Latency<S> {
        Latency { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Latency<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for Latency<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = method_of(request.uri().path());
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let code = code_of(&response);
            let method = if code == Code::Unimplemented { "unknown".to_owned() } else { method };
            let labels = [("method", method), ("code", code_word(code).to_owned())];
            metrics::histogram!(crate::metrics::API_REQUEST_SECONDS, &labels).record(started.elapsed());
            Ok(response)
        })
    }
}

/// `Service/Method` of a gRPC path `/package.Service/Method`.
fn method_of(path: &str) -> String {
    let path = path.trim_start_matches('/');
    match path.split_once('/') {
        Some((service, method)) => {
            let service = service.rsplit('.').next().unwrap_or(service);
            format!("{service}/{method}")
        }
        None => path.to_owned(),
    }
}

/// The status in the response headers (a trailers-only answer), or OK.
fn code_of<R>(response: &Response<R>) -> Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

/// The status as the label shows it, e.g. `ok`, `not_found`.
fn code_word(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_named_by_service_and_method() {
        assert_eq!(method_of("/scorekeeper.v1.JobService/GetJob"), "JobService/GetJob");
        assert_eq!(method_of("/grpc.health.v1.Health/Check"), "Health/Check");
        assert_eq!(method_of("/odd"), "odd");
    }

    #[test]
    fn the_code_comes_from_a_trailers_only_answer() {
        let refused = tonic::Status::not_found("no such job").into_http::<()>();
        assert_eq!(code_word(code_of(&refused)), "not_found");
        assert_eq!(code_of(&Response::new(())), Code::Ok);
    }
}
