-- Per-key token buckets shared by every replica (limits.SharedRateLimiter): tokens left, and when.
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at DOUBLE PRECISION NOT NULL
);
