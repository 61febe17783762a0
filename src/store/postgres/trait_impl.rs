//! [`Store`] for [`PgStore`]: each method takes a pooled connection, opens
//! a transaction where the work writes more than one statement, and calls
//! the SQL function of the same name.

use super::{
    engine, instances, participants, platform, record, subscriptions as subs, sweep, webinars,
    work, PgStore,
};
use crate::store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

/// Runs `$body` with `$tx` bound to a transaction on a pooled connection,
/// and commits it when the body succeeds. A transaction the server chose
/// as a deadlock's victim is run again (up to three times).
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {
        transact!($self, false, |$tx| $body)
    };
}

/// [`in_tx!`] for a claim: its commit does not wait for the disk. A claim
/// lost in a server crash is only claimed again; everything sent under it is
/// recorded by a later, durable commit, which makes this one durable too
/// (the log is written in order).
macro_rules! in_claim_tx {
    ($self:ident, |$tx:ident| $body:expr) => {
        transact!($self, true, |$tx| $body)
    };
}

macro_rules! transact {
    ($self:ident, $lazy:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let result: StoreResult<_> = async {
                let mut conn = $self.conn().await?;
                let $tx = conn.transaction().await?;
                if $lazy {
                    $tx.batch_execute("SET LOCAL synchronous_commit = off")
                        .await?;
                }
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match result {
                Err(e) if tries < 3 && super::retryable(&e) => {
                    tries += 1;
                    tracing::warn!(
                        tries,
                        "transaction chosen as a deadlock victim (or not serialisable); running it again"
                    );
                }
                done => break done,
            }
        }
    }};
}

#[async_trait]
impl Store for PgStore {
    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.changes.subscribe())
    }

    async fn create_creator(&self, name: &str, tz: Option<&str>) -> StoreResult<Creator> {
        platform::create_creator(&**self.conn().await?, name, tz).await
    }
    async fn get_creator(&self, id: &str) -> StoreResult<Creator> {
        platform::get_creator(&**self.conn().await?, id).await
    }
    async fn list_creators(&self) -> StoreResult<Vec<Creator>> {
        platform::list_creators(&**self.conn().await?).await
    }
    async fn create_api_key(
        &self,
        creator: &str,
        name: &str,
        prefix: &str,
        hash: &str,
    ) -> StoreResult<ApiKey> {
        platform::create_api_key(&**self.conn().await?, creator, name, prefix, hash).await
    }
    async fn list_api_keys(&self, creator: &str) -> StoreResult<Vec<ApiKey>> {
        platform::list_api_keys(&**self.conn().await?, creator).await
    }
    async fn revoke_api_key(&self, creator: &str, key: &str) -> StoreResult<()> {
        platform::revoke_api_key(&**self.conn().await?, creator, key).await
    }
    async fn creator_for_key(&self, hash: &str) -> StoreResult<String> {
        platform::creator_for_key(&**self.conn().await?, hash).await
    }
    async fn create_mango(&self, creator: &str, name: &str) -> StoreResult<Mango> {
        platform::create_mango(&**self.conn().await?, creator, name).await
    }
    async fn list_mangoes(&self, creator: &str) -> StoreResult<Vec<Mango>> {
        platform::list_mangoes(&**self.conn().await?, creator).await
    }

    async fn create_webinar(
        &self,
        creator: &str,
        f: &WebinarFields,
        plan: &[PlannedReminder],
    ) -> StoreResult<Webinar> {
        let id = in_tx!(self, |tx| webinars::create_webinar(
            &tx,
            &self.channel,
            creator,
            f,
            plan
        )
        .await?)?;
        self.get_webinar(&id).await
    }
    async fn get_webinar(&self, id: &str) -> StoreResult<Webinar> {
        webinars::get_webinar(&**self.conn().await?, id).await
    }
    async fn list_webinars(&self, creator: &str) -> StoreResult<Vec<Webinar>> {
        webinars::list_webinars(&**self.conn().await?, creator).await
    }
    async fn update_webinar(
        &self,
        id: &str,
        f: &WebinarFields,
        plan: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar> {
        in_tx!(self, |tx| webinars::update_webinar(
            &tx,
            &self.channel,
            id,
            f,
            plan
        )
        .await?)?;
        self.get_webinar(id).await
    }
    async fn end_webinar(&self, id: &str, deleted: bool) -> StoreResult<Webinar> {
        in_tx!(self, |tx| webinars::end_webinar(&tx, id, deleted).await?)
    }
    async fn list_reminders(&self, webinar: &str) -> StoreResult<Vec<Reminder>> {
        webinars::list_reminders(&**self.conn().await?, webinar).await
    }
    async fn register_participant(
        &self,
        webinar: &str,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)> {
        in_tx!(self, |tx| participants::register_one(&tx, webinar, &person)
            .await?)
    }
    async fn register_participants(
        &self,
        webinar: &str,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary> {
        in_tx!(self, |tx| participants::register(&tx, webinar, &people)
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
        in_tx!(self, |tx| participants::unregister(&tx, webinar, id)
            .await?)
    }

    async fn subscribe(&self, new: &NewSubscription) -> StoreResult<(Subscription, bool)> {
        in_tx!(self, |tx| subs::subscribe(&tx, new).await?)
    }
    async fn list_subscriptions(&self, creator: Option<&str>) -> StoreResult<Vec<Subscription>> {
        subs::list(&**self.conn().await?, creator).await
    }
    async fn get_subscription(&self, id: &str) -> StoreResult<Subscription> {
        subs::get(&**self.conn().await?, id).await
    }
    async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| subs::delete(&tx, id).await?)
    }
    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        grace: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        subs::rotate(&**self.conn().await?, id, secret, grace).await
    }
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecrets>> {
        subs::stored_secrets(&**self.conn().await?).await
    }
    async fn replace_secrets(&self, old: &StoredSecrets, new: &StoredSecrets) -> StoreResult<bool> {
        subs::replace_secrets(&**self.conn().await?, old, new).await
    }
    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> StoreResult<Subscription> {
        subs::update(&**self.conn().await?, id, patch).await
    }

    async fn list_deliveries(
        &self,
        sub: &str,
        status: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        subs::list_deliveries(&**self.conn().await?, sub, status, limit).await
    }
    async fn get_delivery(&self, sub: &str, id: &str) -> StoreResult<Delivery> {
        subs::get_delivery(&**self.conn().await?, sub, id).await
    }
    async fn retry_delivery(
        &self,
        sub: &str,
        id: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        in_tx!(self, |tx| subs::retry(
            &tx,
            &self.channel,
            sub,
            id,
            now,
            expires
        )
        .await?)
    }
    async fn create_one_off(&self, one_off: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery> {
        in_tx!(self, |tx| subs::create_one_off(
            &tx,
            &self.channel,
            one_off,
            now
        )
        .await?)
    }

    async fn next_reminder_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        engine::next_reminder_due(&**self.conn().await?).await
    }
    async fn subscriptions_due(&self, until: DateTime<Utc>) -> StoreResult<Vec<String>> {
        engine::subscriptions_due(&**self.conn().await?, until).await
    }
    async fn claim_due_reminders(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        owner: &str,
        lease: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueReminder>> {
        in_claim_tx!(self, |tx| engine::claim_due_reminders(
            &tx, now, horizon, owner, lease, limit
        )
        .await?)
    }
    async fn fanout_batch(
        &self,
        id: &str,
        owner: &str,
        mode: FanoutMode,
        batch: u32,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<FanoutProgress> {
        in_claim_tx!(self, |tx| engine::fanout_batch(
            &tx,
            &self.channel,
            id,
            owner,
            mode,
            batch,
            now,
            lease,
            expires
        )
        .await?)
    }
    async fn subscriptions_with_work(&self) -> StoreResult<Vec<String>> {
        work::subscriptions_with_work(&**self.conn().await?).await
    }
    async fn next_delivery_due(&self, sub: &str) -> StoreResult<Option<DateTime<Utc>>> {
        work::next_delivery_due(&**self.conn().await?, sub).await
    }
    async fn claim_deliveries(
        &self,
        sub: &str,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease: DateTime<Utc>,
    ) -> StoreResult<Claimed> {
        in_claim_tx!(self, |tx| work::claim_deliveries(
            &tx, sub, now, limit, owner, lease
        )
        .await?)
    }
    async fn record_outcomes(
        &self,
        outcomes: std::sync::Arc<[Outcome]>,
        done_slices: &[i64],
        now: DateTime<Utc>,
        disable_before: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        in_tx!(self, |tx| record::record_outcomes(
            &tx,
            &outcomes,
            done_slices,
            now,
            disable_before
        )
        .await?)
    }
    async fn renew_leases(
        &self,
        owner: &str,
        slices: &[i64],
        deliveries: &[String],
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        in_claim_tx!(self, |tx| sweep::renew_leases(
            &tx, owner, slices, deliveries, until
        )
        .await?)
    }
    async fn withdrawn(
        &self,
        slices: &[i64],
        rows: &[String],
        participants: &[String],
    ) -> StoreResult<Withdrawn> {
        work::withdrawn(&**self.conn().await?, slices, rows, participants).await
    }
    async fn release_leases(&self, owner: &str) -> StoreResult<u64> {
        let owners = [owner.to_owned()];
        let n = in_tx!(self, |tx| sweep::release_leases(
            &tx,
            &self.channel,
            &owners
        )
        .await?)?;
        instances::leave(&**self.conn().await?, owner).await?;
        Ok(n)
    }
    async fn heartbeat(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        alive_since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let beat =
            async { instances::heartbeat(&**self.conn().await?, instance, now, alive_since).await }
                .await;
        // Only an instance whose own heartbeats have all gone through, in
        // time, for a whole alive window may judge the others: after an
        // outage of the database every instance's heartbeat is old, and the
        // first one back must not take the work of the others, which are
        // alive and about to say so, however much later than it they
        // reconnect within that window (a busy machine).
        let steady = {
            let mut since = self.beating_since.lock().unwrap();
            match &beat {
                Ok(b) if b.was_alive => *since.get_or_insert(now) <= alive_since,
                Ok(_) => {
                    *since = Some(now);
                    false
                }
                Err(_) => {
                    *since = None;
                    false
                }
            }
        };
        let beat = beat?;
        if steady && !beat.lapsed.is_empty() {
            let lapsed = beat.lapsed;
            let n = in_tx!(self, |tx| {
                let n = sweep::release_leases(&tx, &self.channel, &lapsed).await?;
                instances::forget(&*tx, &lapsed, alive_since).await?;
                n
            })?;
            tracing::warn!(
                instances = ?lapsed,
                leases = n,
                "instances stopped answering; took over their work"
            );
        }
        Ok(beat.live)
    }
    async fn expire_overdue(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        in_tx!(self, |tx| sweep::expire_overdue(&tx, now).await?)
    }
    async fn remembered(
        &self,
        caller: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Remembered>> {
        super::idempotency::remembered(&**self.conn().await?, caller, key, since).await
    }
    async fn remember(&self, r: &Remembered, since: DateTime<Utc>) -> StoreResult<Remembered> {
        super::idempotency::remember(&**self.conn().await?, r, since).await
    }
}
