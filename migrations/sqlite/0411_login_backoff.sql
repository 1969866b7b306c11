-- Failed sign-ins back off instead of locking: each key (an address and account pair, or
-- an account) is refused until `locked_until` (unix seconds), a time that doubles with
-- each failure past the key's free attempts.
ALTER TABLE oauth_login_failures ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
