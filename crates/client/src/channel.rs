//! Channels to a `scorekeeper serve`: plain for `http://` URLs, TLS for
//! `https://` ones (trusting what [`ClientTls`] says).

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::{ClientError, Result};
use crate::tls::ClientTls;

/// How long establishing the connection may take, for every tool: a server
/// that does not accept within this is reported unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url` now (failing fast when nothing listens); every call on
/// the channel may then take up to `call_timeout`.
pub async fn connect(url: &str, call_timeout: Duration) -> Result<Channel> {
    connect_with(url, &ClientTls::default(), call_timeout).await
}

/// [`connect`], an `https://` URL trusting what `tls` says.
pub async fn connect_with(url: &str, tls: &ClientTls, call_timeout: Duration) -> Result<Channel> {
    endpoint(url, tls)?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(call_timeout)
        .connect()
        .await
        .map_err(|source| ClientError::Unreachable { url: url.to_owned(), source })
}

/// A channel to `url` that connects on first use (and reconnects after a
/// failure), for callers whose server may not be up yet or may restart.
pub fn lazy(url: &str) -> Result<Channel> {
    lazy_with(url, &ClientTls::default())
}

/// [`lazy`], an `https://` URL trusting what `tls` says.
pub fn lazy_with(url: &str, tls: &ClientTls) -> Result<Channel> {
    Ok(endpoint(url, tls)?.connect_lazy())
}

fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| ClientError::BadUrl { url: url.to_owned(), source })?;
    match endpoint.uri().scheme_str() {
        Some("https") => endpoint
            .tls_config(tls.config())
            .map_err(|source| ClientError::Tls { url: url.to_owned(), source }),
        _ if tls.has_ca() => Err(ClientError::CaWithoutHttps { url: url.to_owned() }),
        _ => Ok(endpoint),
    }
}
