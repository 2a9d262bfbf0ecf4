-- Live command output and the AI task executor.

-- What the agent said it can do in its last `auth` (known names, comma-separated).
ALTER TABLE agents ADD COLUMN capabilities TEXT;

-- claude_task only: where the task runs and the files it gets, as the technician gave them.
ALTER TABLE commands ADD COLUMN working_directory TEXT;
-- A JSON array of strings.
ALTER TABLE commands ADD COLUMN context_files TEXT;

-- Pieces of a running command's output (`command_output`), so a page opened in the middle of
-- a run shows what came before. The final result is the record: pieces of finished commands
-- are removed by the upkeep.
CREATE TABLE command_output (
    command_id TEXT NOT NULL REFERENCES commands (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    data TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (command_id, seq)
);
