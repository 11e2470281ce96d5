-- What each agent says about itself in its reports (host, version, cores, memory, GPU, limits):
-- free-form JSON that TaskDB stores and never reads (TaskDb::agent_seen).
ALTER TABLE agents ADD COLUMN info JSONB NOT NULL DEFAULT 'null';
