-- Sessions: one row per login. The key is SHA-256 of the session id.
CREATE TABLE sessions (
    key              BLOB    NOT NULL PRIMARY KEY,
    provider         TEXT    NOT NULL,
    issuer           TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    sid              TEXT,
    identity         TEXT    NOT NULL,
    claims           TEXT    NOT NULL,
    tokens           BLOB    NOT NULL,
    token_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    last_refresh     INTEGER NOT NULL
);
CREATE INDEX sessions_by_sid ON sessions (issuer, sid);
CREATE INDEX sessions_by_subject ON sessions (issuer, subject);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One-time ids (logout token jti, ...) kept until they expire, to refuse replays.
CREATE TABLE seen_once (
    scope      TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, id)
);
