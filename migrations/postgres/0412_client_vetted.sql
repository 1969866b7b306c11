-- Whether an administrator has looked at the client (`hearth client enable`). Clients that
-- registered themselves and were enabled automatically (public patient apps) are not
-- vetted: /authorize shows them errors as a page and never redirects an error to them
-- (RFC 9700 section 4.11). Clients registered before this column existed count as vetted.
ALTER TABLE oauth_clients ADD COLUMN vetted BIGINT NOT NULL DEFAULT 1;
