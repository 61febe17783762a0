-- Receipts, as SQLite has kept them since its 0002: one row per slice and
-- recorded batch for the deliveries a receiver acknowledged on their first
-- attempt (see src/store/receipt.rs). Such a delivery has no row in
-- `deliveries`; any other has one, and a row wins over a receipt. A row per
-- acknowledged delivery was most of the server's work in a fan-out (21 of
-- its 26 µs and 573 of its 577 WAL bytes per delivery, docs/PERFORMANCE.md).
CREATE TABLE receipts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slice_id        BIGINT NOT NULL,
    subscription_id TEXT NOT NULL,
    id_prefix       TEXT NOT NULL,      -- the webhook-ids' shared part
    first_seq       BIGINT NOT NULL,    -- registration numbers held, first and last
    last_seq        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,    -- when recorded, in ms; entries' times are relative to it
    entries         BYTEA NOT NULL
);
CREATE INDEX receipts_lookup ON receipts(id_prefix, first_seq, last_seq);
CREATE INDEX receipts_slice ON receipts(slice_id);
CREATE INDEX receipts_history ON receipts(subscription_id, created_at);
