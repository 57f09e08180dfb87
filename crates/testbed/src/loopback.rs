//! Talking to processes on this machine: a free port to give one, and an
//! HTTP GET of its `/health` or `/metrics`, plain or over TLS.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A loopback port nothing listens on right now (another process may take
/// it before the caller binds it: good enough for tests and tools).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A plain HTTP/1.0 GET on loopback: `(status, body)`, if anything answered.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    get(stream, path).await
}

/// [`http_get`] over TLS, trusting only the CA certificates of `ca_pem`
/// (the server's certificate must name `127.0.0.1`): `None` also when the
/// handshake fails.
pub async fn https_get(port: u16, path: &str, ca_pem: &[u8]) -> Option<(u16, String)> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.ok()?).ok()?;
    }
    // The `ring` provider `serve` uses (rustls deprecates it only for want
    // of post-quantum key exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let name = ServerName::try_from("127.0.0.1").ok()?;
    let stream = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.ok()?;
    get(stream, path).await
}

async fn get(mut stream: impl AsyncRead + AsyncWrite + Unpin, path: &str) -> Option<(u16, String)> {
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut bytes = Vec::new();
    // A TLS server may close without a close_notify once it has answered:
    // what arrived before that counts.
    let read = stream.read_to_end(&mut bytes).await;
    if read.is_err() && bytes.is_empty() {
        return None;
    }
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}
