//! The answer to a request larger than the gRPC message limit.
//!
//! tonic refuses such a request before decoding it, with OUT_OF_RANGE and a
//! message about decoding. For a client it is a limit of the server's that
//! it ran into, RESOURCE_EXHAUSTED, like our other limits. tonic answers a
//! refused unary request with its status in the response headers (a
//! "trailers-only" response), so a layer around the server rewrites that
//! status; no handler of ours answers OUT_OF_RANGE, so it is always this.

use http::Response;
use scorekeeper_proto::MAX_MESSAGE_BYTES;
use tonic::{Code, Status};

/// `response`, with an OUT_OF_RANGE status in its headers answered as
/// RESOURCE_EXHAUSTED naming the limit.
pub(crate) fn resource_exhausted<B>(mut response: Response<B>) -> Response<B> {
    let out_of_range = i32::from(Code::OutOfRange).to_string();
    if response
        .headers()
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == out_of_range.as_bytes())
    {
        let status = Status::resource_exhausted(format!(
            "the request is larger than {MAX_MESSAGE_BYTES} bytes, the gRPC message limit of this server; \
             send fewer conversations or messages per call"
        ));
        // Only fails for a message that cannot be a header value; ours can.
        let _ = status.add_header(response.headers_mut());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_becomes_resource_exhausted_and_others_pass() {
        let refused = Status::out_of_range("Error, decoded message length too large").into_http::<()>();
        let answered = resource_exhausted(refused);
        let status = Status::from_header_map(answered.headers()).expect("a status");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("16777216 bytes"), "{}", status.message());

        let other = Status::not_found("job 7 not found").into_http::<()>();
        let status = Status::from_header_map(resource_exhausted(other).headers()).unwrap();
        assert_eq!((status.code(), status.message()), (Code::NotFound, "job 7 not found"));
    }
}
