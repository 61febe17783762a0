//! SQL for the engine: claiming due reminders, fanning them out into
//! deliveries in resumable slices, leasing deliveries to send and recording
//! what became of them.

use super::{at, ms};
use crate::domain::ids::webhook_id;
use crate::domain::payload::{ParticipantFacts, WebinarFacts};
use crate::store::{
    Claimed, DueReminder, FanoutMode, FanoutProgress, Job, Outcome, StoreResult, Verdict,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeSet, HashMap};

pub fn next_reminder_due(c: &Connection) -> StoreResult<Option<DateTime<Utc>>> {
    let v: Option<i64> = c.query_row(
        "SELECT MIN(CASE status WHEN 'pending' THEN due_at ELSE locked_until END)
         FROM reminders WHERE status IN ('pending', 'firing')",
        [],
        |r| r.get(0),
    )?;
    Ok(v.map(at))
}

pub fn claim_due_reminders(
    c: &mut Connection,
    now: DateTime<Utc>,
    owner: &str,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<DueReminder>> {
    let tx = c.transaction()?;
    let now_ms = ms(now);
    let due: Vec<DueReminder> = {
        let mut st = tx.prepare(
            "SELECT id, webinar_id, label, due_at, from_time FROM reminders
             WHERE (status = 'pending' AND due_at <= ?1)
                OR (status = 'firing' AND locked_until <= ?1)
             ORDER BY due_at LIMIT ?2",
        )?;
        let rows = st.query_map(params![now_ms, limit], |r| {
            Ok(DueReminder {
                id: r.get(0)?,
                webinar_id: r.get(1)?,
                label: r.get(2)?,
                due_at: at(r.get(3)?),
                from_time: at(r.get(4)?),
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for r in &due {
        // `until_seq` freezes who is registered "at that moment": people who
        // register during the fan-out are not half-included.
        tx.execute(
            "UPDATE reminders SET status = 'firing', locked_until = ?2, locked_by = ?3,
                    fired_at = COALESCE(fired_at, ?4),
                    until_seq = COALESCE(until_seq,
                        (SELECT COALESCE(MAX(seq), 0) FROM participants WHERE webinar_id = ?5))
             WHERE id = ?1",
            params![r.id, ms(lease_until), owner, now_ms, r.webinar_id],
        )?;
    }
    tx.commit()?;
    Ok(due)
}

pub fn fanout_batch(
    c: &mut Connection,
    reminder_id: &str,
    mode: FanoutMode,
    batch: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<FanoutProgress> {
    let tx = c.transaction()?;
    let row = tx
        .query_row(
            "SELECT r.webinar_id, r.label, r.from_time, r.due_at, r.cursor_seq, r.until_seq,
                    w.creator_id
             FROM reminders r JOIN webinars w ON w.id = r.webinar_id
             WHERE r.id = ?1 AND r.status = 'firing'",
            [reminder_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                    r.get::<_, String>(6)?,
                ))
            },
        )
        .optional()?;
    // Cancelled or rescheduled meanwhile: nothing more to do.
    let Some((webinar_id, label, from_ms, due_ms, cursor, until, creator)) = row else {
        return Ok(FanoutProgress {
            done: true,
            ..Default::default()
        });
    };
    let (late, status) = match mode {
        FanoutMode::Send { late } => (late, "pending"),
        FanoutMode::Missed => (true, "missed"),
    };
    let subs: Vec<String> = {
        let mut st = tx.prepare_cached(
            "SELECT id FROM subscriptions
             WHERE creator_id = ?1 AND status = 'active'
               AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || ?2)
               AND (webinar_id IS NULL OR webinar_id = ?3)
               AND (mango_id IS NULL OR mango_id IN
                    (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = ?3))
             ORDER BY id",
        )?;
        let rows = st.query_map(params![creator, label, webinar_id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let people: Vec<(i64, String)> = {
        let mut st = tx.prepare_cached(
            "SELECT seq, id FROM participants
             WHERE webinar_id = ?1 AND seq > ?2 AND seq <= ?3 AND unregistered_at IS NULL
             ORDER BY seq LIMIT ?4",
        )?;
        let rows = st.query_map(params![webinar_id, cursor, until, batch], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut progress = FanoutProgress::default();
    if people.is_empty() || subs.is_empty() {
        let final_status = if mode == FanoutMode::Missed {
            "missed"
        } else {
            "sent"
        };
        tx.execute(
            "UPDATE reminders SET status = ?2, late = ?3, locked_until = NULL WHERE id = ?1",
            params![reminder_id, final_status, late],
        )?;
        tx.commit()?;
        progress.done = true;
        return Ok(progress);
    }
    let from = at(from_ms);
    let now_ms = ms(now);
    {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO deliveries (id, subscription_id, webinar_id, participant_id,
                reminder_id, label, status, late, due_at, next_attempt_at, expires_at,
                created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10, ?10)",
        )?;
        for (_, pid) in &people {
            for sub in &subs {
                let id = webhook_id(sub, pid, &label, from);
                progress.created += st.execute(params![
                    id,
                    sub,
                    webinar_id,
                    pid,
                    reminder_id,
                    label,
                    status,
                    late,
                    due_ms,
                    now_ms,
                    ms(expires_at)
                ])?;
            }
        }
    }
    let last = people.last().map(|p| p.0).unwrap_or(cursor);
    tx.execute(
        "UPDATE reminders SET cursor_seq = ?2, late = ?3, locked_until = ?4 WHERE id = ?1",
        params![reminder_id, last, late, ms(lease_until)],
    )?;
    tx.commit()?;
    if status == "pending" {
        progress.subscriptions = subs;
    }
    Ok(progress)
}

pub fn subscriptions_with_work(c: &Connection) -> StoreResult<Vec<String>> {
    let mut st = c.prepare(
        "SELECT s.id FROM subscriptions s WHERE s.status = 'active' AND EXISTS
           (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id AND d.status = 'pending')",
    )?;
    let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn next_delivery_due(c: &Connection, sub: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let v: Option<i64> = c.query_row(
        "SELECT MIN(MAX(next_attempt_at, COALESCE(locked_until, 0))) FROM deliveries
         WHERE subscription_id = ?1 AND status = 'pending'",
        [sub],
        |r| r.get(0),
    )?;
    Ok(v.map(at))
}

pub fn claim_deliveries(
    c: &mut Connection,
    sub: &str,
    now: DateTime<Utc>,
    limit: u32,
    owner: &str,
    lease_until: DateTime<Utc>,
) -> StoreResult<Claimed> {
    let tx = c.transaction()?;
    let now_ms = ms(now);
    let jobs: Vec<Job> = {
        let mut st = tx.prepare_cached(
            "SELECT d.id, d.label, d.attempts, d.expires_at, d.payload, d.webinar_id,
                    p.name, p.email, p.phone, p.timezone
             FROM deliveries d LEFT JOIN participants p ON p.id = d.participant_id
             WHERE d.subscription_id = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
               AND d.expires_at > ?2 AND (d.locked_until IS NULL OR d.locked_until <= ?2)
             ORDER BY d.next_attempt_at LIMIT ?3",
        )?;
        let rows = st.query_map(params![sub, now_ms, limit], |r| {
            let name: Option<String> = r.get(6)?;
            let participant = match name {
                Some(name) => Some(ParticipantFacts {
                    name,
                    email: r.get(7)?,
                    phone: r.get(8)?,
                    zone: r.get::<_, Option<String>>(9)?.and_then(|z| z.parse().ok()),
                }),
                None => None,
            };
            Ok(Job {
                id: r.get(0)?,
                subscription_id: sub.to_owned(),
                label: r.get(1)?,
                attempt: r.get::<_, u32>(2)? + 1,
                expires_at: at(r.get(3)?),
                payload: r.get(4)?,
                webinar_id: r.get(5)?,
                participant,
            })
        })?;
        rows.collect::<Result<_, _>>()?
    };
    {
        let mut st = tx.prepare_cached(
            "UPDATE deliveries SET locked_until = ?2, locked_by = ?3 WHERE id = ?1",
        )?;
        for j in &jobs {
            st.execute(params![j.id, ms(lease_until), owner])?;
        }
    }
    let ids: BTreeSet<&str> = jobs
        .iter()
        .filter_map(|j| j.webinar_id.as_deref())
        .collect();
    let mut webinars = HashMap::new();
    for id in ids {
        webinars.insert(id.to_owned(), webinar_facts(&tx, id)?);
    }
    tx.commit()?;
    Ok(Claimed { jobs, webinars })
}

fn webinar_facts(c: &Connection, id: &str) -> StoreResult<WebinarFacts> {
    let mut st = c.prepare_cached(
        "SELECT m.name FROM webinar_mangoes wm JOIN mangoes m ON m.id = wm.mango_id
         WHERE wm.webinar_id = ?1 ORDER BY wm.position",
    )?;
    let mangoes = st
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(c.query_row(
        "SELECT title, link, from_time, to_time, timezone FROM webinars WHERE id = ?1",
        [id],
        |r| {
            Ok(WebinarFacts {
                id: id.to_owned(),
                title: r.get(0)?,
                link: r.get(1)?,
                from_time: at(r.get(2)?),
                to_time: at(r.get(3)?),
                creator_zone: r.get::<_, Option<String>>(4)?.and_then(|z| z.parse().ok()),
                mangoes,
            })
        },
    )?)
}

pub fn record_outcomes(
    c: &mut Connection,
    outcomes: &[Outcome],
    now: DateTime<Utc>,
    disable_before: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let tx = c.transaction()?;
    let now_ms = ms(now);
    let mut disabled = Vec::new();
    {
        let mut attempt = tx.prepare_cached(
            "INSERT OR REPLACE INTO attempts
               (delivery_id, attempt, started_at, status_code, latency_ms, error, response)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        // Subscriptions with a success in this batch: cleared once, below.
        let mut healthy = BTreeSet::new();
        // An acknowledged delivery is recorded whatever happened meanwhile;
        // any other verdict only applies to a delivery still pending.
        let mut update = tx.prepare_cached(
            "UPDATE deliveries SET status = ?2, attempts = MAX(attempts, ?3), next_attempt_at = ?4,
                    last_status = ?5, last_error = ?6, locked_until = NULL, updated_at = ?7,
                    delivered_at = CASE WHEN ?2 = 'delivered' THEN ?7 ELSE delivered_at END
             WHERE id = ?1 AND (status = 'pending' OR ?2 = 'delivered')",
        )?;
        let mut failing = tx.prepare_cached(
            "UPDATE subscriptions SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
        )?;
        for o in outcomes {
            let a = &o.attempt;
            attempt.execute(params![
                o.delivery_id,
                a.attempt,
                ms(a.started_at),
                a.status_code,
                a.latency_ms as i64,
                a.error,
                a.response
            ])?;
            let (status, next) = match &o.verdict {
                Verdict::Delivered => ("delivered", now_ms),
                Verdict::Retry(t) => ("pending", ms(*t)),
                Verdict::Expired => ("expired", now_ms),
                Verdict::Gone => ("failed", now_ms),
            };
            update.execute(params![
                o.delivery_id,
                status,
                a.attempt,
                next,
                a.status_code,
                a.error,
                now_ms
            ])?;
            if o.verdict == Verdict::Delivered {
                healthy.insert(o.subscription_id.as_str());
            } else {
                failing.execute(params![o.subscription_id, now_ms])?;
            }
            if o.verdict == Verdict::Gone {
                let n = tx.execute(
                    "UPDATE subscriptions SET status = 'disabled',
                            disabled_reason = 'receiver answered 410 Gone', updated_at = ?2
                     WHERE id = ?1 AND status = 'active'",
                    params![o.subscription_id, now_ms],
                )?;
                if n > 0 {
                    disabled.push(o.subscription_id.clone());
                }
            }
        }
        for id in healthy {
            tx.execute(
                "UPDATE subscriptions SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
                [id],
            )?;
        }
    }
    let mut st = tx.prepare(
        "UPDATE subscriptions SET status = 'disabled', updated_at = ?2,
                disabled_reason = 'failing without a success for too long'
         WHERE status = 'active' AND failing_since IS NOT NULL AND failing_since < ?1
         RETURNING id",
    )?;
    let stale: Vec<String> = st
        .query_map(params![ms(disable_before), now_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    drop(st);
    disabled.extend(stale);
    tx.commit()?;
    Ok(disabled)
}

pub fn expire_overdue(c: &Connection, now: DateTime<Utc>) -> StoreResult<u64> {
    let now_ms = ms(now);
    let n = c.execute(
        "UPDATE deliveries SET status = 'expired', locked_until = NULL, updated_at = ?1,
                last_error = COALESCE(last_error, 'not delivered before it expired')
         WHERE status = 'pending' AND expires_at <= ?1
           AND (locked_until IS NULL OR locked_until <= ?1)",
        [now_ms],
    )?;
    Ok(n as u64)
}
