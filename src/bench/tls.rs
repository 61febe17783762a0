//! HTTPS for the benchmark's receiver (`tminus bench --receiver-tls`): a
//! private CA and a certificate it signs for `127.0.0.1` and `localhost`,
//! both made for the run (rcgen) and written in the run's temporary
//! directory. The receiver presents the certificate; `tminus serve` trusts
//! the CA through its ordinary `--target-ca`, so each connection is checked
//! (chain, name, dates) as at any private receiver; nothing turns the check
//! off. `wrk` measures the ceiling over the same HTTPS port.

use super::counted::Counting;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files of a run's certificates.
pub struct RunCerts {
    /// The CA, PEM: what `--target-ca` is given.
    pub ca_pem: PathBuf,
    /// The receiver's certificate (DER) and its PKCS#8 key (DER).
    pub cert_der: PathBuf,
    pub key_der: PathBuf,
}

/// Makes a CA and a receiver's certificate it signs, in `dir`.
pub fn make(dir: &Path) -> anyhow::Result<RunCerts> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "tminus bench CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate()?;
    let ca = ca.self_signed(&ca_key)?;
    // An IP string becomes an IP address name (the hook URLs say 127.0.0.1).
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
    let key = rcgen::KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca, &ca_key)?;
    let files = RunCerts {
        ca_pem: dir.join("bench-ca.pem"),
        cert_der: dir.join("bench-receiver.der"),
        key_der: dir.join("bench-receiver.key.der"),
    };
    std::fs::write(&files.ca_pem, ca.pem())?;
    std::fs::write(&files.cert_der, cert.der())?;
    std::fs::write(&files.key_der, key.serialize_der())?;
    Ok(files)
}

/// The receiver's side: a TLS acceptor presenting the certificate.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let cert = rustls::pki_types::CertificateDer::from(read(cert)?);
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(read(key)?.into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS on `listener`: each connection's handshake and
/// requests on a task of its own (HTTP/1.1, keep-alive), so handshakes
/// never queue behind one another.
pub async fn serve(mut listener: Counting, acceptor: tokio_rustls::TlsAcceptor, app: axum::Router) {
    loop {
        let (io, _) = axum::serve::Listener::accept(&mut listener).await;
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(io).await else {
                return;
            };
            let answer = hyper::service::service_fn(move |req| {
                let mut app = app.clone();
                tower_service::Service::call(&mut app, req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), answer)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A TLS connection to 127.0.0.1 at `port`, trusting the CAs in `ca`.
    async fn connect(
        port: u16,
        ca: Option<&Path>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca
            .map(|p| tminus::certs::pem_certificates(p).unwrap())
            .unwrap_or_default()
        {
            roots.add(cert).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    /// The receiver serves HTTPS with the run's certificate, which chains
    /// to the run's CA for the address the hook URLs name, and to nothing
    /// else.
    #[tokio::test]
    async fn the_receiver_s_certificate_is_trusted_through_the_run_s_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let files = make(dir.path()).unwrap();
        let inner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = inner.local_addr().unwrap().port();
        let listener = Counting {
            inner,
            conns: Default::default(),
        };
        let app = axum::Router::new().fallback(|| async { "OK" });
        let acceptor = acceptor(&files.cert_der, &files.key_der).unwrap();
        tokio::spawn(serve(listener, acceptor, app));

        let mut tls = connect(port, Some(&files.ca_pem)).await.expect("trusted");
        tls.write_all(b"POST /hook/0/0 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        let refused = connect(port, None).await;
        assert!(refused.is_err(), "trusted without the run's CA");
    }
}
