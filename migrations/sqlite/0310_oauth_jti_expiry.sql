-- Every private_key_jwt request forgets expired client-assertion ids; without an index
-- on the expiry that was a scan of every id kept (up to five minutes of them).
CREATE INDEX oauth_jti_expiry ON oauth_jti (expires_at);
