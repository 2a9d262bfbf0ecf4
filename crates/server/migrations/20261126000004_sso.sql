-- Single sign-on (OpenID Connect). Several server nodes share the database, so a sign-in
-- started on one node can finish on another: its state lives here, not in memory.

-- One row per sign-in sent to the provider; taken (deleted) by the callback, so used once.
CREATE TABLE oidc_logins (
    state TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A signed-in provider user handed to the dashboard by a one-time code (stored hashed),
-- exchanged within 60 s for a session; the JWT never travels in a URL.
CREATE TABLE oidc_handoffs (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

-- A session started by single sign-on: the provider did the second factor, so
-- `require_two_factor` does not ask for the local one.
ALTER TABLE sessions ADD COLUMN via_sso BIGINT NOT NULL DEFAULT 0;
