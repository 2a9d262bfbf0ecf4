-- Schedules: a job run at one time, or on a cron expression in a named time zone. Each run is
-- a job of its own (jobs.schedule_id). A run is claimed by moving next_run_at on with a
-- conditional UPDATE in the transaction that creates its job, so each slot runs once however
-- many server processes share the database.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- The job to start (http::types::JobBody as JSON).
    job_json TEXT NOT NULL,
    -- Five-field cron expression; NULL for a one-off at run_at.
    cron TEXT,
    time_zone TEXT NOT NULL,
    run_at BIGINT,
    paused BIGINT NOT NULL,
    -- The next slot; NULL once a one-off has run.
    next_run_at BIGINT,
    last_run_at BIGINT,
    last_job_id TEXT,
    -- Why the last slot started no job (its target matched no agent, its script is gone, ...).
    last_error TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idx_schedules_due ON schedules (paused, next_run_at);
