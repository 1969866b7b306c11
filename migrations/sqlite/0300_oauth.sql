-- Hearth authorization server: registered clients, refresh tokens, authorization codes,
-- the grant each access token belongs to, used client-assertion ids, and patient portal
-- logins. Same tables and columns as postgres/0300_oauth.sql. Host tables only: no plugin
-- may be granted them.

-- Registered OAuth clients (RFC 7591). Secrets and registration tokens are stored as
-- SHA-256 hashes (they are 256+ random bits, so a slow hash adds nothing).
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    client_secret_hash TEXT,
    registration_token_hash TEXT NOT NULL,
    registration_path TEXT NOT NULL UNIQUE,
    client_name TEXT NOT NULL DEFAULT '',
    application_type TEXT NOT NULL,
    client_role TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    scope TEXT NOT NULL DEFAULT '',
    jwks TEXT,
    jwks_uri TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    enabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Refresh tokens, by hash. A grant (one login or consent) is a chain of rotated refresh
-- tokens sharing `grant_id`; `used` marks a rotated token, whose reuse revokes the grant.
CREATE TABLE oauth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    username TEXT,
    acl_role TEXT,
    scope TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

-- Which grant each access token (api_token.jti) was issued under, so revoking a grant
-- revokes its access tokens.
CREATE TABLE oauth_grant_tokens (
    jti TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL
);
CREATE INDEX oauth_grant_tokens_grant ON oauth_grant_tokens (grant_id);

-- Authorization codes, by hash: single use, short-lived.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    username TEXT,
    acl_role TEXT,
    scope TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    nonce TEXT,
    code_challenge TEXT,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Client-assertion ids (private_key_jwt) already used, kept until they expire.
CREATE TABLE oauth_jti (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

-- Patient portal logins (OpenEMR's patient_access_onsite): the password is an Argon2id
-- PHC string.
CREATE TABLE portal_logins (
    puuid TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    password TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Sign-in sessions of the authorization page, by hash of the cookie value: the validated
-- authorization request, the CSRF token of its forms, and who signed in.
CREATE TABLE oauth_sessions (
    session_hash TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    request TEXT NOT NULL,
    user_id TEXT,
    role TEXT,
    username TEXT,
    acl_role TEXT,
    patient TEXT,
    expires_at INTEGER NOT NULL
);
