-- The host's own tables move into the schema `hearth`, out of every plugin role's reach:
-- no privilege on the schema for PUBLIC, so a plugin's role (which only ever gets
-- privileges on the tables of `public` its manifest names) cannot even look a host table
-- up. The clinical tables stay in `public`. The host's connections use
-- `search_path = public, hearth` (host/src/db/mod.rs), so its SQL names tables without
-- a schema; a later migration that creates a host table must name `hearth.` itself.
-- Same host tables as HOST_TABLES in host/src/db/grants.rs.

CREATE SCHEMA IF NOT EXISTS hearth;
REVOKE ALL ON SCHEMA hearth FROM PUBLIC;

ALTER TABLE site_settings SET SCHEMA hearth;
ALTER TABLE signing_keys SET SCHEMA hearth;
ALTER TABLE users_secure SET SCHEMA hearth;
ALTER TABLE api_token SET SCHEMA hearth;
ALTER TABLE api_log SET SCHEMA hearth;
ALTER TABLE oauth_clients SET SCHEMA hearth;
ALTER TABLE oauth_refresh_tokens SET SCHEMA hearth;
ALTER TABLE oauth_codes SET SCHEMA hearth;
ALTER TABLE oauth_jti SET SCHEMA hearth;
ALTER TABLE oauth_login_failures SET SCHEMA hearth;
ALTER TABLE portal_logins SET SCHEMA hearth;
ALTER TABLE oauth_sessions SET SCHEMA hearth;

-- Nobody but the owner creates objects in `public` (PostgreSQL 15's default; databases
-- made by older releases still grant it to PUBLIC).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Nor temporary tables: PUBLIC may create them by default, and a plugin's role needs none.
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
