-- Alert rules, alerts and maintenance windows (issue 14). Portable SQL for SQLite and PostgreSQL.

CREATE TABLE alert_rules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- cpu | memory | disk | offline | watchdog_gave_up | command_failed
    kind TEXT NOT NULL,
    -- Percent, for cpu, memory and disk.
    threshold DOUBLE PRECISION,
    -- How long the condition must hold (metric kinds, offline).
    duration_seconds BIGINT NOT NULL DEFAULT 0,
    -- command_failed: timed-out commands count too.
    include_timeouts BIGINT NOT NULL DEFAULT 0,
    severity TEXT NOT NULL,
    scope_kind TEXT NOT NULL,
    scope_id TEXT,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idx_alert_rules_scope ON alert_rules (scope_kind, scope_id);

-- The seed's table was never used: recreated with the lifecycle.
DROP TABLE alerts;
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    -- The disk's mount or the service name; '' when the kind has none.
    subject TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    -- open | acknowledged | resolved
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    acknowledged_note TEXT,
    resolved_at BIGINT,
    -- NULL with resolved_at set: resolved automatically.
    resolved_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    resolved_note TEXT
);
-- One unresolved alert per rule, agent and subject: a condition that holds never opens twice.
CREATE UNIQUE INDEX idx_alerts_one_open ON alerts (rule_id, agent_id, subject) WHERE status <> 'resolved';
CREATE INDEX idx_alerts_agent_status ON alerts (agent_id, status);
CREATE INDEX idx_alerts_status_opened ON alerts (status, opened_at);
CREATE INDEX idx_alerts_opened ON alerts (opened_at);
CREATE INDEX idx_alerts_rule ON alerts (rule_id);

CREATE TABLE maintenance_windows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- agent | site | client
    scope_kind TEXT NOT NULL,
    scope_id TEXT,
    -- One-off: both set.
    starts_at BIGINT,
    ends_at BIGINT,
    -- Weekly: comma-separated ISO weekdays (1 = Monday), start minute of the day, length.
    weekdays TEXT,
    start_minute BIGINT,
    duration_minutes BIGINT,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idx_maintenance_scope ON maintenance_windows (scope_kind, scope_id);

-- The offline check looks for agents not heard from since a cutoff.
CREATE INDEX idx_agents_last_seen ON agents (last_seen);
