-- Dashboard and portal sessions, shared by every instance: the signed
-- cookie names one, and a page opens only while its row is here, not ended
-- (logout on any instance), not expired, and the API key that opened it
-- (if any) not revoked. Expired rows are deleted as sessions start.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,       -- sha256 of the cookie's nonce, never the cookie
    creator_id  TEXT,                   -- the portal's creator; NULL for the operator
    key_hash    TEXT,                   -- the API key a portal login used (api_keys.hash)
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ             -- logged out
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
