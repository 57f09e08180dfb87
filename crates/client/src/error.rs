//! What can go wrong talking to the API.

/// An error of this crate; the source chain names the transport or gRPC
/// cause.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--grpc-url {url:?} is not a valid URL")]
    BadUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// A CA bundle was given for a plain `http://` URL: the caller expects
    /// TLS that would not happen.
    #[error("--grpc-url {url:?} is not https://, but a CA bundle (--tls-ca) was given")]
    CaWithoutHttps { url: String },
    #[error("TLS settings for {url}")]
    Tls {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot reach scorekeeper serve at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the API token is not a valid header value")]
    BadToken(#[source] tonic::metadata::errors::InvalidMetadataValue),
    /// A call failed; `step` says what was being done.
    #[error("{step}: {:?}: {}", status.code(), status.message())]
    Call { step: String, status: tonic::Status },
    /// A call succeeded without the message it promises.
    #[error("the server returned no {0}")]
    Missing(&'static str),
    #[error("drawing progress")]
    Terminal(#[source] std::io::Error),
}

impl ClientError {
    /// The failed call's status, `step` naming what was being done.
    pub fn call(step: impl Into<String>, status: tonic::Status) -> ClientError {
        ClientError::Call { step: step.into(), status }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
