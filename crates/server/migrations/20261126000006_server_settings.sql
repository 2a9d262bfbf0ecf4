-- Settings an administrator changes in the dashboard (as opposed to the operator's config
-- file), shared by every server node.
CREATE TABLE server_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
