-- Sessions from any login protocol: what a later logout needs (SAML NameID)
-- and when the IdP's own session ends (SAML SessionNotOnOrAfter). The
-- computed identity is no longer stored: it is derived from the claims.
ALTER TABLE sessions DROP COLUMN identity;
ALTER TABLE sessions ADD COLUMN logout_hint TEXT;
ALTER TABLE sessions ADD COLUMN idp_expires_at INTEGER;
