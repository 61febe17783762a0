//! HTTPS deliveries check the receiver's certificate, its name included. A
//! private CA made in the test signs a certificate for `localhost` and one
//! for `elsewhere.example`; each is presented by a TLS receiver on loopback,
//! both reached as `https://localhost:…`. With the CA in `--target-ca`, the
//! receiver whose certificate names `localhost` gets its delivery; the one
//! whose certificate names another host does not, nor does the right one
//! when the CA is not trusted.

use crate::helpers::*;
use bytes::Bytes;
use http_body_util::Full;
use reqwest::Method;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A CA and its key.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A TLS receiver presenting a certificate for `name` signed by this
    /// CA: its port, and how many requests it answered.
    async fn receiver(&self, name: &str) -> (u16, Arc<AtomicUsize>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
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

/// Subscribes `url`, sends it a test event and returns its first attempt.
async fn test_event(app: &TestApp, key: &str, url: &str) -> Value {
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
