-- Operational webhooks (src/ops): when a subscription's failure was last
-- announced to the platform (`subscription.failing`), so it is announced at
-- most once an hour, and a recovery is announced only after an announced
-- failure. The operational subscription itself is an ordinary row owned by
-- the reserved creator 000000000000000000000000, made at start.
ALTER TABLE subscriptions ADD COLUMN failing_noticed_at INTEGER;
