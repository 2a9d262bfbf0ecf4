-- Sign-in and enrollment limits counted in the database, so they hold across every server
-- node (an attacker spreading attempts over nodes gets no more). Keys are SHA-256 hashes.
CREATE TABLE rate_events (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX idx_rate_events_key_at ON rate_events (key, at);
CREATE INDEX idx_rate_events_at ON rate_events (at);

CREATE TABLE rate_slots (
    key TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL
);
