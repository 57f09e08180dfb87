//! Where the API is and the token to call it with, as flags or environment
//! of the client subcommands; the client itself is `scorekeeper-client`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use scorekeeper_client::{Api, BearerToken, ClientTls, channel};

/// Where the API is and the token to use.
#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    /// gRPC URL of a running `scorekeeper serve`; `https://` to use TLS.
    #[arg(long, env = "SK_GRPC_URL", default_value = "http://127.0.0.1:50051")]
    pub grpc_url: String,
    /// API token (`scorekeeper token create`).
    #[arg(long, env = "SCOREKEEPER_TOKEN", hide_env_values = true)]
    pub token: String,
    /// PEM CA bundle to trust for an `https://` --grpc-url (a private CA).
    /// Unset: the platform's root certificates.
    #[arg(long, env = "SK_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl ApiArgs {
    /// The API, connected now; every call may take up to `call_timeout`.
    pub async fn connect(&self, call_timeout: Duration) -> anyhow::Result<Api> {
        let bearer = BearerToken::new(&self.token).context("--token")?;
        let tls = ClientTls::from_setting(self.tls_ca.as_deref())?;
        Ok(Api::new(channel::connect_with(&self.grpc_url, &tls, call_timeout).await?, bearer))
    }
}
