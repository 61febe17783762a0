//! TLS to PostgreSQL. With `sslmode=require` every connection is encrypted
//! and the server's certificate is checked, name included (stricter than
//! libpq's `require`, like its `verify-full`), against the given roots or
//! the public web roots. Any other mode connects in plain text: tminus
//! never half-trusts a certificate.

use anyhow::Context;
use rustls::RootCertStore;
use std::path::Path;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `config`; a mode other than `require` becomes
/// `disable`, so `prefer` (the default) never meets a certificate it could
/// not check.
pub(super) fn connector(
    config: &mut tokio_postgres::Config,
    ca: Option<&Path>,
) -> anyhow::Result<MakeRustlsConnect> {
    if config.get_ssl_mode() != SslMode::Require {
        config.ssl_mode(SslMode::Disable);
    }
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in crate::certs::pem_certificates(path)? {
                roots
                    .add(cert)
                    .with_context(|| format!("a certificate in {}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(tls))
}
