-- Answers remembered for Idempotency-Key: one per (caller, key), kept 24 h.
CREATE TABLE idempotency (
    caller       TEXT NOT NULL,         -- a hash of the caller's credentials
    key          TEXT NOT NULL,         -- the Idempotency-Key header
    request_hash TEXT NOT NULL,         -- method, path and body of the first request
    status       INTEGER NOT NULL,
    body         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,      -- ms
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_age ON idempotency(created_at);
