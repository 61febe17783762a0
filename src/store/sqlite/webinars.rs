//! SQL for webinars, their reminder rows and their participants.

use super::{at, at_opt, ms, touched};
use super::{own, own_opt};
use crate::domain::ids::new_id;
use crate::store::*;
use crate::store::{
    NewParticipant, NewParticipants, Participant, PlannedReminder, RegisterSummary, Reminder,
    StoreError, StoreResult, Webinar, WebinarFields,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row, Transaction};

const WEBINAR_COLS: &str =
    "id, creator_id, title, link, from_time, to_time, timezone, status, created_at, updated_at";

fn webinar(c: &Connection, r: &Row) -> rusqlite::Result<Webinar> {
    let id: String = r.get(0)?;
    let mut st = c.prepare_cached(
        "SELECT mango_id FROM webinar_mangoes WHERE webinar_id = ?1 ORDER BY position",
    )?;
    let mangoes = st
        .query_map([&id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Webinar {
        id,
        creator_id: r.get(1)?,
        title: r.get(2)?,
        link: r.get(3)?,
        from_time: at(r.get(4)?),
        to_time: at(r.get(5)?),
        timezone: r.get(6)?,
        status: r.get(7)?,
        created_at: at(r.get(8)?),
        updated_at: at(r.get(9)?),
        mangoes,
    })
}

pub fn get_webinar(c: &Connection, id: &str) -> StoreResult<Webinar> {
    Ok(c.query_row(
        &format!("SELECT {WEBINAR_COLS} FROM webinars WHERE id = ?1 AND status != 'deleted'"),
        [id],
        |r| webinar(c, r),
    )?)
}

pub fn list_webinars(c: &Connection, creator_id: &str) -> StoreResult<Vec<Webinar>> {
    let mut st = c.prepare(&format!(
        "SELECT {WEBINAR_COLS} FROM webinars
         WHERE creator_id = ?1 AND status != 'deleted' ORDER BY from_time, id"
    ))?;
    let rows = st
        .query_map([creator_id], |r| webinar(c, r))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn set_mangoes(tx: &Transaction, id: &str, mango_ids: &[String]) -> StoreResult<()> {
    tx.execute("DELETE FROM webinar_mangoes WHERE webinar_id = ?1", [id])?;
    for (pos, m) in mango_ids.iter().enumerate() {
        tx.execute(
            "INSERT OR IGNORE INTO webinar_mangoes (webinar_id, mango_id, position) VALUES (?1, ?2, ?3)",
            params![id, m, pos as i64],
        )?;
    }
    Ok(())
}

/// Arms reminders; one cancelled earlier for the same start comes back, one
/// already sent for the same start is not sent again.
fn arm(tx: &Transaction, webinar_id: &str, from: i64, plan: &[PlannedReminder]) -> StoreResult<()> {
    for r in plan {
        tx.execute(
            "INSERT INTO reminders (id, webinar_id, label, from_time, due_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending')
             ON CONFLICT (webinar_id, label, from_time) DO UPDATE
               SET status = 'pending', due_at = excluded.due_at, cursor_seq = 0,
                   until_seq = NULL, fired_at = NULL, locked_until = NULL, late = 0
               WHERE reminders.status = 'cancelled'",
            params![new_id(), webinar_id, r.label, from, ms(r.due_at)],
        )?;
    }
    Ok(())
}

/// Cancels what is still to come for a webinar: pending and firing reminder
/// rows, pending deliveries and slices.
fn cancel_pending(tx: &Transaction, webinar_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let now = ms(now);
    tx.execute(
        "UPDATE reminders SET status = 'cancelled', locked_until = NULL
         WHERE webinar_id = ?1 AND status IN ('pending', 'firing')",
        [webinar_id],
    )?;
    super::cancel_work(tx, "webinar_id", webinar_id, now)
}

pub fn create_webinar(
    c: &mut Connection,
    creator_id: &str,
    f: &WebinarFields,
    plan: &[PlannedReminder],
    now: DateTime<Utc>,
) -> StoreResult<Webinar> {
    let tx = c.transaction()?;
    let id = new_id();
    let now = ms(now);
    tx.execute(
        "INSERT INTO webinars (id, creator_id, title, link, from_time, to_time, timezone,
                               status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'scheduled', ?8, ?8)",
        params![
            id,
            creator_id,
            f.title,
            f.link,
            ms(f.from_time),
            ms(f.to_time),
            f.timezone,
            now
        ],
    )?;
    set_mangoes(&tx, &id, &f.mango_ids)?;
    arm(&tx, &id, ms(f.from_time), plan)?;
    tx.commit()?;
    get_webinar(c, &id)
}

pub fn update_webinar(
    c: &mut Connection,
    id: &str,
    f: &WebinarFields,
    plan: Option<&[PlannedReminder]>,
    now: DateTime<Utc>,
) -> StoreResult<Webinar> {
    let tx = c.transaction()?;
    let n = tx.execute(
        "UPDATE webinars SET title = ?2, link = ?3, from_time = ?4, to_time = ?5,
                             timezone = ?6, updated_at = ?7
         WHERE id = ?1 AND status = 'scheduled'",
        params![
            id,
            f.title,
            f.link,
            ms(f.from_time),
            ms(f.to_time),
            f.timezone,
            ms(now)
        ],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict("webinar is not scheduled".into()));
    }
    set_mangoes(&tx, id, &f.mango_ids)?;
    if let Some(plan) = plan {
        cancel_pending(&tx, id, now)?;
        arm(&tx, id, ms(f.from_time), plan)?;
    }
    tx.commit()?;
    get_webinar(c, id)
}

pub fn end_webinar(
    c: &mut Connection,
    id: &str,
    deleted: bool,
    now: DateTime<Utc>,
) -> StoreResult<Webinar> {
    let before = get_webinar(c, id)?;
    let tx = c.transaction()?;
    let status = if deleted { "deleted" } else { "cancelled" };
    tx.execute(
        "UPDATE webinars SET status = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, status, ms(now)],
    )?;
    cancel_pending(&tx, id, now)?;
    tx.commit()?;
    Ok(Webinar {
        status: status.into(),
        ..before
    })
}

pub fn list_reminders(c: &Connection, webinar_id: &str) -> StoreResult<Vec<Reminder>> {
    get_webinar(c, webinar_id)?;
    let mut st = c.prepare(
        "SELECT id, webinar_id, label, from_time, due_at, status, late, fired_at
         FROM reminders WHERE webinar_id = ?1 ORDER BY due_at, label",
    )?;
    let rows = st
        .query_map([webinar_id], |r| {
            Ok(Reminder {
                id: r.get(0)?,
                webinar_id: r.get(1)?,
                label: r.get(2)?,
                from_time: at(r.get(3)?),
                due_at: at(r.get(4)?),
                status: r.get(5)?,
                late: r.get(6)?,
                fired_at: at_opt(r.get(7)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

const PARTICIPANT_COLS: &str = "id, webinar_id, name, email, phone, timezone, registered_at";

fn participant(r: &Row) -> rusqlite::Result<Participant> {
    Ok(Participant {
        id: r.get(0)?,
        webinar_id: r.get(1)?,
        name: r.get(2)?,
        email: r.get(3)?,
        phone: r.get(4)?,
        timezone: r.get(5)?,
        registered_at: at(r.get(6)?),
    })
}

/// Registers everyone in one transaction, in the order given (registration
/// order is fan-out order); the same email again is counted as existing.
/// SQLite has one writer, so nothing here can deadlock, and one prepared
/// statement per row keeps no more than a row in memory.
pub fn register(
    c: &mut Connection,
    webinar_id: &str,
    people: &NewParticipants,
    now: DateTime<Utc>,
) -> StoreResult<RegisterSummary> {
    let w = get_webinar(c, webinar_id)?;
    if w.status != "scheduled" {
        return Err(StoreError::Conflict("webinar is cancelled".into()));
    }
    let tx = c.transaction()?;
    let mut summary = RegisterSummary::default();
    {
        let now = ms(now);
        let mut st = tx.prepare(
            "INSERT OR IGNORE INTO participants
               (id, webinar_id, name, email, phone, timezone, registered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for p in people.iter() {
            let n = st.execute(params![
                new_id(),
                webinar_id,
                p.name,
                p.email,
                p.phone,
                p.timezone,
                now
            ])?;
            if n == 1 {
                summary.created += 1;
            } else {
                summary.existing += 1;
            }
        }
    }
    tx.commit()?;
    Ok(summary)
}

/// Registers one participant: its record (the registration already there
/// for an email seen before) and whether it is new.
pub fn register_one(
    c: &mut Connection,
    webinar_id: &str,
    person: &NewParticipant,
    now: DateTime<Utc>,
) -> StoreResult<(Participant, bool)> {
    let summary = register(c, webinar_id, &vec![person.clone()].into(), now)?;
    let record = c.query_row(
        &format!(
            "SELECT {PARTICIPANT_COLS} FROM participants
             WHERE webinar_id = ?1 AND email = ?2 AND unregistered_at IS NULL"
        ),
        params![webinar_id, person.email],
        participant,
    )?;
    Ok((record, summary.created == 1))
}

pub fn list_participants(
    c: &Connection,
    webinar_id: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<Participant>> {
    get_webinar(c, webinar_id)?;
    let mut st = c.prepare(&format!(
        "SELECT {PARTICIPANT_COLS} FROM participants
         WHERE webinar_id = ?1 AND unregistered_at IS NULL
           AND seq > COALESCE((SELECT seq FROM participants WHERE id = ?2), 0)
         ORDER BY seq LIMIT ?3"
    ))?;
    let rows = st
        .query_map(params![webinar_id, after, limit], participant)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn unregister(
    c: &mut Connection,
    webinar_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let tx = c.transaction()?;
    let now = ms(now);
    touched(tx.execute(
        "UPDATE participants SET unregistered_at = ?3
         WHERE id = ?1 AND webinar_id = ?2 AND unregistered_at IS NULL",
        params![id, webinar_id, now],
    )?)?;
    tx.execute(
        "UPDATE deliveries SET status = 'cancelled', updated_at = ?2
         WHERE participant_id = ?1 AND status = 'pending'",
        params![id, now],
    )?;
    tx.commit()?;
    Ok(())
}

#[async_trait]
impl Webinars for super::SqliteStore {
    async fn create_webinar(
        &self,
        creator: &str,
        f: &WebinarFields,
        plan: &[PlannedReminder],
    ) -> StoreResult<Webinar> {
        let now = self.clock.now();
        let (creator, f, plan) = (own(creator), f.clone(), plan.to_vec());
        self.run(move |c| create_webinar(c, &creator, &f, &plan, now))
            .await
    }
    async fn get_webinar(&self, id: &str) -> StoreResult<Webinar> {
        let id = own(id);
        self.run(move |c| get_webinar(c, &id)).await
    }
    async fn list_webinars(&self, creator: &str) -> StoreResult<Vec<Webinar>> {
        let creator = own(creator);
        self.run(move |c| list_webinars(c, &creator)).await
    }
    async fn update_webinar(
        &self,
        id: &str,
        f: &WebinarFields,
        plan: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar> {
        let now = self.clock.now();
        let (id, f, plan) = (own(id), f.clone(), plan.map(<[_]>::to_vec));
        self.run(move |c| update_webinar(c, &id, &f, plan.as_deref(), now))
            .await
    }
    async fn end_webinar(&self, id: &str, deleted: bool) -> StoreResult<Webinar> {
        let now = self.clock.now();
        let id = own(id);
        self.run(move |c| end_webinar(c, &id, deleted, now)).await
    }
    async fn list_reminders(&self, webinar: &str) -> StoreResult<Vec<Reminder>> {
        let webinar = own(webinar);
        self.run(move |c| list_reminders(c, &webinar)).await
    }
    async fn register_participant(
        &self,
        webinar: &str,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)> {
        let now = self.clock.now();
        let webinar = own(webinar);
        self.run(move |c| register_one(c, &webinar, &person, now))
            .await
    }
    async fn register_participants(
        &self,
        webinar: &str,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary> {
        let now = self.clock.now();
        let webinar = own(webinar);
        self.run(move |c| register(c, &webinar, &people, now)).await
    }
    async fn list_participants(
        &self,
        webinar: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Participant>> {
        let (webinar, after) = (own(webinar), own_opt(after));
        self.run(move |c| list_participants(c, &webinar, after.as_deref(), limit))
            .await
    }
    async fn unregister_participant(&self, webinar: &str, id: &str) -> StoreResult<()> {
        let now = self.clock.now();
        let (webinar, id) = (own(webinar), own(id));
        self.run(move |c| unregister(c, &webinar, &id, now)).await
    }
}
