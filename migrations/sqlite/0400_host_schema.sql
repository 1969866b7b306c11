-- PostgreSQL moves the host's tables into a schema of their own here (0400_host_schema.sql
-- there). SQLite has no schemas to move them to: on SQLite the authorizer that compiles
-- every plugin statement (host/src/db/grants.rs) refuses the host tables instead. This
-- migration keeps the two lists of versions alike.
SELECT 1;
