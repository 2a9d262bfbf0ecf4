-- Jobs: one script (or ad-hoc command) run on many agents, one command per agent.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- The script and version run (NULL for an ad-hoc command, or a script since deleted).
    script_id TEXT REFERENCES scripts (id) ON DELETE SET NULL,
    script_version BIGINT,
    command_type TEXT NOT NULL,
    command TEXT NOT NULL,
    interpreter TEXT,
    -- The parameters as the script receives them: a JSON object of strings.
    environment_json TEXT NOT NULL,
    timeout_seconds BIGINT NOT NULL,
    -- What the technician chose (agents, a site, a client, a filter), as JSON.
    target_json TEXT NOT NULL,
    -- Commands still queued at this time become `expired`.
    expires_at BIGINT,
    -- The job this one re-runs (on the agents where that one failed).
    rerun_of TEXT,
    -- The schedule that started it.
    schedule_id TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    cancelled_at BIGINT
);
CREATE INDEX idx_jobs_created ON jobs (created_at);

ALTER TABLE commands ADD COLUMN job_id TEXT REFERENCES jobs (id) ON DELETE SET NULL;
-- Environment variables the command runs with (script parameters), a JSON object of strings.
ALTER TABLE commands ADD COLUMN environment_json TEXT;
ALTER TABLE commands ADD COLUMN expires_at BIGINT;
CREATE INDEX idx_commands_job ON commands (job_id, status);
CREATE INDEX idx_commands_expiry ON commands (status, expires_at);
