-- The instances sharing this database, each seen at its last heartbeat: a
-- subscription's caps are split between the live ones.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,       -- the lease owner name (pid-random)
    started_at  TIMESTAMPTZ NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL
);
