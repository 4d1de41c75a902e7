-- Sessions: one row per login, the key is SHA-256 of the session id. The
-- same schema as SQLite's after its migrations, in one step.
CREATE TABLE sessions (
    key                 BYTEA   NOT NULL PRIMARY KEY,
    provider            TEXT    NOT NULL,
    issuer              TEXT    NOT NULL,
    subject             TEXT    NOT NULL,
    sid                 TEXT,
    logout_hint         TEXT,
    idp_expires_at      BIGINT,
    claims              TEXT    NOT NULL,
    tokens              BYTEA   NOT NULL,
    token_expires_at    BIGINT,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    last_seen           BIGINT  NOT NULL,
    last_refresh        BIGINT  NOT NULL,
    refresh_lease_until BIGINT
);
CREATE INDEX sessions_by_sid ON sessions (issuer, sid);
CREATE INDEX sessions_by_subject ON sessions (issuer, subject);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One-time ids (logout token jti, SAML assertion IDs) kept until they
-- expire, to refuse replays.
CREATE TABLE seen_once (
    scope      TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, id)
);
