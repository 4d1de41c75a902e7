-- The refresh lease: while it runs, only its holder refreshes the
-- session's tokens (a rotating refresh token must be used once).
ALTER TABLE sessions ADD COLUMN refresh_lease_until INTEGER;
