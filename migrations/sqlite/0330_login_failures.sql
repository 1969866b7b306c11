-- Failed sign-ins per account and per address, in the site's database so that every
-- process serving the site counts them together (they were per process before).
CREATE TABLE oauth_login_failures (
    login_key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    since BIGINT NOT NULL
);
CREATE INDEX oauth_login_failures_since ON oauth_login_failures (since);
