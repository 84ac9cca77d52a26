//! Upstream TLS (rustls): `verify-full` by default (chain to the configured CA file or the
//! system roots, and the name: the policy's `server_name`, else the IP address the job
//! connected to); `disable` only when the policy says so. There is no "encrypt without verifying"
//! mode.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};

use crate::policy::{TlsMode, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("the CA file {0} holds no certificate")]
    EmptyCaFile(PathBuf),
    #[error("no usable system root certificate: set ca_file in [target.tls]")]
    NoSystemRoots,
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A verified-TLS client configuration for one target, or `None` when TLS is disabled.
pub fn client_config(settings: &TlsSettings) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    if settings.mode == TlsMode::Disable {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| TlsError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(TlsError::EmptyCaFile(path.clone()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| TlsError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::NoSystemRoots);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// The name the server certificate must match for a connection to `addr`.
pub fn server_name(
    settings: &TlsSettings,
    addr: SocketAddr,
) -> Result<ServerName<'static>, TlsError> {
    match &settings.server_name {
        Some(name) => {
            ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name.clone()))
        }
        None => Ok(ServerName::IpAddress(addr.ip().into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: TlsMode, ca_file: Option<PathBuf>) -> TlsSettings {
        TlsSettings {
            mode,
            ca_file,
            server_name: None,
        }
    }

    #[test]
    fn disabled_tls_has_no_config() {
        assert!(
            client_config(&settings(TlsMode::Disable, None))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let err = client_config(&settings(
            TlsMode::VerifyFull,
            Some("/nonexistent/ca.pem".into()),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(&settings(TlsMode::VerifyFull, Some(path))).unwrap_err();
        assert!(matches!(err, TlsError::EmptyCaFile(_)), "{err}");
    }

    #[test]
    fn the_server_name_defaults_to_the_connected_ip() {
        let s = settings(TlsMode::VerifyFull, None);
        let name = server_name(&s, "127.0.0.1:5432".parse().unwrap()).unwrap();
        assert_eq!(name.to_str(), "127.0.0.1");
    }
}
