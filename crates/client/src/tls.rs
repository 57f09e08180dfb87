//! Whom a channel to an `https://` URL trusts: the platform's root
//! certificates, or the operator's CA bundle (a private CA, `SK_TLS_CA`).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig};

/// The trust of a channel to an `https://` URL. The default trusts the
/// platform's roots; `http://` URLs never use it.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// PEM certificates to trust instead of the platform's roots.
    ca: Option<Certificate>,
}

/// The CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the CA bundle {} (--tls-ca, SK_TLS_CA)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA bundle {} (--tls-ca, SK_TLS_CA) holds no PEM certificate", .path.display())]
    NoCertificate { path: PathBuf },
}

/// How a PEM certificate starts: a bundle without one is a mistake (a key,
/// a DER file) better reported at start than at the first connection.
const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

impl ClientTls {
    /// Trusts the CA certificates of the PEM file at `path` (and only them).
    pub fn ca_file(path: &Path) -> Result<ClientTls, TlsError> {
        let pem = std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
        if !String::from_utf8_lossy(&pem).contains(PEM_CERTIFICATE) {
            return Err(TlsError::NoCertificate { path: path.to_owned() });
        }
        Ok(ClientTls::ca_pem(pem))
    }

    /// Trusts the CA certificates of `pem` (and only them).
    pub fn ca_pem(pem: impl AsRef<[u8]>) -> ClientTls {
        ClientTls { ca: Some(Certificate::from_pem(pem)) }
    }

    /// `ca_file` of `path` when given, else the platform's roots: what a
    /// `--tls-ca` setting means.
    pub fn from_setting(path: Option<&Path>) -> Result<ClientTls, TlsError> {
        path.map_or_else(|| Ok(ClientTls::default()), ClientTls::ca_file)
    }

    /// Whether a CA bundle was given (it makes sense with `https://` only).
    pub fn has_ca(&self) -> bool {
        self.ca.is_some()
    }

    pub(crate) fn config(&self) -> ClientTlsConfig {
        match &self.ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(ca.clone()),
            None => ClientTlsConfig::new().with_native_roots(),
        }
    }
}
