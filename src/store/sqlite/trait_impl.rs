//! [`Store`] for [`SqliteStore`]: each method moves its arguments onto the
//! blocking pool and calls the SQL function of the same name.

use super::{engine, platform, record, subscriptions as subs, webinars, work, SqliteStore};
use crate::store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Copies borrowed arguments so a closure can own them.
fn own(s: &str) -> String {
    s.to_owned()
}

fn own_opt(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_creator(&self, name: &str, tz: Option<&str>) -> StoreResult<Creator> {
        let (name, tz) = (own(name), own_opt(tz));
        self.run(move |c| platform::create_creator(c, &name, tz.as_deref()))
            .await
    }
    async fn get_creator(&self, id: &str) -> StoreResult<Creator> {
        let id = own(id);
        self.run(move |c| platform::get_creator(c, &id)).await
    }
    async fn list_creators(&self) -> StoreResult<Vec<Creator>> {
        self.run(|c| platform::list_creators(c)).await
    }
    async fn create_api_key(
        &self,
        creator: &str,
        name: &str,
        prefix: &str,
        hash: &str,
    ) -> StoreResult<ApiKey> {
        let (creator, name, prefix, hash) = (own(creator), own(name), own(prefix), own(hash));
        self.run(move |c| platform::create_api_key(c, &creator, &name, &prefix, &hash))
            .await
    }
    async fn list_api_keys(&self, creator: &str) -> StoreResult<Vec<ApiKey>> {
        let creator = own(creator);
        self.run(move |c| platform::list_api_keys(c, &creator))
            .await
    }
    async fn revoke_api_key(&self, creator: &str, key: &str) -> StoreResult<()> {
        let (creator, key) = (own(creator), own(key));
        self.run(move |c| platform::revoke_api_key(c, &creator, &key))
            .await
    }
    async fn creator_for_key(&self, hash: &str) -> StoreResult<String> {
        let hash = own(hash);
        self.run(move |c| platform::creator_for_key(c, &hash)).await
    }
    async fn create_mango(&self, creator: &str, name: &str) -> StoreResult<Mango> {
        let (creator, name) = (own(creator), own(name));
        self.run(move |c| platform::create_mango(c, &creator, &name))
            .await
    }
    async fn list_mangoes(&self, creator: &str) -> StoreResult<Vec<Mango>> {
        let creator = own(creator);
        self.run(move |c| platform::list_mangoes(c, &creator)).await
    }

    async fn create_webinar(
        &self,
        creator: &str,
        f: &WebinarFields,
        plan: &[PlannedReminder],
    ) -> StoreResult<Webinar> {
        let (creator, f, plan) = (own(creator), f.clone(), plan.to_vec());
        self.run(move |c| webinars::create_webinar(c, &creator, &f, &plan))
            .await
    }
    async fn get_webinar(&self, id: &str) -> StoreResult<Webinar> {
        let id = own(id);
        self.run(move |c| webinars::get_webinar(c, &id)).await
    }
    async fn list_webinars(&self, creator: &str) -> StoreResult<Vec<Webinar>> {
        let creator = own(creator);
        self.run(move |c| webinars::list_webinars(c, &creator))
            .await
    }
    async fn update_webinar(
        &self,
        id: &str,
        f: &WebinarFields,
        plan: Option<&[PlannedReminder]>,
    ) -> StoreResult<Webinar> {
        let (id, f, plan) = (own(id), f.clone(), plan.map(<[_]>::to_vec));
        self.run(move |c| webinars::update_webinar(c, &id, &f, plan.as_deref()))
            .await
    }
    async fn end_webinar(&self, id: &str, deleted: bool) -> StoreResult<Webinar> {
        let id = own(id);
        self.run(move |c| webinars::end_webinar(c, &id, deleted))
            .await
    }
    async fn list_reminders(&self, webinar: &str) -> StoreResult<Vec<Reminder>> {
        let webinar = own(webinar);
        self.run(move |c| webinars::list_reminders(c, &webinar))
            .await
    }
    async fn register_participant(
        &self,
        webinar: &str,
        person: NewParticipant,
    ) -> StoreResult<(Participant, bool)> {
        let webinar = own(webinar);
        self.run(move |c| webinars::register_one(c, &webinar, &person))
            .await
    }
    async fn register_participants(
        &self,
        webinar: &str,
        people: NewParticipants,
    ) -> StoreResult<RegisterSummary> {
        let webinar = own(webinar);
        self.run(move |c| webinars::register(c, &webinar, &people))
            .await
    }
    async fn list_participants(
        &self,
        webinar: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Participant>> {
        let (webinar, after) = (own(webinar), own_opt(after));
        self.run(move |c| webinars::list_participants(c, &webinar, after.as_deref(), limit))
            .await
    }
    async fn unregister_participant(&self, webinar: &str, id: &str) -> StoreResult<()> {
        let (webinar, id) = (own(webinar), own(id));
        self.run(move |c| webinars::unregister(c, &webinar, &id))
            .await
    }

    async fn subscribe(&self, new: &NewSubscription) -> StoreResult<(Subscription, bool)> {
        let new = new.clone();
        self.run(move |c| subs::subscribe(c, &new)).await
    }
    async fn list_subscriptions(&self, creator: Option<&str>) -> StoreResult<Vec<Subscription>> {
        let creator = own_opt(creator);
        self.run(move |c| subs::list(c, creator.as_deref())).await
    }
    async fn get_subscription(&self, id: &str) -> StoreResult<Subscription> {
        let id = own(id);
        self.run(move |c| subs::get(c, &id)).await
    }
    async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
        let id = own(id);
        self.run(move |c| subs::delete(c, &id)).await
    }
    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        grace: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        let (id, secret) = (own(id), own(secret));
        self.run(move |c| subs::rotate(c, &id, &secret, grace))
            .await
    }
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecrets>> {
        self.run(|c| subs::stored_secrets(c)).await
    }
    async fn replace_secrets(&self, old: &StoredSecrets, new: &StoredSecrets) -> StoreResult<bool> {
        let (old, new) = (old.clone(), new.clone());
        self.run(move |c| subs::replace_secrets(c, &old, &new))
            .await
    }
    async fn update_subscription(
        &self,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> StoreResult<Subscription> {
        let (id, patch) = (own(id), patch.clone());
        self.run(move |c| subs::update(c, &id, &patch)).await
    }

    async fn list_deliveries(
        &self,
        sub: &str,
        status: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let (sub, status) = (own(sub), own_opt(status));
        self.run(move |c| subs::list_deliveries(c, &sub, status.as_deref(), limit))
            .await
    }
    async fn get_delivery(&self, sub: &str, id: &str) -> StoreResult<Delivery> {
        let (sub, id) = (own(sub), own(id));
        self.run(move |c| subs::get_delivery(c, &sub, &id)).await
    }
    async fn retry_delivery(
        &self,
        sub: &str,
        id: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        let (sub, id) = (own(sub), own(id));
        self.run(move |c| subs::retry(c, &sub, &id, now, expires))
            .await
    }
    async fn create_one_off(&self, one_off: &OneOff, now: DateTime<Utc>) -> StoreResult<Delivery> {
        let one_off = one_off.clone();
        self.run(move |c| subs::create_one_off(c, &one_off, now))
            .await
    }

    async fn next_reminder_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.run(|c| engine::next_reminder_due(c)).await
    }
    async fn subscriptions_due(&self, until: DateTime<Utc>) -> StoreResult<Vec<String>> {
        self.run(move |c| engine::subscriptions_due(c, until)).await
    }
    async fn claim_due_reminders(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        owner: &str,
        lease: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueReminder>> {
        let owner = own(owner);
        self.run(move |c| engine::claim_due_reminders(c, now, horizon, &owner, lease, limit))
            .await
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
        let (id, owner) = (own(id), own(owner));
        self.run(move |c| engine::fanout_batch(c, &id, &owner, mode, batch, now, lease, expires))
            .await
    }
    async fn subscriptions_with_work(&self) -> StoreResult<Vec<String>> {
        self.run(|c| work::subscriptions_with_work(c)).await
    }
    async fn next_delivery_due(&self, sub: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let sub = own(sub);
        self.run(move |c| work::next_delivery_due(c, &sub)).await
    }
    async fn claim_deliveries(
        &self,
        sub: &str,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease: DateTime<Utc>,
    ) -> StoreResult<Claimed> {
        let (sub, owner) = (own(sub), own(owner));
        self.run(move |c| work::claim_deliveries(c, &sub, now, limit, &owner, lease))
            .await
    }
    async fn record_outcomes(
        &self,
        outcomes: std::sync::Arc<[Outcome]>,
        done_slices: &[i64],
        now: DateTime<Utc>,
        disable_before: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let done = done_slices.to_vec();
        self.run(move |c| record::record_outcomes(c, &outcomes, &done, now, disable_before))
            .await
    }
    async fn renew_leases(
        &self,
        owner: &str,
        slices: &[i64],
        deliveries: &[String],
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (owner, slices, deliveries) = (own(owner), slices.to_vec(), deliveries.to_vec());
        self.run(move |c| record::renew_leases(c, &owner, &slices, &deliveries, until))
            .await
    }
    async fn withdrawn(
        &self,
        slices: &[i64],
        rows: &[String],
        participants: &[String],
    ) -> StoreResult<Withdrawn> {
        let (slices, rows, participants) = (slices.to_vec(), rows.to_vec(), participants.to_vec());
        self.run(move |c| work::withdrawn(c, &slices, &rows, &participants))
            .await
    }
    async fn release_leases(&self, owner: &str) -> StoreResult<u64> {
        let owner = own(owner);
        self.run(move |c| record::release_leases(c, &owner)).await
    }
    async fn expire_overdue(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.run(move |c| record::expire_overdue(c, now)).await
    }
    async fn remembered(
        &self,
        caller: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Option<Remembered>> {
        let (caller, key) = (own(caller), own(key));
        self.run(move |c| super::idempotency::remembered(c, &caller, &key, since))
            .await
    }
    async fn remember(&self, r: &Remembered, since: DateTime<Utc>) -> StoreResult<Remembered> {
        let r = r.clone();
        self.run(move |c| super::idempotency::remember(c, &r, since))
            .await
    }
    async fn close(&self) {
        SqliteStore::close(self).await
    }
}
