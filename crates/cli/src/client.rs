//! Talking to a running `scorekeeper serve` as a client: the connection
//! settings and the bearer token every call carries.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Adds `authorization: Bearer <token>` to every request; the server
/// derives the customer from the token, never from the request body.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> anyhow::Result<BearerToken> {
        Ok(BearerToken(
            format!("Bearer {token}").parse().context("the API token is not a valid header value")?,
        ))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, BearerToken>;

/// Connects to `url`; every call may take up to `call_timeout`.
pub async fn connect(url: &str, call_timeout: Duration) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("--grpc-url {url:?} is not a valid URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(call_timeout)
        .connect()
        .await
        .with_context(|| format!("cannot reach scorekeeper serve at {url}"))
}

/// Where the API is and the token to use.
#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    /// gRPC URL of a running `scorekeeper serve`.
    #[arg(long, env = "SK_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    pub grpc_url: String,
    /// API token (`scorekeeper token create`).
    #[arg(long, env = "SCOREKEEPER_TOKEN", hide_env_values = true)]
    pub token: String,
}

impl ApiArgs {
    /// A channel and the interceptor that authenticates it.
    pub async fn connect(&self) -> anyhow::Result<(Channel, BearerToken)> {
        let bearer = BearerToken::new(&self.token).context("--token")?;
        Ok((connect(&self.grpc_url, Duration::from_secs(60)).await?, bearer))
    }
}
