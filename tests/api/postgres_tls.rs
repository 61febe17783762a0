//! TLS to PostgreSQL: with `sslmode=require` the connection is encrypted and
//! the server's certificate is checked against `--database-ca`; a server
//! whose certificate those roots do not sign is refused. Runs against the
//! local server, with TLS on (Debian's self-signed certificate for
//! `localhost`, which `scripts/test` turns on when it is off); anything else
//! fails the test rather than skip it.

use crate::pg;

const CA: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The test schema's URL, by name (the certificate is for `localhost`),
/// with TLS required and a name to find its connections by.
async fn tls_url(db: &pg::TestDb, app: &str) -> String {
    let local = db.url.contains("@127.0.0.1:") || db.url.contains("@localhost:");
    assert!(local, "the TLS test needs the local server: {}", db.url);
    let ssl: String = db
        .client()
        .await
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ssl, "on",
        "PostgreSQL must have TLS on (scripts/test turns it on)"
    );
    assert!(std::path::Path::new(CA).exists(), "{CA} must exist");
    let url = db.url.replace("@127.0.0.1:", "@localhost:");
    format!("{url}&sslmode=require&application_name={app}")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn tls_is_used_and_the_certificate_checked() {
    let db = pg::fresh().await;
    let url = tls_url(&db, "tminus_tls_test").await;
    let err = tminus::store::open_with(&url, None)
        .await
        .err()
        .expect("a self-signed certificate is not among the public roots");
    assert!(
        format!("{err:#}").contains("certificate"),
        "refused for its certificate: {err:#}"
    );

    let store = tminus::store::open_with(&url, Some(std::path::Path::new(CA)))
        .await
        .expect("the server's own certificate as the root");
    let c = store.create_creator("Ada", None).await.unwrap();
    assert_eq!(store.get_creator(&c.id).await.unwrap().name, "Ada");
    // The listener connects on a task of its own: give it a moment.
    let admin = db.client().await;
    let mut seen = (0, 0);
    for _ in 0..50 {
        let row = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                 WHERE a.application_name = 'tminus_tls_test'",
                &[],
            )
            .await
            .unwrap();
        seen = (row.get::<_, i64>(0), row.get::<_, i64>(1));
        if seen.0 >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (tls, plain) = seen;
    assert!(tls >= 2, "the pool and the listener use TLS ({tls})");
    assert_eq!(plain, 0, "no connection in plain text");
    drop(store);
    db.drop_now().await;
}
