//! SQL for a webinar's participants: registering them (one, or a bulk of up
//! to 200 000 in one transaction), paging through them, unregistering.
//!
//! Bulk registrations from several requests and instances overlap on the
//! unique `(webinar, lower(email))` index. Each insert waits for any other
//! transaction holding the same email, so two bulks that wrote their rows
//! in different orders could each hold an email the other waits for: a
//! deadlock (79 of them, and 19 bulks of 20 lost, before this was changed).
//! So a bulk writes its rows in the order of that key, the same order in
//! every transaction, and they only ever wait for each other. Their
//! registration numbers (`seq`, the fan-out order) are still given in the
//! order the platform sent them: they are taken from the column's sequence
//! first and written explicitly. An email already registered consumes a
//! number and stores nothing; the fan-out walks ranges of `seq` and does
//! not mind the gaps.

use super::found;
use crate::domain::ids::new_id;
use crate::domain::status::WebinarStatus;
use crate::store::{
    NewParticipant, NewParticipants, Participant, RegisterSummary, Registrations, StoreError,
    StoreResult, WebinarId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

const PARTICIPANT_COLS: &str = "id, webinar_id, name, email, phone, timezone, registered_at";

/// Rows per `INSERT` of a bulk: its arrays stay a few hundred kilobytes,
/// and 200 000 participants take 40 statements, not 200 000.
const CHUNK: usize = 5_000;

fn participant(r: &Row) -> Participant {
    Participant {
        id: r.get(0),
        webinar_id: r.get(1),
        name: r.get(2),
        email: r.get(3),
        phone: r.get(4),
        timezone: r.get(5),
        registered_at: r.get(6),
    }
}

/// The order rows are written in: by the email as the unique index sees it
/// (case folded), and in the order given among equals, so that of an email
/// sent twice the first is kept. Rust's case folding is PostgreSQL's
/// `lower()` for every ASCII address; should the two differ for some other
/// character, the worst case is a deadlock the server breaks and the
/// transaction is run again.
fn write_order(people: &NewParticipants) -> Vec<usize> {
    let folded = |i: usize| people.get(i).email.chars().flat_map(char::to_lowercase);
    let mut order: Vec<usize> = (0..people.len()).collect();
    order.sort_by(|&a, &b| folded(a).cmp(folded(b)));
    order
}

/// Registers everyone in one transaction: the numbers in the order given,
/// the rows in [`write_order`], a chunk at a time.
pub async fn register(
    tx: &deadpool_postgres::Transaction<'_>,
    webinar_id: &WebinarId,
    people: &NewParticipants,
    now: DateTime<Utc>,
) -> StoreResult<RegisterSummary> {
    // Locks the webinar: a cancellation cannot slip in between.
    let status: Option<String> = tx
        .query_opt(
            "SELECT status FROM webinars WHERE id = $1 AND status != 'deleted' FOR SHARE",
            &[&webinar_id],
        )
        .await?
        .map(|r| r.get(0));
    if found(status)? != WebinarStatus::Scheduled.as_str() {
        return Err(StoreError::Conflict("webinar is cancelled".into()));
    }
    let mut seqs: Vec<i64> = tx
        .query_one(
            "SELECT array_agg(nextval(pg_get_serial_sequence('participants', 'seq')))
             FROM generate_series(1, $1::int)",
            &[&(people.len() as i32)],
        )
        .await?
        .get::<_, Option<Vec<i64>>>(0)
        .unwrap_or_default();
    seqs.sort_unstable();
    let insert = tx
        .prepare_cached(
            "INSERT INTO participants
               (seq, id, webinar_id, name, email, phone, timezone, registered_at)
             OVERRIDING SYSTEM VALUE
             SELECT seq, id, $1, name, email, phone, tz, $8
             FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                  WITH ORDINALITY AS u(seq, id, name, email, phone, tz, n)
             ORDER BY n
             ON CONFLICT (webinar_id, lower(email)) WHERE unregistered_at IS NULL DO NOTHING",
        )
        .await?;
    let mut created = 0;
    for chunk in write_order(people).chunks(CHUNK) {
        let mut numbers = Vec::with_capacity(chunk.len());
        let mut ids = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        let mut emails = Vec::with_capacity(chunk.len());
        let mut phones = Vec::with_capacity(chunk.len());
        let mut zones = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let p = people.get(i);
            numbers.push(seqs[i]);
            ids.push(new_id());
            names.push(p.name);
            emails.push(p.email);
            phones.push(p.phone);
            zones.push(p.timezone);
        }
        created += tx
            .execute(
                &insert,
                &[
                    &webinar_id,
                    &numbers,
                    &ids,
                    &names,
                    &emails,
                    &phones,
                    &zones,
                    &now,
                ],
            )
            .await? as usize;
    }
    Ok(RegisterSummary {
        created,
        existing: people.len() - created,
    })
}

/// Registers one participant: its record (the registration already there
/// for an email seen before) and whether it is new.
pub async fn register_one(
    tx: &deadpool_postgres::Transaction<'_>,
    webinar_id: &WebinarId,
    person: &NewParticipant,
    now: DateTime<Utc>,
) -> StoreResult<(Participant, bool)> {
    let summary = register(tx, webinar_id, &vec![person.clone()].into(), now).await?;
    let r = tx
        .query_one(
            &format!(
                "SELECT {PARTICIPANT_COLS} FROM participants
                 WHERE webinar_id = $1 AND lower(email) = lower($2) AND unregistered_at IS NULL"
            ),
            &[&webinar_id, &person.email],
        )
        .await?;
    Ok((participant(&r), summary.created == 1))
}

#[async_trait]
impl Registrations for super::PgStore {
    async fn register_participant(
        &self,
        webinar: &WebinarId,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)> {
        in_tx!(self, |tx| register_one(
            &tx,
            webinar,
            &person,
            self.clock.now()
        )
        .await?)
    }
    async fn register_participants(
        &self,
        webinar: &WebinarId,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary> {
        in_tx!(self, |tx| register(&tx, webinar, &people, self.clock.now())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PackedParticipant;

    fn people(emails: &[&str]) -> NewParticipants {
        emails
            .iter()
            .map(|e| PackedParticipant::new("N", e, "", None))
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn rows_are_written_by_folded_email_first_sent_first() {
        let p = people(&["b@x", "A@x", "c@x", "a@x", "B@X"]);
        assert_eq!(write_order(&p), [1, 3, 0, 4, 2]);
    }
}
