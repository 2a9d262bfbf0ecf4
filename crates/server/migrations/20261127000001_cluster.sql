-- Several server nodes on one database. Each node beats in `server_nodes`; an agent's live
-- socket is recorded by the node that holds it (written in batches, see `cluster::presence`),
-- so every node can tell whether an agent is online; a node whose beat stopped is dead and
-- its agents count as offline. Background work runs on the node holding its lease.
CREATE TABLE server_nodes (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    last_beat BIGINT NOT NULL
);

ALTER TABLE agents ADD COLUMN connected_node TEXT;
ALTER TABLE agents ADD COLUMN legacy_poll_at BIGINT;
CREATE INDEX idx_agents_connected_node ON agents (connected_node);

CREATE TABLE cluster_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
