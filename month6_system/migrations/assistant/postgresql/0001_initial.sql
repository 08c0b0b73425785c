-- The transcript and the traces (SQLite's 0001 and 0002 in one: PostgreSQL starts at today's schema).
CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL, conversation TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, trace_id TEXT
);
CREATE INDEX messages_by_key ON messages (key, conversation, id);
CREATE TABLE traces (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, trace TEXT NOT NULL, created DOUBLE PRECISION NOT NULL
);
CREATE INDEX traces_by_key ON traces (key);
