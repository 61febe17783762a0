//! What the benchmark reads of the store under test, on either backend: a
//! PostgreSQL schema of its own for the run (dropped after), the rows a
//! webinar's schedule holds before it fires, and the bytes the store grew.

use super::wire::{through, Wire, WireCounts};
use anyhow::Context;

/// The store of one run: the URL the instances get, and for PostgreSQL the
/// schema made for the run, the URL the bench reads it through itself, and
/// the relay that counts the instances' round trips (`wire`).
pub struct RunStore {
    pub url: String,
    direct: String,
    schema: Option<(String, String)>,
    wire: Option<Wire>,
}

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

impl RunStore {
    /// For PostgreSQL, a fresh schema on the server `url` names, so runs
    /// never see each other's rows, reached through the counting relay when
    /// `count_trips`; a SQLite path is used as it is.
    pub async fn prepare(url: &str, count_trips: bool) -> anyhow::Result<Self> {
        if !tminus::store::is_postgres(url) {
            return Ok(RunStore {
                url: url.to_owned(),
                direct: url.to_owned(),
                schema: None,
                wire: None,
            });
        }
        let schema = format!("tminus_bench_{}", tminus::domain::ids::new_id());
        pg(url)
            .await?
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let server = url.to_owned();
        let direct = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        // The instances connect through the relay when the URL names a
        // host and port it can stand in for.
        let probe = "127.0.0.1:1".parse()?;
        let (url, wire) = match through(&direct, probe).filter(|_| count_trips) {
            Some((_, upstream)) => {
                let wire = Wire::start(upstream).await?;
                let (url, _) = through(&direct, wire.addr).context("relay URL")?;
                (url, Some(wire))
            }
            None => (direct.clone(), None),
        };
        Ok(RunStore {
            url,
            direct,
            schema: Some((server, schema)),
            wire,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.schema.is_some()
    }

    /// What the relay counted so far of the instances' traffic to
    /// PostgreSQL: round trips, and the statements executed by their text;
    /// `None` on SQLite (in process: no round trips) or without the relay.
    pub fn wire_counts(&self) -> Option<WireCounts> {
        Some(self.wire.as_ref()?.counts())
    }

    /// A connection of the bench's own to the run's PostgreSQL server
    /// (around the relay); `None` on SQLite.
    pub async fn server(&self) -> Option<tokio_postgres::Client> {
        match self.is_postgres() {
            true => pg(&self.direct).await.ok(),
            false => None,
        }
    }

    /// Drops the run's schema.
    pub async fn finish(self) {
        if let Some((server, schema)) = self.schema {
            if let Ok(c) = pg(&server).await {
                let _ = c
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            }
        }
    }

    /// Rows the schedule holds for the webinar before its reminder fires
    /// (pending reminders, slices, deliveries).
    pub async fn stored_rows(&self, webinar: &str) -> Option<i64> {
        const SQL: &str =
            "SELECT (SELECT COUNT(*) FROM reminders WHERE webinar_id = $1 AND status = 'pending')
              + (SELECT COUNT(*) FROM slices WHERE webinar_id = $1)
              + (SELECT COUNT(*) FROM deliveries WHERE webinar_id = $1)";
        if self.is_postgres() {
            let c = pg(&self.direct).await.ok()?;
            return c.query_one(SQL, &[&webinar]).await.ok().map(|r| r.get(0));
        }
        let c = rusqlite::Connection::open_with_flags(
            &self.url,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .ok()?;
        c.query_row(&SQL.replace("$1", "?1"), [webinar], |r| r.get(0))
            .ok()
    }

    /// Bytes the store takes: the SQLite file and its WAL, or the
    /// PostgreSQL schema's tables with their indexes and TOAST (not the
    /// server's WAL).
    pub async fn bytes(&self) -> Option<u64> {
        if let Some((_, schema)) = &self.schema {
            let c = pg(&self.direct).await.ok()?;
            let r = c
                .query_one(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::int8
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relkind = 'r'",
                    &[schema],
                )
                .await
                .ok()?;
            return Some(r.get::<_, i64>(0) as u64);
        }
        let size = |p: String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Some(size(self.url.clone()) + size(format!("{}-wal", self.url)))
    }
}
