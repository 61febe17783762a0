//! What one POST carries and how it is made: a single delivery, or for a
//! subscription that asked for batches, up to K fresh deliveries as one JSON
//! array under a webhook-id of its own. Renders, signs, sends, decides and
//! hands the result to the recorder.

use super::limit::Signal;
use super::send::{Conn, Message};
use super::{Dispatcher, Record};
use crate::domain::ids::{self, Id};
use crate::domain::payload;
use crate::signing::{signature_header, Signer};
use crate::store::SliceId;
use crate::store::{Attempt, Fresh, Job, Member, Outcome, Verdict, WebinarId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Where and how a lane's POSTs go, as of its last look at the
/// subscription.
pub struct Target {
    pub url: url::Url,
    pub signers: Signers,
    pub event: String,
}

/// The secrets that sign a lane's POSTs: the current one, and after a
/// rotation the previous one with the end of its grace. The end is compared
/// at each attempt, not when the view was made: a view lives until its next
/// refresh, and the old secret must stop signing on time all the same.
pub struct Signers {
    pub current: Signer,
    pub previous: Option<(Signer, DateTime<Utc>)>,
}

impl Signers {
    /// The `webhook-signature` header of one message signed at `now`.
    pub fn header(&self, id: &str, timestamp: i64, body: &[u8], now: DateTime<Utc>) -> String {
        match &self.previous {
            Some((old, until)) if *until > now => {
                signature_header(&[&self.current, old], id, timestamp, body)
            }
            _ => signature_header(&[&self.current], id, timestamp, body),
        }
    }
}

/// One POST to make.
pub struct Unit {
    pub job: Job,
    pub body: bytes::Bytes,
    /// The slice of each delivery carried (one entry per delivery).
    pub slices: Vec<SliceId>,
    /// For a batch: its members, `(webhook-id, row)`.
    pub batch: Option<Vec<Member>>,
}

impl Unit {
    /// A single delivery.
    pub fn single(job: Job, body: bytes::Bytes) -> Unit {
        let slices = job.fresh.iter().map(|f| f.slice).collect();
        Unit {
            job,
            body,
            slices,
            batch: None,
        }
    }

    /// A batch: `[payload, payload, …]`, its webhook-id hashed from its
    /// members' ids. It is recorded (and retried) as one delivery with a
    /// fixed body; each member is recorded as carried by it.
    pub fn batch(members: Vec<(Job, bytes::Bytes)>) -> Unit {
        let mut body = Vec::with_capacity(members.iter().map(|m| m.1.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, (_, b)) in members.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(b);
        }
        body.push(b']');
        let first = &members[0].0;
        let job = Job {
            id: ids::batch_webhook_id(members.iter().map(|m| &m.0.id)),
            subscription_id: first.subscription_id.clone(),
            label: first.label.clone(),
            attempt: 1,
            expires_at: first.expires_at,
            payload: None,
            webinar_id: first.webinar_id.clone(),
            participant: None,
            fresh: first.fresh.clone().map(|f| Fresh {
                participant_id: Id::trusted(String::new()),
                ..f
            }),
        };
        let slices = members
            .iter()
            .filter_map(|m| m.0.fresh.as_ref().map(|f| f.slice))
            .collect();
        let batch = members
            .into_iter()
            .filter_map(|(j, _)| Some((j.id, j.fresh?)))
            .collect();
        Unit {
            job,
            body: body.into(),
            slices,
            batch: Some(batch),
        }
    }
}

/// The body of a job: its fixed payload, or its participant's payload
/// rendered now (offsets computed at the moment of sending).
pub fn render(
    job: &Job,
    webinars: &HashMap<WebinarId, payload::WebinarFacts>,
) -> Option<bytes::Bytes> {
    if let Some(p) = &job.payload {
        return Some(bytes::Bytes::from(p.clone()));
    }
    let w = webinars.get(job.webinar_id.as_ref()?)?;
    Some(payload::render(w, job.participant.as_ref()?).into())
}

/// Why a job was given up unsent (each ends in "not sent", which the
/// metrics read as "never attempted").
pub const VANISHED: &str = "participant or webinar no longer exists; not sent";
pub const STARTED: &str = "the webinar had started before it could leave; not sent";

/// A job given up unsent (its participant or webinar no longer exists, or
/// its webinar had started): recorded as expired with the reason, never
/// silently dropped. Returns its slice.
pub async fn unsent(d: &Dispatcher, job: Job, reason: &str) -> Option<SliceId> {
    let now = d.inner.ctx.clock.now();
    let attempt = Attempt {
        attempt: job.attempt,
        started_at: now,
        status_code: None,
        latency_ms: 0,
        error: Some(reason.into()),
        response: None,
    };
    let slice = job.fresh.as_ref().map(|f| f.slice);
    let outcome = Outcome {
        delivery_id: job.id,
        subscription_id: job.subscription_id,
        attempt,
        verdict: Verdict::Expired,
        fresh: job.fresh,
        batch: None,
    };
    let _ = d.inner.outcomes.send(Record::Outcome(outcome)).await;
    slice
}

/// Makes one attempt and hands its result to the recorder. Returns the
/// slices of the deliveries it carried, and what the result says of the
/// endpoint's load.
pub async fn attempt(
    d: &Dispatcher,
    unit: Unit,
    target: &Target,
    conn: &mut Option<Conn>,
) -> (Vec<SliceId>, Signal) {
    let Unit {
        job,
        body,
        slices,
        batch,
    } = unit;
    let ctx = &d.inner.ctx;
    let started = ctx.clock.now();
    let ts = started.timestamp();
    let raw = batch.as_ref().map(|_| body.to_vec());
    let msg = Message {
        url: &target.url,
        webhook_id: job.id.as_str(),
        timestamp: ts,
        signature: target.signers.header(job.id.as_str(), ts, &body, started),
        event: &target.event,
        reminder: &job.label,
        attempt: job.attempt,
        late: job.fresh.as_ref().is_some_and(|f| f.late),
        body,
    };
    let (attempt, resp) = d.inner.sender.send(msg, started, conn).await;
    let signal = Signal::of(&resp, attempt.latency_ms);
    let verdict = ctx.retry_policy().verdict(
        job.attempt,
        &resp,
        ctx.clock.now(),
        job.expires_at,
        rand::random(),
    );
    if verdict != Verdict::Delivered {
        tracing::debug!(delivery = %job.id, attempt = job.attempt, error = ?attempt.error, ?verdict, "attempt failed");
    }
    let outcome = Outcome {
        delivery_id: job.id,
        subscription_id: job.subscription_id,
        attempt,
        verdict,
        fresh: job.fresh,
        batch: raw.zip(batch),
    };
    if d.inner
        .outcomes
        .send(Record::Outcome(outcome))
        .await
        .is_err()
    {
        tracing::error!(
            "recorder gone; attempt result not recorded (the lease will lapse and it is retried)"
        );
    }
    (slices, signal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::payload::ParticipantFacts;

    fn member(id: &str, slice: i64) -> (Job, bytes::Bytes) {
        let at = chrono::DateTime::parse_from_rfc3339("2024-03-15T09:00:00Z")
            .unwrap()
            .to_utc();
        let fresh = Fresh {
            slice: crate::store::SliceId(slice),
            webinar_id: "w".into(),
            participant_id: "".into(),
            reminder_id: "r".into(),
            label: "1h".into(),
            due_at: at,
            expires_at: at,
            late: false,
            send_at: None,
        };
        let facts = ParticipantFacts {
            name: id.into(),
            email: format!("{id}@example.com"),
            phone: String::new(),
            zone: None,
        };
        let job = fresh.job(
            &"s".into(),
            id.into(),
            format!("p_{id}").as_str().into(),
            facts,
        );
        (job, bytes::Bytes::from(format!("{{\"n\":\"{id}\"}}")))
    }

    #[test]
    fn the_previous_secret_signs_until_its_grace_ends_at_each_attempt() {
        let signer = |s: &str| Signer::new(s).unwrap();
        let (old, new) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAA");
        let until = chrono::DateTime::parse_from_rfc3339("2024-03-15T09:00:00Z")
            .unwrap()
            .to_utc();
        let signers = Signers {
            current: signer(new),
            previous: Some((signer(old), until)),
        };
        let second = chrono::Duration::seconds(1);
        let before = signers.header("msg_1", 1, b"{}", until - second);
        assert_eq!(before.split(' ').count(), 2, "{before}");
        assert!(crate::signing::verify(old, "msg_1", 1, b"{}", &before));
        for at in [until, until + second] {
            let after = signers.header("msg_1", 1, b"{}", at);
            assert_eq!(after, signer(new).sign("msg_1", 1, b"{}"), "at {at}");
        }
    }

    #[test]
    fn a_batch_s_webhook_id_is_derived_from_its_members() {
        let ab = || vec![member("msg_a", 1), member("msg_b", 1)];
        let first = Unit::batch(ab());
        assert!(
            first.job.id.as_str().starts_with("msg_b"),
            "{}",
            first.job.id
        );
        assert_eq!(first.job.id, Unit::batch(ab()).job.id, "the same members");
        assert_eq!(&first.body[..], br#"[{"n":"msg_a"},{"n":"msg_b"}]"#);
        let other = Unit::batch(vec![member("msg_a", 1), member("msg_c", 1)]);
        assert_ne!(first.job.id, other.job.id, "another member");
        let fewer = Unit::batch(vec![member("msg_a", 1)]);
        assert_ne!(first.job.id, fewer.job.id, "one member fewer");
    }
}
