-- Client secrets minted and not yet used, shared by every node (each starts one session).
CREATE TABLE IF NOT EXISTS client_secrets (
    hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    session TEXT,
    key_hash TEXT
);
CREATE INDEX IF NOT EXISTS client_secrets_by_expiry ON client_secrets (expires_at);
