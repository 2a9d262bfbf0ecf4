-- Portable SQL: the same migration runs on SQLite and PostgreSQL.
-- Ids are UUID text; times are Unix milliseconds (BIGINT); flags are 0/1 BIGINT.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    notes TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idx_clients_name ON clients (name);

CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    site_code TEXT NOT NULL UNIQUE,
    notes TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idx_sites_client ON sites (client_id);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    site_id TEXT REFERENCES sites (id) ON DELETE SET NULL,
    device_id TEXT,
    hostname TEXT NOT NULL,
    os_type TEXT,
    os_version TEXT,
    arch TEXT,
    version TEXT,
    api_key_hash TEXT UNIQUE,
    last_seen BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX idx_agents_site ON agents (site_id);
CREATE UNIQUE INDEX idx_agents_device ON agents (device_id) WHERE device_id IS NOT NULL;
CREATE INDEX idx_agents_hostname ON agents (hostname);
CREATE INDEX idx_agents_os ON agents (os_type);

CREATE TABLE agent_state (
    agent_id TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    network_hash TEXT,
    network_json TEXT,
    network_updated_at BIGINT,
    metrics_json TEXT,
    metrics_at BIGINT
);

CREATE TABLE agent_updates (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    from_version TEXT,
    to_version TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX idx_agent_updates_agent ON agent_updates (agent_id);
CREATE INDEX idx_agent_updates_status ON agent_updates (status);

CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    command_type TEXT NOT NULL,
    command TEXT NOT NULL,
    interpreter TEXT,
    timeout_seconds BIGINT NOT NULL,
    elevated BIGINT NOT NULL,
    status TEXT NOT NULL,
    exit_code BIGINT,
    stdout TEXT,
    stderr TEXT,
    duration_ms BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    completed_at BIGINT
);
CREATE INDEX idx_commands_agent_status ON commands (agent_id, status, created_at);
CREATE INDEX idx_commands_status ON commands (status, sent_at);
CREATE INDEX idx_commands_created ON commands (created_at);

CREATE TABLE metrics (
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    ts BIGINT NOT NULL,
    cpu_percent DOUBLE PRECISION,
    memory_used_bytes BIGINT,
    memory_total_bytes BIGINT,
    disk_used_bytes BIGINT,
    disk_total_bytes BIGINT,
    network_rx_bytes BIGINT,
    network_tx_bytes BIGINT,
    disks_json TEXT
);
CREATE INDEX idx_metrics_agent_ts ON metrics (agent_id, ts);
CREATE INDEX idx_metrics_ts ON metrics (ts);

CREATE TABLE watchdog_events (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    event TEXT NOT NULL,
    message TEXT,
    ts BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX idx_watchdog_agent_ts ON watchdog_events (agent_id, ts);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    agent_id TEXT REFERENCES agents (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX idx_alerts_agent ON alerts (agent_id);
CREATE INDEX idx_alerts_open ON alerts (resolved_at, created_at);

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope_kind TEXT NOT NULL,
    scope_id TEXT,
    settings_json TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idx_policies_scope ON policies (scope_kind, scope_id);

CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    site_id TEXT REFERENCES sites (id) ON DELETE CASCADE,
    expires_at BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX idx_registration_tokens_site ON registration_tokens (site_id);

-- Who did what: every technician action that changes something or runs something.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    details TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX idx_audit_created ON audit_log (created_at);
CREATE INDEX idx_audit_user ON audit_log (user_id);
CREATE INDEX idx_audit_target ON audit_log (target_id);
