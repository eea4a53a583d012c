-- The authentication methods (RFC 8176 `amr`) an OIDC login's ID token named,
-- space-separated ('' for other logins or when it named none): shown on the account
-- page and checked again against auth.oidc.require_amr while the session lives.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
