-- The transcript and the traces, as before versioning (IF NOT EXISTS: such a database takes this again).
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL, conversation TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (key, conversation, id);
CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, trace TEXT NOT NULL, created REAL NOT NULL
);
