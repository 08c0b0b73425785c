-- API keys: only their sha256 hashes (IF NOT EXISTS: a key store from before versioning takes this again).
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created REAL NOT NULL, revoked REAL
);
