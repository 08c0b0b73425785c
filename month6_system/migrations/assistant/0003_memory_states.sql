-- Month 3's long memory, one constant-size state per key (a few KiB, whatever the key has said).
CREATE TABLE memory_states (
    key TEXT PRIMARY KEY, tokens INTEGER NOT NULL, state BLOB NOT NULL, updated REAL NOT NULL
);
