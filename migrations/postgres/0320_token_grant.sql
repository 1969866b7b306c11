-- Every access token names its grant in its own row: issuing a token writes one row
-- where it wrote two (the token and a row of oauth_grant_tokens), and revoking a grant
-- is one statement. (On SQLite this migration also keeps oauth_jti WITHOUT ROWID.)
ALTER TABLE api_token ADD COLUMN grant_id TEXT;
UPDATE api_token t SET grant_id = g.grant_id FROM oauth_grant_tokens g WHERE g.jti = t.jti;
CREATE INDEX api_token_grant ON api_token (grant_id) WHERE grant_id IS NOT NULL;
DROP TABLE oauth_grant_tokens;
