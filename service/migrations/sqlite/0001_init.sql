-- tminus schema, SQLite. All instants are Unix epoch milliseconds (UTC).

CREATE TABLE creators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    creator_id  TEXT NOT NULL REFERENCES creators(id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,          -- first characters, to recognise a key in lists
    hash        TEXT NOT NULL UNIQUE,   -- sha256 of the key; the key itself is never stored
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE mangoes (
    id          TEXT PRIMARY KEY,
    creator_id  TEXT NOT NULL REFERENCES creators(id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE webinars (
    id          TEXT PRIMARY KEY,
    creator_id  TEXT NOT NULL REFERENCES creators(id),
    title       TEXT NOT NULL,
    link        TEXT NOT NULL,
    from_time   INTEGER NOT NULL,
    to_time     INTEGER NOT NULL,
    timezone    TEXT,                   -- the creator's zone for this webinar
    status      TEXT NOT NULL,          -- scheduled | cancelled | deleted
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX webinars_creator ON webinars(creator_id);

CREATE TABLE webinar_mangoes (
    webinar_id  TEXT NOT NULL REFERENCES webinars(id),
    mango_id    TEXT NOT NULL REFERENCES mangoes(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (webinar_id, mango_id)
);

CREATE TABLE participants (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- fan-out cursor order
    id              TEXT NOT NULL UNIQUE,
    webinar_id      TEXT NOT NULL REFERENCES webinars(id),
    name            TEXT NOT NULL,
    email           TEXT NOT NULL COLLATE NOCASE,
    phone           TEXT NOT NULL,
    timezone        TEXT,
    registered_at   INTEGER NOT NULL,
    unregistered_at INTEGER
);
CREATE UNIQUE INDEX participants_registered
    ON participants(webinar_id, email) WHERE unregistered_at IS NULL;
CREATE INDEX participants_webinar_seq ON participants(webinar_id, seq);

CREATE TABLE subscriptions (
    id                  TEXT PRIMARY KEY,
    creator_id          TEXT NOT NULL REFERENCES creators(id),
    hook_url            TEXT NOT NULL,
    event               TEXT NOT NULL,
    webinar_id          TEXT,
    mango_id            TEXT,
    secret              TEXT NOT NULL,
    previous_secret     TEXT,           -- still signed with until previous_until
    previous_until      INTEGER,
    status              TEXT NOT NULL,  -- active | disabled | deleted
    disabled_reason     TEXT,
    max_concurrency     INTEGER NOT NULL,
    rate_per_second     INTEGER,
    batch_size          INTEGER NOT NULL DEFAULT 1,  -- payloads per POST (1: the seed's one per POST)
    failing_since       INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX subscriptions_creator ON subscriptions(creator_id, status);

-- One row per webinar and interval: a schedule costs O(1) rows per reminder
-- until it fires, whatever the number of participants.
CREATE TABLE reminders (
    id            TEXT PRIMARY KEY,
    webinar_id    TEXT NOT NULL REFERENCES webinars(id),
    label         TEXT NOT NULL,
    from_time     INTEGER NOT NULL,     -- the start this reminder announces
    due_at        INTEGER NOT NULL,
    status        TEXT NOT NULL,        -- pending | firing | sent | missed | cancelled
    late          INTEGER NOT NULL DEFAULT 0,
    cursor_seq    INTEGER NOT NULL DEFAULT 0,   -- last participant seq fanned out
    until_seq     INTEGER,              -- last participant seq registered when it fired
    fired_at      INTEGER,
    locked_until  INTEGER,
    locked_by     TEXT,
    UNIQUE (webinar_id, label, from_time)
);
CREATE INDEX reminders_due ON reminders(status, due_at);

-- A fired reminder's work for one subscription: a range of participants.
-- A delivery of a slice gets its own row only once it has been attempted, so
-- a fan-out writes one row per delivery, not three.
CREATE TABLE slices (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reminder_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    webinar_id      TEXT NOT NULL,
    label           TEXT NOT NULL,
    from_time       INTEGER NOT NULL,   -- the start the reminder announces
    due_at          INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    late            INTEGER NOT NULL,
    after_seq       INTEGER NOT NULL,   -- participants with after_seq < seq <= last_seq
    last_seq        INTEGER NOT NULL,
    status          TEXT NOT NULL,      -- pending | done | cancelled | expired
    claims          INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    locked_until    INTEGER,
    locked_by       TEXT
);
CREATE INDEX slices_work ON slices(subscription_id, id) WHERE status = 'pending';
CREATE INDEX slices_webinar ON slices(webinar_id) WHERE status = 'pending';
CREATE INDEX slices_expiry ON slices(expires_at) WHERE status = 'pending';

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,   -- the webhook-id
    subscription_id TEXT NOT NULL,
    webinar_id      TEXT,
    participant_id  TEXT,
    reminder_id     TEXT,
    label           TEXT NOT NULL,      -- x-tminus-reminder
    payload         BLOB,               -- fixed body (test events); NULL = render at send time
    status          TEXT NOT NULL,      -- pending | delivered | failed | expired | missed | cancelled
    late            INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    locked_until    INTEGER,
    locked_by       TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    batch_id        TEXT,               -- the batch delivery that carried this one
    -- The first attempt, kept in the row: most deliveries need only one, and
    -- a row in attempts each would double the writes of a fan-out.
    first_started_at INTEGER,
    first_status     INTEGER,
    first_latency_ms INTEGER,
    first_error      TEXT,
    first_response   TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;  -- one b-tree keyed by the webhook-id, not a rowid table plus an index
-- Work indexes cover pending rows only: a delivery leaves them once it is
-- settled, so the history does not slow the queue down.
CREATE INDEX deliveries_work ON deliveries(subscription_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_expiry ON deliveries(expires_at) WHERE status = 'pending';
CREATE INDEX deliveries_participant ON deliveries(participant_id) WHERE status = 'pending';
CREATE INDEX deliveries_webinar ON deliveries(webinar_id) WHERE status = 'pending';
CREATE INDEX deliveries_history ON deliveries(subscription_id, created_at);

-- Attempts after the first (which lives in its delivery's row).
CREATE TABLE attempts (
    delivery_id     TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    status_code     INTEGER,
    latency_ms      INTEGER NOT NULL,
    error           TEXT,
    response        TEXT,               -- the first bytes of the receiver's answer
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
