-- Accounts a shared-signals transmitter disabled (RISC account-disabled,
-- account-purged, credential-compromise) or enabled again, per provider
-- and identifier. A newer event replaces an older one; an older one that
-- arrives late never undoes a newer one. New logins of a disabled account
-- are refused until an account-enabled newer than the disabling event.
CREATE TABLE signal_accounts (
    provider   TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    disabled   BOOLEAN NOT NULL,
    changed_at BIGINT  NOT NULL,
    reason     TEXT    NOT NULL,
    PRIMARY KEY (provider, kind, value)
);
