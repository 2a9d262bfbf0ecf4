-- Single-use tickets for the dashboard's event stream (EventSource cannot send headers, and the
-- long-lived token must not appear in a URL). In the database, not in one server's memory, so
-- a ticket issued by one node opens the stream on another. Stored as SHA-256 only.
CREATE TABLE event_tickets (
    ticket_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX idx_event_tickets_expires ON event_tickets (expires_at);
