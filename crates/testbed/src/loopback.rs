//! Talking to processes on this machine: a free port to give one, an HTTP
//! GET of its `/health` or `/metrics`, plain or over TLS, and any plain
//! HTTP request with headers and a body (the console's forms and JSON).

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

/// What [`http_request`] got back: the status, the headers in the order
/// they came (a name may repeat), and the body as text (lossy).
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every header named `name` (any case), in the order they came.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// A plain HTTP/1.0 request on loopback: `method path` with `headers`
/// (beside the `Host: 127.0.0.1:<port>` and `Content-Length` it always
/// sends) and `body`; the response, if anything answered.
pub async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.ok()?;
    let mut answer = Vec::new();
    // A server that answers without reading the whole body may reset the
    // connection once it has answered: what arrived before that counts.
    let read = stream.read_to_end(&mut answer).await;
    if read.is_err() && answer.is_empty() {
        return None;
    }
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Some(HttpResponse { status, headers, body: body.to_owned() })
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
