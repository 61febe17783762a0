//! HTTPS deliveries check the receiver's certificate, its name included. A
//! private CA made in the test signs a certificate for `localhost` and one
//! for `elsewhere.example`; each is presented by a TLS receiver on loopback,
//! both reached as `https://localhost:…`. With the CA in `--target-ca`, the
//! receiver whose certificate names `localhost` gets its delivery; the one
//! whose certificate names another host does not, nor does the right one
//! when the CA is not trusted.
//!
//! A self-signed certificate (`CA:TRUE`, as `openssl req -x509` makes it)
//! given in `--target-ca` is trusted as pinned, for its names and within
//! its dates; and every way a certificate is refused is recorded in words
//! (`https_failures.rs`).

use crate::helpers::*;
use bytes::Bytes;
use http_body_util::Full;
use reqwest::Method;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A CA and its key.
pub struct Ca {
    pub cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A certificate and its key, as a receiver presents them.
pub struct Identity {
    pub cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// Certificate parameters for `name`, valid from `from` to `until`.
fn params(name: &str, from: (i32, u8, u8), until: (i32, u8, u8)) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    p
}

/// Long ago, and far ahead: dates that hold for any test run.
pub const PAST: (i32, u8, u8) = (2000, 1, 1);
pub const FUTURE: (i32, u8, u8) = (4000, 1, 1);

impl Ca {
    /// A CA of a name of its own.
    pub fn new() -> Ca {
        Ca::named(&format!("tminus test CA {:016x}", rand::random::<u64>()))
    }

    /// A CA named `name`.
    fn named(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Another CA of this one's name, with a key of its own.
    pub fn impostor(&self) -> Ca {
        let dn = self.cert.params().distinguished_name.clone();
        let name = match dn.get(&rcgen::DnType::CommonName) {
            Some(rcgen::DnValue::Utf8String(n)) => n.clone(),
            other => panic!("{other:?}"),
        };
        Ca::named(&name)
    }

    /// A certificate for `name` this CA signs, valid between the dates.
    pub fn sign(&self, name: &str, from: (i32, u8, u8), until: (i32, u8, u8)) -> Identity {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params(name, from, until)
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        Identity { cert, key }
    }

    /// A TLS receiver presenting a certificate for `name` signed by this
    /// CA: its port, and how many requests it answered.
    async fn receiver(&self, name: &str) -> (u16, Arc<AtomicUsize>) {
        self.sign(name, PAST, FUTURE).serve().await
    }
}

impl Identity {
    /// A self-signed certificate for `name` carrying `CA:TRUE`, as
    /// `openssl req -x509` makes one, valid between the dates.
    pub fn self_signed(name: &str, from: (i32, u8, u8), until: (i32, u8, u8)) -> Identity {
        let mut p = params(name, from, until);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Identity { cert, key }
    }

    /// A self-signed certificate carrying `CA:TRUE` whose subject's common
    /// name is `name`, with no subject alternative name: what `openssl req
    /// -x509 -subj /CN=name` makes without `-addext subjectAltName=…`.
    pub fn common_name_only(name: &str) -> Identity {
        let mut p = params(name, PAST, FUTURE);
        p.subject_alt_names.clear();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Identity { cert, key }
    }

    /// A TLS receiver on loopback presenting this certificate: its port,
    /// and how many requests it answered.
    pub async fn serve(&self) -> (u16, Arc<AtomicUsize>) {
        let der = rustls_pki_types::PrivateKeyDer::Pkcs8(self.key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.der().clone()], der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, hits) = (acceptor.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let answer = hyper::service::service_fn(move |_req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from("ok"),
                            )))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, answer)
                        .await;
                });
            }
        });
        (port, hits)
    }
}

/// Subscribes `url`, sends it a test event and returns its delivery once
/// it has had an attempt.
pub async fn test_event(app: &TestApp, key: &str, url: &str) -> Value {
    let sub = app.subscribe(key, url, None).await;
    let sid = sub["id"].as_str().unwrap();
    let (s, b) = app
        .hooks(Method::POST, key, &format!("/{sid}/test"), None)
        .await;
    assert!(s.is_success(), "{b}");
    let d = app
        .wait_deliveries(key, sid, 10, |d| {
            d.first().is_some_and(|x| x["attempts"].as_u64() >= Some(1))
        })
        .await;
    d[0].clone()
}

#[tokio::test]
async fn https_deliveries_check_the_receiver_s_name_against_the_trusted_roots() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, ca.cert.pem()).unwrap();
    let (right, right_hits) = ca.receiver("localhost").await;
    let (wrong, wrong_hits) = ca.receiver("elsewhere.example").await;

    let app = spawn_with(|c| c.target_ca = Some(pem.clone())).await;
    let (_, key) = app.creator().await;
    let ok = test_event(&app, &key, &format!("https://localhost:{right}/hook")).await;
    assert_eq!(ok["status"], "delivered", "{ok:#}");
    assert_eq!(ok["attemptLog"][0]["statusCode"], 200);
    assert_eq!(right_hits.load(Ordering::SeqCst), 1);

    let bad = test_event(&app, &key, &format!("https://localhost:{wrong}/hook")).await;
    let err = bad["attemptLog"][0]["error"].as_str().unwrap_or_default();
    assert!(bad["attemptLog"][0]["statusCode"].is_null(), "{bad:#}");
    assert!(err.contains("connection failed"), "{err}");
    assert!(
        err.to_lowercase().contains("name"),
        "says the name is wrong: {err}"
    );
    assert_eq!(wrong_hits.load(Ordering::SeqCst), 0, "no request sent");

    // The same receiver as the first, but its CA not trusted.
    let untrusting = spawn_app().await;
    let (_, key) = untrusting.creator().await;
    let bad = test_event(
        &untrusting,
        &key,
        &format!("https://localhost:{right}/hook"),
    )
    .await;
    let err = bad["attemptLog"][0]["error"].as_str().unwrap_or_default();
    assert!(err.contains("connection failed"), "{err}");
    assert_eq!(right_hits.load(Ordering::SeqCst), 1, "no request sent");
}
