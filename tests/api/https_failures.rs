//! What a receiver's certificate must be, said in the attempt log in words
//! a person reads: an unknown issuer, a bad signature, a name mismatch,
//! expired, not yet valid, a CA certificate in a server's place, no TLS at
//! all. And the
//! self-signed certificate people make with `openssl req -x509` (it carries
//! `CA:TRUE`): given in `--target-ca`, it is trusted as pinned, for the
//! names it carries and within its dates.

use crate::helpers::*;
use crate::https::{test_event, Ca, Identity, FUTURE, PAST};
use std::sync::atomic::Ordering;

/// An app trusting the certificates `trusted` (as `--target-ca`), and an
/// integrator's key.
async fn trusting(trusted: &[&rcgen::Certificate]) -> (TestApp, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("target-ca.pem");
    let text: String = trusted.iter().map(|c| c.pem()).collect();
    std::fs::write(&pem, text).unwrap();
    let app = spawn_with(|c| c.target_ca = Some(pem.clone())).await;
    let (_, key) = app.creator().await;
    (app, key, dir)
}

/// The error recorded for a delivery to a receiver presenting `id`,
/// which must have had no request.
async fn refused(app: &TestApp, key: &str, id: &Identity) -> String {
    let (port, hits) = id.serve().await;
    let d = test_event(app, key, &format!("https://localhost:{port}/hook")).await;
    let attempt = &d["attemptLog"][0];
    assert!(attempt["statusCode"].is_null(), "{d:#}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request sent");
    attempt["error"].as_str().unwrap_or_default().to_owned()
}

const CERT: &str = "connection failed: the receiver's TLS certificate";

#[tokio::test]
async fn a_self_signed_certificate_in_target_ca_is_pinned_for_its_names_and_dates() {
    let pinned = Identity::self_signed("localhost", PAST, FUTURE);
    let elsewhere = Identity::self_signed("elsewhere.example", PAST, FUTURE);
    let expired = Identity::self_signed("localhost", PAST, (2001, 1, 1));
    let unnamed = Identity::common_name_only("localhost");
    let all = [&pinned.cert, &elsewhere.cert, &expired.cert, &unnamed.cert];
    let (app, key, _dir) = trusting(&all).await;

    let (port, hits) = pinned.serve().await;
    let ok = test_event(&app, &key, &format!("https://localhost:{port}/hook")).await;
    assert_eq!(ok["status"], "delivered", "{ok:#}");
    assert_eq!(ok["attemptLog"][0]["statusCode"], 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Pinned for its own names only, and within its dates.
    assert_eq!(
        refused(&app, &key, &elsewhere).await,
        format!("{CERT} is not valid for localhost (name mismatch): it is for elsewhere.example")
    );
    assert_eq!(
        refused(&app, &key, &expired).await,
        format!("{CERT} has expired: it was valid until 2001-01-01 00:00:00 UTC")
    );
    assert_eq!(
        refused(&app, &key, &unnamed).await,
        format!(
            "{CERT} is not valid for localhost (name mismatch): it is for no host name \
             (only subject alternative names count, not the common name)"
        )
    );
}

#[tokio::test]
async fn refused_certificates_are_recorded_in_plain_words() {
    let ca = Ca::new();
    let (app, key, _dir) = trusting(&[&ca.cert]).await;

    let stranger = Ca::new().sign("localhost", PAST, FUTURE);
    assert_eq!(
        refused(&app, &key, &stranger).await,
        format!(
            "{CERT} has an unknown issuer: neither a public root nor a certificate in \
             --target-ca signed it"
        )
    );
    // Its issuer's name is the trusted CA's, its signature another key's.
    let forged = ca.impostor().sign("localhost", PAST, FUTURE);
    assert_eq!(
        refused(&app, &key, &forged).await,
        format!("{CERT} has a bad signature: its issuer did not sign it")
    );
    let elsewhere = ca.sign("elsewhere.example", PAST, FUTURE);
    assert_eq!(
        refused(&app, &key, &elsewhere).await,
        format!("{CERT} is not valid for localhost (name mismatch): it is for elsewhere.example")
    );
    let expired = ca.sign("localhost", PAST, (2001, 1, 1));
    assert_eq!(
        refused(&app, &key, &expired).await,
        format!("{CERT} has expired: it was valid until 2001-01-01 00:00:00 UTC")
    );
    let early = ca.sign("localhost", (3999, 1, 1), FUTURE);
    assert_eq!(
        refused(&app, &key, &early).await,
        format!("{CERT} is not valid yet: it is valid from 3999-01-01 00:00:00 UTC")
    );
    // Self-signed with CA:TRUE, and not given in --target-ca.
    let not_pinned = Identity::self_signed("localhost", PAST, FUTURE);
    assert_eq!(
        refused(&app, &key, &not_pinned).await,
        format!(
            "{CERT} is a CA certificate used as a server certificate (it carries CA:TRUE): \
             serve a certificate this CA signed, or put this very certificate in \
             --target-ca to trust it as pinned"
        )
    );

    // An https:// URL to a receiver that answers in plain HTTP.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = plain.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut tcp, _)) = plain.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let d = test_event(&app, &key, &format!("https://localhost:{port}/hook")).await;
    assert_eq!(
        d["attemptLog"][0]["error"],
        "connection failed: the receiver does not speak TLS (is it plain HTTP?)",
        "{d:#}"
    );
}
