-- Notifications (issue 14): channels, routes (which severities of which scope go where), and a
-- delivery queue every node works from, with each attempt and its answer logged.

CREATE TABLE notification_channels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- webhook | slack | teams | email
    kind TEXT NOT NULL,
    -- webhook, slack and teams
    url TEXT,
    -- email: the recipients, comma-separated
    email_to TEXT,
    -- webhook: the HMAC signing secret, sealed with the server's secret box (never plain)
    secret_sealed TEXT,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE notification_routes (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    -- info | warning | critical: this and more severe alerts go to the channel
    min_severity TEXT NOT NULL,
    scope_kind TEXT NOT NULL,
    scope_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX notification_routes_channel ON notification_routes (channel_id);

CREATE TABLE notification_deliveries (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    -- NULL for a test delivery
    alert_id TEXT,
    -- the notice as JSON (the webhook body; the other formats are made from it)
    payload TEXT NOT NULL,
    -- pending | delivered | failed
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- a node sending it holds it until then
    lease_until BIGINT,
    leased_by TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
CREATE INDEX notification_deliveries_channel ON notification_deliveries (channel_id, created_at);
CREATE INDEX notification_deliveries_alert ON notification_deliveries (alert_id);

CREATE TABLE notification_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    -- the HTTP status, or the SMTP reply code
    status_code BIGINT,
    -- the start of the answer (HTTP body or SMTP reply text)
    response TEXT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX notification_attempts_delivery ON notification_attempts (delivery_id, attempt);
