-- Enrollment that proves identity (issue 10): a site-code or token enrollment whose device id
-- already belongs to an agent makes a new record awaiting approval instead of taking it over.

-- approved | pending. A pending record gets no commands; `claims_agent_id` names the agent it
-- says it is (NULL: a new machine at a site that requires approval).
ALTER TABLE agents ADD COLUMN approval TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE agents ADD COLUMN claims_agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL;
CREATE INDEX idx_agents_claims ON agents (claims_agent_id);

-- A pending record carries the device id it claims, so uniqueness holds among approved agents.
DROP INDEX idx_agents_device;
CREATE UNIQUE INDEX idx_agents_device ON agents (device_id) WHERE device_id IS NOT NULL AND approval = 'approved';

-- 1: every new machine enrolling at this site waits for a technician's approval.
ALTER TABLE sites ADD COLUMN require_approval BIGINT NOT NULL DEFAULT 0;

-- Enrollment tokens: a number of uses, how many were used, and revocation.
ALTER TABLE registration_tokens ADD COLUMN max_uses BIGINT NOT NULL DEFAULT 1;
ALTER TABLE registration_tokens ADD COLUMN uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE registration_tokens ADD COLUMN revoked_at BIGINT;
-- The first characters of the token, so a list can tell tokens apart without the secret.
ALTER TABLE registration_tokens ADD COLUMN hint TEXT NOT NULL DEFAULT '';
