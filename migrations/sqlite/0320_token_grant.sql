-- Every access token names its grant in its own row: issuing a token writes one row
-- where it wrote two (the token and a row of oauth_grant_tokens), and revoking a grant
-- is one statement.
ALTER TABLE api_token ADD COLUMN grant_id TEXT;
UPDATE api_token SET grant_id = (SELECT g.grant_id FROM oauth_grant_tokens g WHERE g.jti = api_token.jti);
CREATE INDEX api_token_grant ON api_token (grant_id) WHERE grant_id IS NOT NULL;
DROP TABLE oauth_grant_tokens;

-- Client-assertion ids are small rows found by their key: kept in the key's own b-tree
-- (WITHOUT ROWID), an insert changes that b-tree and the expiry index, not a table too.
CREATE TABLE oauth_jti_v2 (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) WITHOUT ROWID;
INSERT INTO oauth_jti_v2 (client_id, jti, expires_at) SELECT client_id, jti, expires_at FROM oauth_jti;
DROP TABLE oauth_jti;
ALTER TABLE oauth_jti_v2 RENAME TO oauth_jti;
CREATE INDEX oauth_jti_expiry ON oauth_jti (expires_at);
