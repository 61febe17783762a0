//! SQL for a missed reminder's fan-out (a reminder found past its time,
//! with no instance running at its instant): resumable steps, each a range
//! of participants written as `missed` rows per matching subscription, in
//! a transaction. A sending step is `step`'s one statement; both share the
//! reminder's lock, its frozen audience and its cursor.

use crate::domain::ids::webhook_id;
use crate::store::FanoutStep;
use crate::store::InstanceId;
use crate::store::{
    CreatorId, FanoutMode, FanoutProgress, ParticipantId, ReminderId, StoreResult, SubscriptionId,
    WebinarId,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

/// Participants in the first step of a fan-out: small, so the first
/// requests leave within milliseconds of the due instant.
pub(super) const FIRST_STEP: u32 = 64;

/// Freezes who a reminder fired at its due instant is for: everyone
/// registered so far, so that people who register during the fan-out are
/// not half-included. Returns the last registration number it covers.
async fn freeze(
    tx: &Transaction<'_>,
    reminder_id: &ReminderId,
    webinar_id: &WebinarId,
) -> StoreResult<i64> {
    let r = tx
        .query_one(
            &tx.prepare_cached(
                "UPDATE reminders SET until_seq = (SELECT COALESCE(MAX(seq), 0) FROM participants
                 WHERE webinar_id = $2 AND unregistered_at IS NULL)
             WHERE id = $1 RETURNING until_seq",
            )
            .await?,
            &[&reminder_id, &webinar_id],
        )
        .await?;
    Ok(r.get(0))
}

/// The reminder a step works on, as its locked row says.
struct Firing {
    webinar_id: WebinarId,
    label: String,
    from: DateTime<Utc>,
    due: DateTime<Utc>,
    cursor: i64,
    until: Option<i64>,
    creator: CreatorId,
}

/// One step of a fan-out: the reminder, and what to stamp the rows it
/// writes with.
struct Step<'a> {
    reminder_id: &'a ReminderId,
    f: &'a Firing,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// One step of a missed reminder's fan-out.
pub async fn missed_step(tx: &Transaction<'_>, ask: &FanoutStep) -> StoreResult<FanoutProgress> {
    let (reminder_id, mode, batch, now) = (&ask.reminder_id, ask.mode, ask.batch, ask.now);
    let Some(f) = lock_firing(tx, reminder_id, &ask.owner).await? else {
        return Ok(FanoutProgress {
            done: true,
            ..Default::default()
        });
    };
    let late = !matches!(mode, FanoutMode::Send { late: false });
    // A step ahead of the due instant stages the first participants and
    // never finishes the reminder: who is registered "at that moment" is
    // decided by the first step at or after it.
    let staged = now < f.due;
    let until = match f.until {
        Some(u) => u,
        None if staged => i64::MAX,
        None => freeze(tx, reminder_id, &f.webinar_id).await?,
    };
    let subs = matching_subscriptions(tx, &f).await?;
    let people = next_people(tx, &f, until, batch).await?;
    let Some(last) = people.last().map(|p| p.0).filter(|_| !subs.is_empty()) else {
        return finish(tx, reminder_id, mode, late, staged).await;
    };
    let step = Step {
        reminder_id,
        f: &f,
        now,
        expires_at: ask.expires_at,
    };
    let mut progress = FanoutProgress {
        created: write_missed(tx, &step, &subs, &people).await?,
        ..Default::default()
    };
    tx.execute(
        &tx.prepare_cached(
            "UPDATE reminders SET cursor_seq = $2, late = $3, locked_until = $4 WHERE id = $1",
        )
        .await?,
        &[&reminder_id, &last, &late, &ask.lease_until],
    )
    .await?;
    if !staged && (people.len() as u32) < step_size(&f, batch) {
        // Fewer than asked for: no one registered by the instant is left,
        // so this step finishes the reminder (not one more transaction).
        progress.done = finish(tx, reminder_id, mode, late, false).await?.done;
    }
    Ok(progress)
}

/// The reminder row, locked: one step at a time, and only by its holder.
/// `None`: cancelled, rescheduled or taken over meanwhile.
async fn lock_firing(
    tx: &Transaction<'_>,
    reminder_id: &ReminderId,
    owner: &InstanceId,
) -> StoreResult<Option<Firing>> {
    let st = tx
        .prepare_cached(
            "SELECT r.webinar_id, r.label, r.from_time, r.due_at, r.cursor_seq,
                    r.until_seq, w.creator_id
             FROM reminders r JOIN webinars w ON w.id = r.webinar_id
             WHERE r.id = $1 AND r.status = 'firing' AND r.locked_by = $2
             FOR UPDATE OF r",
        )
        .await?;
    let row = tx.query_opt(&st, &[&reminder_id, &owner]).await?;
    Ok(row.map(|f| Firing {
        webinar_id: f.get(0),
        label: f.get(1),
        from: f.get(2),
        due: f.get(3),
        cursor: f.get(4),
        until: f.get(5),
        creator: f.get(6),
    }))
}

/// The active subscriptions a step writes slices for: the webinar's own,
/// then the creator-wide ones, each found by a seek on `subscriptions_scope`
/// (a creator may have thousands), in id order.
async fn matching_subscriptions(
    tx: &Transaction<'_>,
    f: &Firing,
) -> StoreResult<Vec<SubscriptionId>> {
    let st = tx
        .prepare_cached(
            "SELECT id FROM subscriptions
             WHERE creator_id = $1 AND status = 'active' AND webinar_id = $3
             AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || $2)
             AND (mango_id IS NULL OR mango_id IN
             (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = $3))
             UNION ALL
             SELECT id FROM subscriptions
             WHERE creator_id = $1 AND status = 'active' AND webinar_id IS NULL
             AND (event = 'webinar.reminder.all' OR event = 'webinar.reminder.' || $2)
             AND (mango_id IS NULL OR mango_id IN
             (SELECT mango_id FROM webinar_mangoes WHERE webinar_id = $3))
             ORDER BY id",
        )
        .await?;
    let subs = tx
        .query(&st, &[&f.creator, &f.label, &f.webinar_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(subs)
}

/// The step's participants: up to `batch` after the cursor (fewer on the
/// first step, so the first requests go out soon), up to `until`.
async fn next_people(
    tx: &Transaction<'_>,
    f: &Firing,
    until: i64,
    batch: u32,
) -> StoreResult<Vec<(i64, ParticipantId)>> {
    let step = step_size(f, batch);
    let st = tx
        .prepare_cached(
            "SELECT seq, id FROM participants
             WHERE webinar_id = $1 AND seq > $2 AND seq <= $3 AND unregistered_at IS NULL
             ORDER BY seq LIMIT $4",
        )
        .await?;
    let people = tx
        .query(&st, &[&f.webinar_id, &f.cursor, &until, &i64::from(step)])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(people)
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

/// No one left (or no one to send to): the reminder is sent (or missed),
/// unless this step only stages.
async fn finish(
    tx: &Transaction<'_>,
    reminder_id: &ReminderId,
    mode: FanoutMode,
    late: bool,
    staged: bool,
) -> StoreResult<FanoutProgress> {
    let mut progress = FanoutProgress::default();
    if staged {
        return Ok(progress);
    }
    let final_status = mode.final_status().as_str();
    tx.execute(
        &tx.prepare_cached(
            "UPDATE reminders SET status = $2, late = $3, locked_until = NULL WHERE id = $1",
        )
        .await?,
        &[&reminder_id, &final_status, &late],
    )
    .await?;
    progress.done = true;
    Ok(progress)
}

/// A `missed` row per participant and subscription; answers how many.
async fn write_missed(
    tx: &Transaction<'_>,
    s: &Step<'_>,
    subs: &[SubscriptionId],
    people: &[(i64, ParticipantId)],
) -> StoreResult<usize> {
    let (mut ids, mut sub_ids, mut pids) = (Vec::new(), Vec::new(), Vec::new());
    for (seq, pid) in people {
        for sub in subs {
            ids.push(webhook_id(sub.as_str(), *seq, &s.f.label, s.f.from));
            sub_ids.push(sub.as_str());
            pids.push(pid.as_str());
        }
    }
    let n = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO deliveries (id, subscription_id, webinar_id, participant_id,
                reminder_id, label, status, late, due_at, next_attempt_at, expires_at,
                last_error, created_at, updated_at)
             SELECT id, sub, $4, pid, $5, $6, 'missed', true, $7, $8, $9,
                'due while no instance was running; too late to be useful', $8, $8
             FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, sub, pid)
             ON CONFLICT (id) DO NOTHING",
            )
            .await?,
            &[
                &ids,
                &sub_ids,
                &pids,
                &s.f.webinar_id,
                &s.reminder_id,
                &s.f.label,
                &s.f.due,
                &s.now,
                &s.expires_at,
            ],
        )
        .await?;
    Ok(n as usize)
}
