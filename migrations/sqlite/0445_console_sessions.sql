-- The admin console's sign-in sessions (`/admin`): the hash of the session cookie, the
-- CSRF token its forms carry, the staff user (an ACL `admin`) who signed in, and when it
-- ends. A host table: no plugin may be granted it.
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
