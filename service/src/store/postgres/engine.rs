//! SQL for the scheduler's fan-outs: a claimed reminder (`due`) fanned out
//! in resumable steps, each step a range of participants written as one
//! slice per matching subscription and announced to every instance, so all
//! of them send it.

use super::notify;
use crate::domain::ids::webhook_id;
use crate::store::FanoutStep;
use crate::store::InstanceId;
use crate::store::{
    CreatorId, FanoutMode, FanoutProgress, ParticipantId, ReminderId, StoreResult, SubscriptionId,
    WebinarId,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use std::collections::HashMap;

/// Participants in the first step of a fan-out: small, so the first
/// requests leave within milliseconds of the due instant.
const FIRST_STEP: u32 = 64;

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
    /// Some subscriptions' fan-outs were started early.
    early: bool,
}

/// One step of a fan-out: the reminder, its participants `cursor < seq <=
/// last`, and what to stamp the rows it writes with.
struct Step<'a> {
    reminder_id: &'a ReminderId,
    f: &'a Firing,
    late: bool,
    last: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

pub async fn fanout_batch(
    tx: &Transaction<'_>,
    channel: &str,
    ask: &FanoutStep,
) -> StoreResult<FanoutProgress> {
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
        late,
        last,
        now,
        expires_at: ask.expires_at,
    };
    let mut progress = FanoutProgress::default();
    match mode {
        FanoutMode::Send { .. } => {
            write_slices(tx, channel, &step, &subs).await?;
            progress.created = people.len() * subs.len();
            progress.subscriptions = subs;
        }
        FanoutMode::Missed => progress.created = write_missed(tx, &step, &subs, &people).await?,
    }
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
                    r.until_seq, w.creator_id, r.early
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
        early: f.get(7),
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

/// The participants each subscription's early start covered (its last
/// registration number), for a reminder that had one.
async fn covered(tx: &Transaction<'_>, s: &Step<'_>) -> StoreResult<HashMap<String, i64>> {
    if !s.f.early {
        return Ok(HashMap::new());
    }
    let st = tx
        .prepare_cached(
            "SELECT subscription_id, last_seq FROM early_starts
             WHERE reminder_id = $1 AND due_at = $2",
        )
        .await?;
    let rows = tx.query(&st, &[&s.reminder_id, &s.f.due]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One slice per subscription for the step's participants (a subscription
/// whose fan-out started early gets only those it did not cover); every
/// instance hears of the work, at commit.
async fn write_slices(
    tx: &Transaction<'_>,
    channel: &str,
    s: &Step<'_>,
    subs: &[SubscriptionId],
) -> StoreResult<()> {
    let covered = covered(tx, s).await?;
    let (mut ids, mut afters) = (
        Vec::with_capacity(subs.len()),
        Vec::with_capacity(subs.len()),
    );
    for sub in subs {
        let after = covered
            .get(sub.as_str())
            .map_or(s.f.cursor, |c| s.f.cursor.max(*c));
        if after < s.last {
            ids.push(sub.as_str());
            afters.push(after);
        }
    }
    let st = tx
        .prepare_cached(
            "INSERT INTO slices (reminder_id, subscription_id, webinar_id, label,
                from_time, due_at, expires_at, late, after_seq, last_seq, status, created_at)
             SELECT $1, s, $3, $4, $5, $6, $7, $8, a, $10, 'pending', $11
             FROM unnest($2::text[], $9::bigint[]) WITH ORDINALITY AS u(s, a, n) ORDER BY n",
        )
        .await?;
    tx.execute(
        &st,
        &[
            &s.reminder_id,
            &ids,
            &s.f.webinar_id,
            &s.f.label,
            &s.f.from,
            &s.f.due,
            &s.expires_at,
            &s.late,
            &afters,
            &s.last,
            &s.now,
        ],
    )
    .await?;
    // Every instance hears of the work, at commit.
    for sub in subs {
        notify::send(tx, channel, &notify::work(sub.as_str())).await?;
    }
    Ok(())
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
