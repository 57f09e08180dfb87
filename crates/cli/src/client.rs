//! Where the API is and the token to call it with, as flags or environment
//! of the client subcommands; the client itself is `scorekeeper-client`.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use scorekeeper_client::{Api, BearerToken, channel};

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
    /// The API, connected now; every call may take up to `call_timeout`.
    pub async fn connect(&self, call_timeout: Duration) -> anyhow::Result<Api> {
        let bearer = BearerToken::new(&self.token).context("--token")?;
        Ok(Api::new(channel::connect(&self.grpc_url, call_timeout).await?, bearer))
    }
}
