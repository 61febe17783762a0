//! SQL for the scheduler: claiming due reminders and fanning them out in
//! resumable steps, each step a range of participants.

use super::{at, ms};
use crate::domain::ids::webhook_id;
use crate::store::decode::from_row;
use crate::store::FanoutStep;
use crate::store::InstanceId;
use crate::store::{
    FanoutMode, FanoutProgress, ParticipantId, ReminderId, StoreResult, SubscriptionId, WebinarId,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::HashMap;

/// Participants in the first step of a fan-out: small, so the first
/// requests leave within milliseconds of the due instant.
const FIRST_STEP: u32 = 64;

/// The reminder row a fan-out step works from.
struct Firing {
    webinar_id: WebinarId,
    label: String,
    from_ms: i64,
    due_ms: i64,
    cursor: i64,
    until: Option<i64>,
    creator: String,
    /// Some subscriptions' fan-outs were started early.
    early: bool,
}

fn firing(
    tx: &Transaction,
    reminder_id: &ReminderId,
    owner: &InstanceId,
) -> StoreResult<Option<Firing>> {
    Ok(tx
        .prepare_cached(
            "SELECT r.webinar_id, r.label, r.from_time, r.due_at, r.cursor_seq, r.until_seq,
                    w.creator_id, r.early
             FROM reminders r JOIN webinars w ON w.id = r.webinar_id
             WHERE r.id = ?1 AND r.status = 'firing' AND r.locked_by = ?2",
        )?
        .query_row(params![reminder_id, owner], |r| {
            Ok(from_row!(get r, Firing {
                webinar_id, label, from_ms, due_ms, cursor, until, creator, early
            }))
        })
        .optional()?)
}

/// The active subscriptions a step writes slices for: the webinar's own,
/// then the creator-wide ones, each found by a seek on `subscriptions_scope`
/// (a creator may have thousands).
fn matching_subscriptions(tx: &Transaction, f: &Firing) -> StoreResult<Vec<SubscriptionId>> {
    let mut st = tx.prepare_cached(
        "SELECT id FROM subscriptions
         WHERE creator_id = ?1 AND status = 'active' AND webinar_id = ?3
         AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || ?2)
         AND (mango_id IS NULL OR mango_id IN
         (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = ?3))
         UNION ALL
         SELECT id FROM subscriptions
         WHERE creator_id = ?1 AND status = 'active' AND webinar_id IS NULL
         AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || ?2)
         AND (mango_id IS NULL OR mango_id IN
         (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = ?3))
         ORDER BY id",
    )?;
    let rows = st.query_map(params![f.creator, f.label, f.webinar_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Freezes who a reminder fired at its due instant is for: everyone
/// registered so far, so that people who register during the fan-out are
/// not half-included. Returns the last registration number it covers.
fn freeze(tx: &Transaction, reminder_id: &ReminderId, webinar_id: &WebinarId) -> StoreResult<i64> {
    let until: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM participants WHERE webinar_id = ?1")?
        .query_row([webinar_id], |r| r.get(0))?;
    tx.prepare_cached("UPDATE reminders SET until_seq = ?2 WHERE id = ?1")?
        .execute(params![reminder_id, until])?;
    Ok(until)
}

/// One step of a fan-out: the reminder, its participants `cursor < seq <=
/// last`, and what to stamp the rows it writes with (epoch milliseconds).
struct Step<'a> {
    reminder_id: &'a ReminderId,
    f: &'a Firing,
    late: bool,
    last: i64,
    now_ms: i64,
    expires_ms: i64,
}

pub fn fanout_batch(c: &mut Connection, ask: &FanoutStep) -> StoreResult<FanoutProgress> {
    let FanoutStep {
        ref reminder_id,
        ref owner,
        mode,
        batch,
        now,
        lease_until,
        expires_at,
    } = *ask;
    let tx = c.transaction()?;
    // Cancelled, rescheduled or taken over meanwhile: nothing more to do.
    let Some(f) = firing(&tx, reminder_id, owner)? else {
        return Ok(FanoutProgress {
            done: true,
            ..Default::default()
        });
    };
    let late = !matches!(mode, FanoutMode::Send { late: false });
    let now_ms = ms(now);
    // A step ahead of the due instant stages the first participants and
    // never finishes the reminder: who is registered "at that moment" is
    // decided by the first step at or after it.
    let staged = now_ms < f.due_ms;
    let until = match f.until {
        Some(u) => u,
        None if staged => i64::MAX,
        None => freeze(&tx, reminder_id, &f.webinar_id)?,
    };
    let subs = matching_subscriptions(&tx, &f)?;
    let people = next_people(&tx, &f, until, batch)?;
    let Some(last) = people.last().map(|p| p.0).filter(|_| !subs.is_empty()) else {
        if staged {
            return Ok(FanoutProgress::default());
        }
        finish(&tx, reminder_id, mode, late)?;
        tx.commit()?;
        return Ok(FanoutProgress {
            done: true,
            ..Default::default()
        });
    };
    let step = Step {
        reminder_id,
        f: &f,
        late,
        last,
        now_ms,
        expires_ms: ms(expires_at),
    };
    let mut progress = FanoutProgress::default();
    match mode {
        FanoutMode::Send { .. } => {
            write_slices(&tx, &step, &subs)?;
            progress.created = people.len() * subs.len();
            progress.subscriptions = subs;
        }
        FanoutMode::Missed => progress.created = write_missed(&tx, &step, &subs, &people)?,
    }
    tx.prepare_cached(
        "UPDATE reminders SET cursor_seq = ?2, late = ?3, locked_until = ?4 WHERE id = ?1",
    )?
    .execute(params![reminder_id, last, late, ms(lease_until)])?;
    if !staged && (people.len() as u32) < step_size(&f, batch) {
        // Fewer than asked for: no one registered by the instant is left,
        // so this step finishes the reminder (not one more transaction).
        finish(&tx, reminder_id, mode, late)?;
        progress.done = true;
    }
    tx.commit()?;
    Ok(progress)
}

/// The step's participants: up to `batch` after the cursor (fewer on the
/// first step, so the first requests go out soon), up to `until`.
fn next_people(
    tx: &Transaction,
    f: &Firing,
    until: i64,
    batch: u32,
) -> StoreResult<Vec<(i64, ParticipantId)>> {
    let step = step_size(f, batch);
    let mut st = tx.prepare_cached(
        "SELECT seq, id FROM participants
         WHERE webinar_id = ?1 AND seq > ?2 AND seq <= ?3 AND unregistered_at IS NULL
         ORDER BY seq LIMIT ?4",
    )?;
    let rows = st.query_map(params![f.webinar_id, f.cursor, until, step], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many participants a step takes: fewer on the first, so the first
/// requests go out soon.
fn step_size(f: &Firing, batch: u32) -> u32 {
    if f.cursor == 0 {
        FIRST_STEP.min(batch)
    } else {
        batch
    }
}

/// No one left (or no one to send to): the reminder is sent (or missed).
fn finish(
    tx: &Transaction,
    reminder_id: &ReminderId,
    mode: FanoutMode,
    late: bool,
) -> StoreResult<()> {
    let final_status = mode.final_status().as_str();
    tx.prepare_cached(
        "UPDATE reminders SET status = ?2, late = ?3, locked_until = NULL WHERE id = ?1",
    )?
    .execute(params![reminder_id, final_status, late])?;
    Ok(())
}

/// The participants each subscription's early start covered (its last
/// registration number), for a reminder that had one.
fn covered(tx: &Transaction, s: &Step) -> StoreResult<HashMap<SubscriptionId, i64>> {
    if !s.f.early {
        return Ok(HashMap::new());
    }
    let mut st = tx.prepare_cached(
        "SELECT subscription_id, last_seq FROM early_starts WHERE reminder_id = ?1 AND due_at = ?2",
    )?;
    let rows = st.query_map(params![s.reminder_id, s.f.due_ms], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One slice per subscription for the step's participants; a subscription
/// whose fan-out started early gets only those it did not cover.
fn write_slices(tx: &Transaction, s: &Step, subs: &[SubscriptionId]) -> StoreResult<()> {
    let covered = covered(tx, s)?;
    let mut st = tx.prepare_cached(
        "INSERT INTO slices (reminder_id, subscription_id, webinar_id, label, from_time,
            due_at, expires_at, late, after_seq, last_seq, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11)",
    )?;
    for sub in subs {
        let after = covered.get(sub).map_or(s.f.cursor, |c| s.f.cursor.max(*c));
        if after >= s.last {
            continue;
        }
        st.execute(params![
            s.reminder_id,
            sub,
            s.f.webinar_id,
            s.f.label,
            s.f.from_ms,
            s.f.due_ms,
            s.expires_ms,
            s.late,
            after,
            s.last,
            s.now_ms
        ])?;
    }
    Ok(())
}

/// A `missed` row per participant and subscription; answers how many.
fn write_missed(
    tx: &Transaction,
    s: &Step,
    subs: &[SubscriptionId],
    people: &[(i64, ParticipantId)],
) -> StoreResult<usize> {
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (id, subscription_id, webinar_id, participant_id,
            reminder_id, label, status, late, due_at, next_attempt_at, expires_at,
            last_error, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'missed', 1, ?7, ?8, ?9,
            'due while no instance was running; too late to be useful', ?8, ?8)",
    )?;
    let from = at(s.f.from_ms);
    let mut created = 0;
    for (seq, pid) in people {
        for sub in subs {
            let id = webhook_id(sub.as_str(), *seq, &s.f.label, from);
            created += st.execute(params![
                id,
                sub,
                s.f.webinar_id,
                pid,
                s.reminder_id,
                s.f.label,
                s.f.due_ms,
                s.now_ms,
                s.expires_ms
            ])?;
        }
    }
    Ok(created)
}
