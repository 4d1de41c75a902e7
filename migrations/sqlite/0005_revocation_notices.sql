-- Revocations, for other processes on the same database file (the
-- `doorward sessions revoke` CLI, another doorward) to tell a running
-- doorward, which caches sessions in memory: it polls for ids past the
-- last it saw. Rows are kept an hour, far longer than any poll gap.
CREATE TABLE notices (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB    NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX notices_by_age ON notices (at);
