-- Credential versions: every password change bumps the user's; a session carries the
-- version its login verified and is valid only while the two agree, so a login that
-- checked the old password while it was being changed keeps no session.
ALTER TABLE users ADD COLUMN credential_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN credential_version BIGINT NOT NULL DEFAULT 0;

-- Attempts are reserved before they are verified; `in_flight` counts reservations not
-- yet settled (and `in_flight_at` ages them out should a request die).
ALTER TABLE login_throttle ADD COLUMN in_flight BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_throttle ADD COLUMN in_flight_at BIGINT NOT NULL DEFAULT 0;
-- Account counters are now keyed by a keyed hash of the email: forget the old ones,
-- which held emails (or whatever was typed) in the clear.
DELETE FROM login_throttle WHERE key LIKE 'account:%';
