-- An answer names the trace that produced it; forgetting a key deletes its traces by an index.
ALTER TABLE messages ADD COLUMN trace_id TEXT;
CREATE INDEX traces_by_key ON traces (key);
