-- Bulk Data export jobs (`/fhir/$export`): who asked (the owner's token claims, so the
-- export runs with its scopes), what was asked (the plan), how far it got (the files
-- finished and where the next one starts), and which host process holds it (`lease_owner`
-- until `lease_until`, seconds since the epoch). A host table: no plugin may be granted it.
CREATE TABLE bulk_jobs (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    request TEXT NOT NULL,
    plan TEXT NOT NULL,
    progress TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    transaction_time TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    expires_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_poll_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bulk_jobs_status ON bulk_jobs (status, lease_until);
CREATE INDEX bulk_jobs_client ON bulk_jobs (client_id);
