-- Agent releases, rollout targets and the update life cycle (issue 13).

-- A published agent build: the file under downloads_dir, its SHA-256 (hex) and the release
-- key's Ed25519 signature of that digest (base64). One per (version, os, arch).
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    os TEXT NOT NULL,
    arch TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    signature TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (version, os, arch)
);
CREATE INDEX idx_releases_os_arch ON releases (os, arch);

-- The target version of one (os, arch) and who gets it: scope all, sites, clients or
-- percentage; site_ids and client_ids are JSON arrays of ids.
CREATE TABLE rollouts (
    os TEXT NOT NULL,
    arch TEXT NOT NULL,
    version TEXT NOT NULL,
    scope TEXT NOT NULL,
    site_ids TEXT NOT NULL,
    client_ids TEXT NOT NULL,
    percent BIGINT NOT NULL,
    paused BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (os, arch)
);

-- agent_updates (from the first migration) moves pending -> downloading -> installed ->
-- completed, or to failed / rolled_back with a reason. sent_at is NULL while a technician's
-- request waits for the agent to connect.
ALTER TABLE agent_updates ADD COLUMN reason TEXT;
ALTER TABLE agent_updates ADD COLUMN updated_at BIGINT;
ALTER TABLE agent_updates ADD COLUMN sent_at BIGINT;
ALTER TABLE agent_updates ADD COLUMN allow_downgrade BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agent_updates ADD COLUMN requested_by TEXT;
CREATE INDEX idx_agent_updates_to_version ON agent_updates (to_version);
