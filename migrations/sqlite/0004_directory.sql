-- The SCIM directory: users and groups as the IdP pushed them (the
-- resource as JSON), memberships as rows, versions for ETags.
CREATE TABLE scim_users (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_name       TEXT    NOT NULL,
    user_name_lower TEXT    NOT NULL UNIQUE,
    external_id     TEXT,
    active          INTEGER NOT NULL,
    resource        TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    created         INTEGER NOT NULL,
    modified        INTEGER NOT NULL
);
CREATE INDEX scim_users_by_external_id ON scim_users (external_id);
CREATE INDEX scim_users_by_created ON scim_users (created, id);

CREATE TABLE scim_groups (
    id                 TEXT    NOT NULL PRIMARY KEY,
    display_name       TEXT    NOT NULL,
    display_name_lower TEXT    NOT NULL,
    external_id        TEXT,
    resource           TEXT    NOT NULL,
    version            INTEGER NOT NULL,
    created            INTEGER NOT NULL,
    modified           INTEGER NOT NULL
);
CREATE INDEX scim_groups_by_name ON scim_groups (display_name_lower);

CREATE TABLE scim_members (
    group_id TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    added    INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_members_by_user ON scim_members (user_id);

-- Which directory user a session belongs to (the login's userName or
-- externalId match), so directory changes reach live sessions.
ALTER TABLE sessions ADD COLUMN match_key TEXT;
CREATE INDEX sessions_by_match_key ON sessions (match_key);
