-- Server-side sign-in sessions: every JWT names one (claim `sid`), and the access layer checks
-- it is live on each request, so signing out, a password or role change, deactivation and
-- deletion end access at once.
ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    user_agent TEXT,
    source_address TEXT
);

CREATE INDEX idx_sessions_user ON sessions (user_id);
