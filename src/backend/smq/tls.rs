//! TLS towards SeaweedFS: the client side of the mutual TLS that SeaweedFS's `security.toml`
//! turns on for gRPC (`[grpc] ca`, a `cert` and `key` per component).
//!
//! Once a component has a certificate there, it serves gRPC only over TLS, asks every
//! client for a certificate signed by `grpc.ca`, and wants ALPN "h2" (grpc-go refuses a
//! TLS client that offers none). tidegate presents `--smq-tls-certificate` to the master,
//! the filer and the brokers alike, as SeaweedFS's own clients present `[grpc.client]`.
//!
//! One difference, on purpose: SeaweedFS's clients check only that a server's certificate
//! chains to `grpc.ca` ("the host name is not checked", says its security.toml), while
//! tidegate also checks that it names the host it dials (a subject alternative name), or
//! `--smq-tls-server-name` when one name is shared by every server.

use crate::config::Config;
use crate::security::tls::{certificates, provider};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};
use std::sync::Arc;

/// How tidegate dials SeaweedFS's gRPC servers over TLS; loaded once at start-up and
/// shared by every shard.
#[derive(Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    /// `--smq-tls-server-name`: checked in every server's certificate instead of the host
    /// of the address dialled.
    server_name: Option<ServerName<'static>>,
}

impl ClientTls {
    /// The TLS `config`'s --smq-tls-* flags set up; `None` without them. Fails, naming the
    /// flag, when a file cannot be used.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>, String> {
        let Some(ca) = &config.smq_tls_ca else {
            return Ok(None);
        };
        let mut roots = RootCertStore::empty();
        for certificate in certificates(ca).map_err(|e| format!("--smq-tls-ca {e}"))? {
            roots
                .add(certificate)
                .map_err(|e| format!("--smq-tls-ca {}: {e}", ca.display()))?;
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let mut client = match (&config.smq_tls_certificate, &config.smq_tls_key) {
            (Some(certificate), Some(key_file)) => {
                let chain =
                    certificates(certificate).map_err(|e| format!("--smq-tls-certificate {e}"))?;
                let key = PrivateKeyDer::from_pem_file(key_file)
                    .map_err(|e| format!("--smq-tls-key {}: {e}", key_file.display()))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    format!(
                        "--smq-tls-certificate {} and --smq-tls-key {}: {e}",
                        certificate.display(),
                        key_file.display()
                    )
                })?
            }
            // validate() refuses one without the other.
            _ => builder.with_no_client_auth(),
        };
        client.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = match &config.smq_tls_server_name {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| format!("--smq-tls-server-name {name:?}: {e}"))?,
            ),
        };
        Ok(Some(Arc::new(Self {
            config: Arc::new(client),
            server_name,
        })))
    }

    /// What a connection to `address` ("host:port") is set up with: the configuration, and
    /// the name its server's certificate must carry.
    pub fn for_address(
        &self,
        address: &str,
    ) -> Result<(futures_rustls::TlsConnector, ServerName<'static>), String> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(host.to_string()).map_err(|e| {
                    format!("{host:?} is no name to check in a certificate ({e}): give --smq-tls-server-name")
                })?
            }
        };
        Ok((
            futures_rustls::TlsConnector::from(self.config.clone()),
            name,
        ))
    }

    /// Words on a failed handshake (or a certificate refused just after it, as TLS 1.3
    /// servers do) that point at the flag to look at.
    pub fn explain(&self, error: &std::io::Error) -> &'static str {
        use rustls::{AlertDescription, CertificateError, Error};
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
            return "";
        };
        match tls {
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => {
                "; the server's certificate does not name the host tidegate dials \
                 (--smq-tls-server-name names the one it checks instead)"
            }
            Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => "; the server's certificate is not signed by a CA in --smq-tls-ca",
            Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::CertificateRequired
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown,
            ) => {
                "; SeaweedFS refused tidegate's certificate: --smq-tls-certificate and \
                 --smq-tls-key must be a certificate signed by SeaweedFS's grpc.ca, for \
                 client authentication"
            }
            Error::InvalidMessage(_) => {
                "; the server does not speak TLS: is SeaweedFS's gRPC without TLS (no \
                 certificates in its security.toml)? Then drop the --smq-tls-* flags"
            }
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_missing_file_is_named_with_its_flag() {
        let config = Config::parse_from([
            "tidegate",
            "--backend",
            "smq",
            "--smq-tls-ca",
            "/nonexistent/ca.pem",
        ]);
        let error = ClientTls::from_config(&config).expect_err("no such file");
        assert!(
            error.starts_with("--smq-tls-ca /nonexistent/ca.pem"),
            "{error}"
        );
        let plain = Config::parse_from(["tidegate", "--backend", "smq"]);
        assert!(ClientTls::from_config(&plain).expect("no TLS").is_none());
    }

    #[test]
    fn the_name_checked_is_the_host_dialled_unless_one_is_given() {
        let tls = |server_name: Option<&str>| ClientTls {
            config: Arc::new(
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth(),
            ),
            server_name: server_name.map(|n| ServerName::try_from(n.to_string()).expect("name")),
        };
        let name = |tls: &ClientTls, address: &str| {
            tls.for_address(address)
                .map(|(_, name)| name.to_str().into_owned())
        };
        let dialled = tls(None);
        assert_eq!(name(&dialled, "127.0.0.1:19333"), Ok("127.0.0.1".into()));
        assert_eq!(name(&dialled, "[::1]:19333"), Ok("::1".into()));
        assert_eq!(
            name(&dialled, "filer.local:18888"),
            Ok("filer.local".into())
        );
        assert!(name(&dialled, "bad host:1").is_err());
        let shared = tls(Some("seaweedfs"));
        assert_eq!(name(&shared, "10.0.0.5:17777"), Ok("seaweedfs".into()));
    }
}
