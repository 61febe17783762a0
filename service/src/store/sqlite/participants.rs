//! SQL for registering a webinar's participants, one or a bulk of up to
//! 200 000 in one transaction: a prepared statement a row, so no more than
//! a row is in memory. Paging and unregistering are the catalog's.

use super::{at, ms};
use crate::domain::status::WebinarStatus;
use crate::store::decode::from_row;
use crate::store::{
    NewParticipant, NewParticipants, Participant, ParticipantId, RegisterSummary, Registrations,
    StoreError, StoreResult, WebinarId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};

const PARTICIPANT_COLS: &str = "id, webinar_id, name, email, phone, timezone, registered_at";

fn participant(r: &Row) -> rusqlite::Result<Participant> {
    Ok(from_row!(get r, Participant {
        id, webinar_id, name, email, phone, timezone;
        registered_at: at(r.get(6)?),
    }))
}

/// Registers everyone in one transaction, in the order given (registration
/// order is fan-out order); the same email again is counted as existing.
/// SQLite has one writer, so nothing here can deadlock, and one prepared
/// statement per row keeps no more than a row in memory.
pub fn register(
    c: &mut Connection,
    webinar_id: &WebinarId,
    people: &NewParticipants,
    now: DateTime<Utc>,
) -> StoreResult<RegisterSummary> {
    let status: String = c.query_row(
        "SELECT status FROM webinars WHERE id = ?1 AND status != 'deleted'",
        [webinar_id],
        |r| r.get(0),
    )?;
    if status != WebinarStatus::Scheduled.as_str() {
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
                ParticipantId::new(),
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
    webinar_id: &WebinarId,
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

#[async_trait]
impl Registrations for super::SqliteStore {
    async fn register_participant(
        &self,
        webinar: &WebinarId,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)> {
        let now = self.clock.now();
        let webinar = webinar.clone();
        self.run(move |c| register_one(c, &webinar, &person, now))
            .await
    }
    async fn register_participants(
        &self,
        webinar: &WebinarId,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary> {
        let now = self.clock.now();
        let webinar = webinar.clone();
        self.run(move |c| register(c, &webinar, &people, now)).await
    }
}
