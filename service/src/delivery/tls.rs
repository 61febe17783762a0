//! Which receivers' certificates deliveries trust. A certificate must be
//! valid for the hook URL's host name, within its dates, and chain to a
//! public web root or to a certificate in `--target-ca`: the usual check
//! (rustls's webpki verifier).
//!
//! A certificate in `--target-ca` that a receiver presents as its own is
//! also trusted, as pinned: for the names it carries (its subject
//! alternative names) and within its dates, the handshake's signature still
//! checked against its key. That is the self-signed certificate people make
//! with `openssl req -x509`: it carries `CA:TRUE`, which webpki refuses in a
//! server's place (`CaUsedAsEndEntity`) even when it is itself the trusted
//! root, so without the pin it could never be used.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// The TLS settings of deliveries: the public web roots, and the
/// certificates in `ca` (a PEM file) as roots and pins.
pub fn client_config(ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut pinned = Vec::new();
    if let Some(path) = ca {
        for cert in crate::certs::pem_certificates(path)? {
            pinned.push(Pinned::new(cert.clone())?);
            roots.add(cert)?;
        }
    }
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier = Arc::new(Receivers { webpki, pinned });
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// A certificate of `--target-ca`, and the dates it is valid between.
#[derive(Debug)]
struct Pinned {
    der: CertificateDer<'static>,
    not_before: UnixTime,
    not_after: UnixTime,
}

impl Pinned {
    fn new(der: CertificateDer<'static>) -> anyhow::Result<Self> {
        use x509_cert::der::Decode;
        let cert = x509_cert::Certificate::from_der(&der)
            .map_err(|e| anyhow::anyhow!("a certificate in --target-ca cannot be read: {e}"))?;
        let validity = &cert.tbs_certificate.validity;
        let at = |t: x509_cert::time::Time| UnixTime::since_unix_epoch(t.to_unix_duration());
        Ok(Pinned {
            not_before: at(validity.not_before),
            not_after: at(validity.not_after),
            der,
        })
    }

    /// Whether a receiver presenting this certificate may be `name` at
    /// `now`: one of its names, and within its dates.
    fn check(&self, name: &ServerName<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        if now.as_secs() < self.not_before.as_secs() {
            return Err(CertificateError::NotValidYetContext {
                time: now,
                not_before: self.not_before,
            }
            .into());
        }
        if now.as_secs() > self.not_after.as_secs() {
            return Err(CertificateError::ExpiredContext {
                time: now,
                not_after: self.not_after,
            }
            .into());
        }
        rustls::client::verify_server_name(&ParsedCertificate::try_from(&self.der)?, name)
    }
}

/// The verifier of receivers' certificates: webpki's, then the pins.
#[derive(Debug)]
struct Receivers {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<Pinned>,
}

impl ServerCertVerifier for Receivers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        // Byte for byte the certificate given: its key is the one trusted.
        match self.pinned.iter().find(|p| p.der == *end_entity) {
            Some(p) => p
                .check(server_name, now)
                .map(|()| ServerCertVerified::assertion()),
            None => Err(refused),
        }
    }

    // The handshake's signatures are checked against the presented
    // certificate's key, pinned or not, as webpki's verifier does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
