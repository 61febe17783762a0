//! SQL for webinars and their reminder rows (their participants are in
//! `participants`). A change to the schedule is announced to the other
//! instances in its transaction.

use super::participants;
use super::{found, notify};
use crate::domain::ids::new_id;
use crate::store::*;
use crate::store::{PlannedReminder, Reminder, StoreError, StoreResult, Webinar, WebinarFields};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row, Transaction};

const WEBINAR_COLS: &str = "id, creator_id, title, link, from_time, to_time, timezone, status,
    created_at, updated_at,
    ARRAY(SELECT mango_id FROM webinar_mangoes m WHERE m.webinar_id = w.id ORDER BY position)";

fn webinar(r: &Row) -> Webinar {
    Webinar {
        id: r.get(0),
        creator_id: r.get(1),
        title: r.get(2),
        link: r.get(3),
        from_time: r.get(4),
        to_time: r.get(5),
        timezone: r.get(6),
        status: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
        mangoes: r.get(10),
    }
}

pub async fn get_webinar(c: &impl GenericClient, id: &str) -> StoreResult<Webinar> {
    let r = c
        .query_opt(
            &format!("SELECT {WEBINAR_COLS} FROM webinars w WHERE id = $1 AND status != 'deleted'"),
            &[&id],
        )
        .await?;
    Ok(webinar(&found(r)?))
}

pub async fn list_webinars(c: &impl GenericClient, creator_id: &str) -> StoreResult<Vec<Webinar>> {
    let rows = c
        .query(
            &format!(
                "SELECT {WEBINAR_COLS} FROM webinars w
                 WHERE creator_id = $1 AND status != 'deleted' ORDER BY from_time, id"
            ),
            &[&creator_id],
        )
        .await?;
    Ok(rows.iter().map(webinar).collect())
}

async fn set_mangoes(tx: &Transaction<'_>, id: &str, mango_ids: &[String]) -> StoreResult<()> {
    tx.execute("DELETE FROM webinar_mangoes WHERE webinar_id = $1", &[&id])
        .await?;
    tx.execute(
        "INSERT INTO webinar_mangoes (webinar_id, mango_id, position)
         SELECT $1, m, (n - 1)::int FROM unnest($2::text[]) WITH ORDINALITY AS u(m, n)
         ON CONFLICT DO NOTHING",
        &[&id, &mango_ids],
    )
    .await?;
    Ok(())
}

/// Arms reminders; one cancelled earlier for the same start comes back, one
/// already sent for the same start is not sent again. Other instances hear
/// of it, so their timers see the new due time.
async fn arm(
    tx: &Transaction<'_>,
    channel: &str,
    webinar_id: &str,
    from: DateTime<Utc>,
    plan: &[PlannedReminder],
) -> StoreResult<()> {
    for r in plan {
        tx.execute(
            "INSERT INTO reminders (id, webinar_id, label, from_time, due_at, status)
             VALUES ($1, $2, $3, $4, $5, 'pending')
             ON CONFLICT (webinar_id, label, from_time) DO UPDATE
               SET status = 'pending', due_at = excluded.due_at, cursor_seq = 0,
                   until_seq = NULL, fired_at = NULL, locked_until = NULL, late = false
               WHERE reminders.status = 'cancelled'",
            &[&new_id(), &webinar_id, &r.label, &from, &r.due_at],
        )
        .await?;
    }
    if !plan.is_empty() {
        tx.execute("SELECT pg_notify($1, $2)", &[&channel, &notify::SCHEDULE])
            .await?;
    }
    Ok(())
}

/// Cancels what is still to come for a webinar: pending and firing reminder
/// rows, pending deliveries and slices.
async fn cancel_pending(
    tx: &Transaction<'_>,
    webinar_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE reminders SET status = 'cancelled', locked_until = NULL
         WHERE webinar_id = $1 AND status IN ('pending', 'firing')",
        &[&webinar_id],
    )
    .await?;
    super::cancel_work(tx, "webinar_id", webinar_id, now).await
}

pub async fn create_webinar(
    tx: &Transaction<'_>,
    channel: &str,
    creator_id: &str,
    f: &WebinarFields,
    plan: &[PlannedReminder],
    now: DateTime<Utc>,
) -> StoreResult<String> {
    let id = new_id();
    tx.execute(
        "INSERT INTO webinars (id, creator_id, title, link, from_time, to_time, timezone,
                               status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $8)",
        &[
            &id,
            &creator_id,
            &f.title,
            &f.link,
            &f.from_time,
            &f.to_time,
            &f.timezone,
            &now,
        ],
    )
    .await?;
    set_mangoes(tx, &id, &f.mango_ids).await?;
    arm(tx, channel, &id, f.from_time, plan).await?;
    Ok(id)
}

pub async fn update_webinar(
    tx: &Transaction<'_>,
    channel: &str,
    id: &str,
    f: &WebinarFields,
    plan: Option<&[PlannedReminder]>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let n = tx
        .execute(
            "UPDATE webinars SET title = $2, link = $3, from_time = $4, to_time = $5,
                                 timezone = $6, updated_at = $7
             WHERE id = $1 AND status = 'scheduled'",
            &[
                &id,
                &f.title,
                &f.link,
                &f.from_time,
                &f.to_time,
                &f.timezone,
                &now,
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Conflict("webinar is not scheduled".into()));
    }
    set_mangoes(tx, id, &f.mango_ids).await?;
    if let Some(plan) = plan {
        cancel_pending(tx, id, now).await?;
        arm(tx, channel, id, f.from_time, plan).await?;
    }
    Ok(())
}

pub async fn end_webinar(
    tx: &Transaction<'_>,
    id: &str,
    deleted: bool,
    now: DateTime<Utc>,
) -> StoreResult<Webinar> {
    let before = get_webinar(tx, id).await?;
    let status = if deleted { "deleted" } else { "cancelled" };
    tx.execute(
        "UPDATE webinars SET status = $2, updated_at = $3 WHERE id = $1",
        &[&id, &status, &now],
    )
    .await?;
    cancel_pending(tx, id, now).await?;
    Ok(Webinar {
        status: status.into(),
        ..before
    })
}

pub async fn list_reminders(
    c: &impl GenericClient,
    webinar_id: &str,
) -> StoreResult<Vec<Reminder>> {
    get_webinar(c, webinar_id).await?;
    let rows = c
        .query(
            "SELECT id, webinar_id, label, from_time, due_at, status, late, fired_at
             FROM reminders WHERE webinar_id = $1 ORDER BY due_at, label",
            &[&webinar_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Reminder {
            id: r.get(0),
            webinar_id: r.get(1),
            label: r.get(2),
            from_time: r.get(3),
            due_at: r.get(4),
            status: r.get(5),
            late: r.get(6),
            fired_at: r.get(7),
        })
        .collect())
}

#[async_trait]
impl Webinars for super::PgStore {
    async fn create_webinar(
        &self,
        creator: &str,
        f: &WebinarFields,
        plan: &[PlannedReminder],
    ) -> StoreResult<Webinar> {
        let id = in_tx!(self, |tx| create_webinar(
            &tx,
            &self.channel,
            creator,
            f,
            plan,
            self.clock.now()
        )
        .await?)?;
        self.get_webinar(&id).await
    }
    async fn get_webinar(&self, id: &str) -> StoreResult<Webinar> {
        get_webinar(&**self.conn().await?, id).await
    }
    async fn list_webinars(&self, creator: &str) -> StoreResult<Vec<Webinar>> {
        list_webinars(&**self.conn().await?, creator).await
    }
    async fn update_webinar(
        &self,
        id: &str,
        f: &WebinarFields,
        plan: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar> {
        in_tx!(self, |tx| update_webinar(
            &tx,
            &self.channel,
            id,
            f,
            plan,
            self.clock.now()
        )
        .await?)?;
        self.get_webinar(id).await
    }
    async fn end_webinar(&self, id: &str, deleted: bool) -> StoreResult<Webinar> {
        in_tx!(self, |tx| end_webinar(&tx, id, deleted, self.clock.now())
            .await?)
    }
    async fn list_reminders(&self, webinar: &str) -> StoreResult<Vec<Reminder>> {
        list_reminders(&**self.conn().await?, webinar).await
    }
    async fn register_participant(
        &self,
        webinar: &str,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)> {
        in_tx!(self, |tx| participants::register_one(
            &tx,
            webinar,
            &person,
            self.clock.now()
        )
        .await?)
    }
    async fn register_participants(
        &self,
        webinar: &str,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary> {
        in_tx!(self, |tx| participants::register(
            &tx,
            webinar,
            &people,
            self.clock.now()
        )
        .await?)
    }
    async fn list_participants(
        &self,
        webinar: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Participant>> {
        participants::list_participants(&**self.conn().await?, webinar, after, limit).await
    }
    async fn unregister_participant(&self, webinar: &str, id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| participants::unregister(
            &tx,
            webinar,
            id,
            self.clock.now()
        )
        .await?)
    }
}
