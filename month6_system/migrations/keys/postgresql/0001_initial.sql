-- API keys: only their sha256 hashes.
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION
);
