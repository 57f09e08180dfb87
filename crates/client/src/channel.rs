//! Channels to a `scorekeeper serve`.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::{ClientError, Result};

/// How long establishing the connection may take, for every tool: a server
/// that does not accept within this is reported unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url` now (failing fast when nothing listens); every call on
/// the channel may then take up to `call_timeout`.
pub async fn connect(url: &str, call_timeout: Duration) -> Result<Channel> {
    endpoint(url)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(call_timeout)
        .connect()
        .await
        .map_err(|source| ClientError::Unreachable { url: url.to_owned(), source })
}

/// A channel to `url` that connects on first use (and reconnects after a
/// failure), for callers whose server may not be up yet or may restart.
pub fn lazy(url: &str) -> Result<Channel> {
    Ok(endpoint(url)?.connect_lazy())
}

fn endpoint(url: &str) -> Result<Endpoint> {
    Endpoint::from_shared(url.to_owned())
        .map_err(|source| ClientError::BadUrl { url: url.to_owned(), source })
}
