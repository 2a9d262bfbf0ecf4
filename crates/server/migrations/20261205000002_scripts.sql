-- The script library: saved scripts; every edit is a new version, and a run records the
-- version it used.
CREATE TABLE scripts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE script_versions (
    script_id TEXT NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    command_type TEXT NOT NULL,
    interpreter TEXT,
    body TEXT NOT NULL,
    default_timeout_seconds BIGINT NOT NULL,
    target_os TEXT NOT NULL,
    -- scripts::ScriptParameter list as JSON.
    parameters_json TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (script_id, version)
);
