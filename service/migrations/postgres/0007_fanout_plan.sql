-- Issue 22 §2–3: a capacity plan for every fan-out. Each subscription gets a
-- lateness budget (how long after a reminder's instant its last participant
-- may be reminded), an opt-in early start, and the answer time its endpoint
-- has shown (a moving average over recent acknowledged attempts, folded in
-- by the recorder; NULL until one is seen, when `--assumed-latency` stands
-- in). A slice may be released before its reminder's instant (`send_at`,
-- an early start); `due_at` stays the instant.
ALTER TABLE subscriptions ADD COLUMN late_budget_ms INTEGER NOT NULL DEFAULT 60000;
ALTER TABLE subscriptions ADD COLUMN send_early_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN answer_us BIGINT;
ALTER TABLE slices ADD COLUMN send_at TIMESTAMPTZ;  -- NULL: at due_at
-- A fan-out started early covers the participants registered then
-- (`last_seq`) for one subscription; the reminder's own steps, from its
-- instant, skip them for that subscription. `reminders.early` says a
-- reminder has such rows, so the steps of every other reminder do not look.
ALTER TABLE reminders ADD COLUMN early BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE early_starts (
    reminder_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,  -- the instant it was started for
    last_seq        BIGINT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (reminder_id, subscription_id)
);
