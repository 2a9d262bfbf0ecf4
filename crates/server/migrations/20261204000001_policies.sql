-- Policies: named, versioned sets of agent settings, assigned to the fleet, a client, a site
-- or an agent (one policy per scope). The seed's `policies` table was never used.
DROP TABLE IF EXISTS policies;

CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    -- gururmm_protocol::PolicySettings as canonical JSON.
    settings_json TEXT NOT NULL,
    -- Incremented on every change.
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE policy_assignments (
    id TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    scope_kind TEXT NOT NULL,
    scope_id TEXT,
    created_at BIGINT NOT NULL
);
-- One policy per scope (the fleet's scope_id is NULL, hence the COALESCE).
CREATE UNIQUE INDEX idx_policy_assignments_scope
    ON policy_assignments (scope_kind, COALESCE(scope_id, ''));
CREATE INDEX idx_policy_assignments_policy ON policy_assignments (policy_id);

-- What each agent last said about its policy (`policy_status`).
CREATE TABLE agent_policy_status (
    agent_id TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    revision TEXT NOT NULL,
    applied BIGINT NOT NULL,
    error TEXT,
    reported_at BIGINT NOT NULL
);
