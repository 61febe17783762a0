//! A PostgreSQL database of one's own for a test: a fresh schema on the
//! server `TMINUS_TEST_POSTGRES_URL` names (by default the local one at
//! `postgres://postgres@127.0.0.1:5432/test`), reached through a URL whose
//! `search_path` points at it.
//!
//! Every test that needs PostgreSQL is `#[ignore]`d, so a plain `cargo test`
//! without a server counts it in its summary as ignored instead of passing
//! it without running it; `scripts/test` (the README's test command, which
//! starts the local server) runs them with `--include-ignored`, and then an
//! unreachable server fails each of them.

use std::sync::atomic::{AtomicU32, Ordering};

/// The server the tests use.
pub fn server_url() -> String {
    std::env::var("TMINUS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of one's own; dropped by [`TestDb::drop_now`] (a failed test
/// leaves it, and a later run drops it).
pub struct TestDb {
    pub url: String,
    pub schema: String,
    server: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A fresh schema; panics, saying why, when no server answers.
pub async fn fresh() -> TestDb {
    let server = server_url();
    let client = connect(&server).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {server} cannot be reached ({e}): start it (scripts/test does) \
             or set TMINUS_TEST_POSTGRES_URL"
        )
    });
    sweep(&client).await;
    let schema = format!(
        "tminus_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create a test schema");
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-c%20search_path%3D{schema}");
    TestDb {
        url,
        schema,
        server,
    }
}

/// Drops schemas left by test processes that are gone.
async fn sweep(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tminus\\_t\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for r in rows {
        let name: String = r.get(0);
        let pid = name.split('_').nth(2).unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}

impl TestDb {
    /// A connection to the schema, for looking at what the service wrote.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url)
            .await
            .expect("connect to the test schema")
    }

    pub async fn drop_now(self) {
        if let Ok(c) = connect(&self.server).await {
            let _ = c
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await;
        }
    }
}
