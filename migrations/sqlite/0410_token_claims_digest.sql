-- The resource server compares each access token's claims with the row written when it
-- was issued: a digest of role, subject, client, scopes, user name, ACL role and patient
-- (docs/security-auth.md). Rows issued before this column existed have none; for them the
-- subject, client and scopes are compared with the row's own columns.
ALTER TABLE api_token ADD COLUMN claims_digest TEXT;
