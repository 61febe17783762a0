-- Receipts: one row per slice and recorded batch for the deliveries a
-- receiver acknowledged on their first attempt (see src/store/receipt.rs).
-- Such a delivery has no row in `deliveries`; any other has one, and a row
-- wins over a receipt.
CREATE TABLE receipts (
    id              INTEGER PRIMARY KEY,
    slice_id        INTEGER NOT NULL,
    subscription_id TEXT NOT NULL,
    id_prefix       TEXT NOT NULL,      -- the webhook-ids' shared part
    first_seq       INTEGER NOT NULL,   -- registration numbers held, first and last
    last_seq        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,   -- when recorded; entries' times are relative to it
    entries         BLOB NOT NULL
);
CREATE INDEX receipts_lookup ON receipts(id_prefix, first_seq, last_seq);
CREATE INDEX receipts_slice ON receipts(slice_id);
CREATE INDEX receipts_history ON receipts(subscription_id, created_at);
