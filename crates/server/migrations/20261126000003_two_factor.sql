-- Two-factor sign-in (TOTP, RFC 6238) and one-time recovery codes.
-- Secrets are stored encrypted with the server's two-factor key (data folder), never plain.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
-- A secret being set up, until the user confirms it with a code.
ALTER TABLE users ADD COLUMN totp_pending TEXT;
-- The last time step a code was accepted for: each code is accepted once.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;

CREATE TABLE recovery_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX idx_recovery_codes_user ON recovery_codes (user_id);
