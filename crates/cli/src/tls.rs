//! `serve`'s TLS settings: the certificate chain and private key of
//! `--tls-cert`/`--tls-key` (`SK_TLS_CERT`/`SK_TLS_KEY`, PEM files), both or
//! neither. Read and checked at start, so a half-configured or unreadable
//! setting stops start-up naming it; then handed to the gRPC server (tonic)
//! and the HTTP port (`crate::tls_listener`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Identity, ServerTlsConfig};

/// How long a client may take over its TLS handshake before the connection
/// is dropped: a client that connects and says nothing holds no slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS settings could not be used; each names its setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert (SK_TLS_CERT) is set but --tls-key (SK_TLS_KEY) is not: TLS needs both")]
    KeyMissing,
    #[error("--tls-key (SK_TLS_KEY) is set but --tls-cert (SK_TLS_CERT) is not: TLS needs both")]
    CertMissing,
    #[error("reading {setting} {}", .path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{setting} {}: not a PEM {what}", .path.display())]
    Pem {
        setting: &'static str,
        path: PathBuf,
        what: &'static str,
        #[source]
        source: Option<rustls::pki_types::pem::Error>,
    },
    #[error("--tls-cert (SK_TLS_CERT) and --tls-key (SK_TLS_KEY) do not make a usable certificate")]
    Unusable(#[source] rustls::Error),
}

const CERT: &str = "--tls-cert (SK_TLS_CERT)";
const KEY: &str = "--tls-key (SK_TLS_KEY)";

/// A certificate and key `serve` presents on both its ports.
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    http: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// `None` when neither setting is given (plain, as without TLS); an
    /// error when only one is, or when they cannot be read or used.
    pub fn load(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<ServerTls>, TlsError> {
        let (cert_path, key_path) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(TlsError::KeyMissing),
            (None, Some(_)) => return Err(TlsError::CertMissing),
            (Some(cert), Some(key)) => (cert, key),
        };
        let cert_pem = read(CERT, cert_path)?;
        let key_pem = read(KEY, key_path)?;
        let not_cert =
            |source| TlsError::Pem { setting: CERT, path: cert_path.to_owned(), what: "certificate", source };
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| not_cert(Some(e)))?;
        if chain.is_empty() {
            return Err(not_cert(None));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
            setting: KEY,
            path: key_path.to_owned(),
            what: "private key",
            source: Some(e),
        })?;
        let mut http = rustls::ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Unusable)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Unusable)?;
        // axum serves HTTP/1.1 on this port.
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(ServerTls { cert_pem, key_pem, http: Arc::new(http) }))
    }

    /// For the gRPC server.
    pub fn grpc(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// For the HTTP port.
    pub fn http(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.http))
    }
}

/// The `ring` provider, named rather than taken from the process default
/// (which depends on which rustls features the build unified): the one
/// tonic's `tls-ring` uses too. rustls marks it deprecated for want of
/// post-quantum key exchange, which only its aws-lc provider has; that one
/// needs cmake and nasm to build, which this project does not require.
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { setting, path: path.to_owned(), source })
}
