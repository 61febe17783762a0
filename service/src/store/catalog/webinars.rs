//! Webinars, their reminder rows, and paging through and unregistering
//! their participants: one statement text and one row mapper each, for
//! both backends (see [`crate::store::sql`]). Registering is per backend
//! ([`super::Registrations`]): the bulk insert is where the dialects differ.

use super::{cancel_work, Webinars};
use crate::domain::status::WebinarStatus;
use crate::store::decode::from_row;
use crate::store::page::key_cursor;
use crate::store::sql::{params, touched, Backend, Db, Row, Tx, Value};
use crate::store::Change;
use crate::store::{
    CreatorId, MangoId, PageRequest, Paged, Participant, ParticipantId, PlannedReminder, Reminder,
    ReminderId, StoreError, StoreResult, Webinar, WebinarFields, WebinarId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const WEBINAR_COLS: &str =
    "id, creator_id, title, link, from_time, to_time, timezone, status, created_at, updated_at";

const PARTICIPANT_COLS: &str = "id, webinar_id, name, email, phone, timezone, registered_at";

/// A webinar row; its mangoes are read apart, in their order.
fn webinar(r: &Row, mangoes: Vec<MangoId>) -> StoreResult<Webinar> {
    Ok(from_row!(r, Webinar {
        id, creator_id, title, link, from_time, to_time, timezone, status, created_at, updated_at;
        mangoes: mangoes,
    }))
}

fn reminder(r: &Row) -> StoreResult<Reminder> {
    Ok(from_row!(
        r,
        Reminder {
            id,
            webinar_id,
            label,
            from_time,
            due_at,
            status,
            late,
            fired_at
        }
    ))
}

/// A participant row, as [`PARTICIPANT_COLS`] lists it.
pub(crate) fn participant(r: &Row) -> StoreResult<Participant> {
    Ok(from_row!(
        r,
        Participant {
            id,
            webinar_id,
            name,
            email,
            phone,
            timezone,
            registered_at
        }
    ))
}

/// The first `limit` webinars `filter` selects (with parameters `p`) by
/// start time, then id, each with its mangoes: two statements, however many
/// webinars.
async fn webinars(
    db: &(impl Db + ?Sized),
    filter: &str,
    p: &[Value],
    limit: i64,
) -> StoreResult<Vec<Webinar>> {
    let chosen = format!(
        "SELECT {WEBINAR_COLS} FROM webinars WHERE {filter} ORDER BY from_time, id LIMIT {limit}"
    );
    let rows = db.query(&chosen, p).await?;
    let ids =
        format!("SELECT id FROM webinars WHERE {filter} ORDER BY from_time, id LIMIT {limit}");
    let sql = format!(
        "SELECT webinar_id, mango_id FROM webinar_mangoes
         WHERE webinar_id IN ({ids}) ORDER BY webinar_id, position"
    );
    let mut mangoes: HashMap<String, Vec<MangoId>> = HashMap::new();
    for m in db.query(&sql, p).await? {
        mangoes.entry(m.text(0)?).or_default().push(m.id(1)?);
    }
    rows.iter()
        .map(|r| webinar(r, mangoes.remove(&r.text(0)?).unwrap_or_default()))
        .collect()
}

async fn get(db: &(impl Db + ?Sized), id: &WebinarId) -> StoreResult<Webinar> {
    let mut found = webinars(db, "id = $1 AND status != 'deleted'", params![id], 1).await?;
    found.pop().ok_or(StoreError::NotFound)
}

async fn set_mangoes(tx: &dyn Tx, id: &WebinarId, mango_ids: &[MangoId]) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM webinar_mangoes WHERE webinar_id = $1",
        params![id],
    )
    .await?;
    for (pos, m) in mango_ids.iter().enumerate() {
        let sql = "INSERT INTO webinar_mangoes (webinar_id, mango_id, position)
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        tx.execute(sql, params![id, m, pos as i64]).await?;
    }
    Ok(())
}

/// Arms reminders; one cancelled earlier for the same start comes back, one
/// already sent for the same start is not sent again. Other instances hear
/// of it, so their timers see the new due time.
async fn arm(
    tx: &dyn Tx,
    webinar_id: &WebinarId,
    from: DateTime<Utc>,
    plan: &[PlannedReminder],
) -> StoreResult<()> {
    for r in plan {
        let sql = "INSERT INTO reminders (id, webinar_id, label, from_time, due_at, status)
                   VALUES ($1, $2, $3, $4, $5, 'pending')
                   ON CONFLICT (webinar_id, label, from_time) DO UPDATE
                     SET status = 'pending', due_at = excluded.due_at, cursor_seq = 0,
                         until_seq = NULL, fired_at = NULL, locked_until = NULL, late = $6,
                         early = $6
                     WHERE reminders.status = 'cancelled'";
        let p = params![
            &ReminderId::new(),
            webinar_id,
            &r.label,
            from,
            r.due_at,
            false
        ];
        tx.execute(sql, p).await?;
    }
    if !plan.is_empty() {
        // A reminder armed again starts from nothing: no early start of
        // its earlier life is left to skip participants.
        let sql = "DELETE FROM early_starts WHERE reminder_id IN
                     (SELECT id FROM reminders WHERE webinar_id = $1 AND early = $2)";
        tx.execute(sql, params![webinar_id, false]).await?;
        tx.announce(&Change::Schedule).await?;
    }
    Ok(())
}

/// Cancels what is still to come for a webinar: pending and firing reminder
/// rows, pending deliveries and slices.
async fn cancel_pending(
    tx: &dyn Tx,
    webinar_id: &WebinarId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let sql = "UPDATE reminders SET status = 'cancelled', locked_until = NULL
               WHERE webinar_id = $1 AND status IN ('pending', 'firing')";
    tx.execute(sql, params![webinar_id]).await?;
    cancel_work(tx, "webinar_id", webinar_id, now).await
}

/// The parameters that write a webinar: `key` (its id, and on insert its
/// creator), then its fields in column order (title, link, from, to,
/// timezone) and `now`, the insert and the update binding them alike.
fn bind_fields(key: &[Value], f: &WebinarFields, now: DateTime<Utc>) -> Vec<Value> {
    let mut p = key.to_vec();
    p.extend([
        Value::from(&f.title),
        Value::from(&f.link),
        Value::from(f.from_time),
        Value::from(f.to_time),
        Value::from(&f.timezone),
        Value::from(now),
    ]);
    p
}

/// Writes a webinar's fields; says whether it was still scheduled.
async fn write_fields(
    tx: &dyn Tx,
    id: &WebinarId,
    f: &WebinarFields,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let sql = "UPDATE webinars SET title = $2, link = $3, from_time = $4, to_time = $5,
                                   timezone = $6, updated_at = $7
               WHERE id = $1 AND status = 'scheduled'";
    if tx.execute(sql, &bind_fields(params![id], f, now)).await? == 0 {
        return Err(StoreError::Conflict("webinar is not scheduled".into()));
    }
    set_mangoes(tx, id, &f.mango_ids).await
}

#[async_trait]
impl<B: Backend> Webinars for B {
    async fn create_webinar(
        &self,
        creator_id: &CreatorId,
        f: &WebinarFields,
        plan: &[PlannedReminder],
    ) -> StoreResult<Webinar> {
        let now = self.now();
        let id = &WebinarId::new();
        self.transact(|tx| async move {
            let sql = "INSERT INTO webinars (id, creator_id, title, link, from_time, to_time,
                                             timezone, status, created_at, updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $8)";
            let p = bind_fields(params![id, creator_id], f, now);
            tx.execute(sql, &p).await?;
            set_mangoes(&*tx, id, &f.mango_ids).await?;
            arm(&*tx, id, f.from_time, plan).await?;
            tx.commit().await
        })
        .await?;
        get(self, id).await
    }

    async fn get_webinar(&self, id: &WebinarId) -> StoreResult<Webinar> {
        get(self, id).await
    }

    async fn list_webinars(
        &self,
        creator_id: &CreatorId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Webinar>> {
        let mine = "creator_id = $1 AND status != 'deleted'";
        let rows = match page.after_key()? {
            None => webinars(self, mine, params![creator_id], page.fetch()).await?,
            Some(k) => {
                let filter = format!("{mine} AND (from_time > $2 OR (from_time = $2 AND id > $3))");
                let p = params![creator_id, k.at, k.id];
                webinars(self, &filter, p, page.fetch()).await?
            }
        };
        Ok(Paged::of(rows, page, |w: &Webinar| {
            key_cursor(w.from_time, "", w.id.as_str())
        }))
    }

    async fn update_webinar(
        &self,
        id: &WebinarId,
        f: &WebinarFields,
        plan: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar> {
        let now = self.now();
        self.transact(|tx| async move {
            write_fields(&*tx, id, f, now).await?;
            if let Some(plan) = plan {
                cancel_pending(&*tx, id, now).await?;
                arm(&*tx, id, f.from_time, plan).await?;
            }
            tx.commit().await
        })
        .await?;
        get(self, id).await
    }

    async fn end_webinar(&self, id: &WebinarId, deleted: bool) -> StoreResult<Webinar> {
        let now = self.now();
        let status = if deleted {
            WebinarStatus::Deleted
        } else {
            WebinarStatus::Cancelled
        };
        self.transact(|tx| async move {
            let before = get(&*tx, id).await?;
            let sql = "UPDATE webinars SET status = $2, updated_at = $3 WHERE id = $1";
            tx.execute(sql, params![id, status, now]).await?;
            cancel_pending(&*tx, id, now).await?;
            tx.commit().await?;
            Ok(Webinar { status, ..before })
        })
        .await
    }

    async fn list_reminders(
        &self,
        webinar_id: &WebinarId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Reminder>> {
        get(self, webinar_id).await?;
        let (after, p) = match page.after_key()? {
            None => ("", params![webinar_id, page.fetch()].to_vec()),
            Some(k) => (
                "AND (due_at > $3 OR (due_at = $3 AND (label > $4 OR (label = $4 AND id > $5))))",
                params![webinar_id, page.fetch(), k.at, k.text, k.id].to_vec(),
            ),
        };
        let sql = format!(
            "SELECT id, webinar_id, label, from_time, due_at, status, late, fired_at
             FROM reminders WHERE webinar_id = $1 {after}
             ORDER BY due_at, label, id LIMIT $2"
        );
        let rows = self.query(&sql, &p).await?;
        let rows = rows.iter().map(reminder).collect::<StoreResult<_>>()?;
        Ok(Paged::of(rows, page, |r: &Reminder| {
            key_cursor(r.due_at, &r.label, r.id.as_str())
        }))
    }

    async fn pending_labels(&self, creator_id: &CreatorId) -> StoreResult<Vec<String>> {
        let sql = "SELECT DISTINCT r.label FROM reminders r
                   JOIN webinars w ON w.id = r.webinar_id
                   WHERE w.creator_id = $1 AND r.status = 'pending'
                   ORDER BY r.label";
        let rows = self.query(sql, params![creator_id]).await?;
        rows.iter().map(|r| r.text(0)).collect()
    }

    async fn list_participants(
        &self,
        webinar_id: &WebinarId,
        page: &PageRequest,
    ) -> StoreResult<Paged<Participant>> {
        get(self, webinar_id).await?;
        let sql = format!(
            "SELECT {PARTICIPANT_COLS} FROM participants
             WHERE webinar_id = $1 AND unregistered_at IS NULL
               AND seq > COALESCE((SELECT seq FROM participants WHERE id = $2), 0)
             ORDER BY seq LIMIT $3"
        );
        let p = params![webinar_id, page.after_id()?, page.fetch()];
        let rows = self.query(&sql, p).await?;
        let rows = rows.iter().map(participant).collect::<StoreResult<_>>()?;
        Ok(Paged::of(rows, page, |p: &Participant| p.id.to_string()))
    }

    async fn unregister_participant(
        &self,
        webinar_id: &WebinarId,
        id: &ParticipantId,
    ) -> StoreResult<()> {
        let now = self.now();
        self.transact(|tx| async move {
            let sql = "UPDATE participants SET unregistered_at = $3
                       WHERE id = $1 AND webinar_id = $2 AND unregistered_at IS NULL";
            touched(tx.execute(sql, params![id, webinar_id, now]).await?)?;
            let sql = "UPDATE deliveries SET status = 'cancelled', updated_at = $2
                       WHERE participant_id = $1 AND status = 'pending'";
            tx.execute(sql, params![id, now]).await?;
            tx.commit().await
        })
        .await
    }
}
