-- Which migrations of each plugin this site's database has applied (host/src/plugins/schema.rs).
-- A host table: in the schema `hearth`, out of every plugin role's reach (made here too, for
-- a database whose 0400 comes later, as in tests/tests/pg_roles.rs).
CREATE SCHEMA IF NOT EXISTS hearth;
REVOKE ALL ON SCHEMA hearth FROM PUBLIC;
CREATE TABLE hearth.plugin_migrations (
    plugin TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (plugin, version)
);
