-- `users_secure` without its foreign key to `users`, on SQLite only.
--
-- With foreign keys on, SQLite compiles every INSERT into a parent table with a scan of
-- its child tables (to settle deferred key checks), so an INSERT into `users` reads
-- `users_secure.id`. The plugin SQL gate rightly refuses any read of a host table, so a
-- plugin that writes `users` (practitioners) could not insert at all. The host writes a
-- user and its credentials together in one transaction (`hearth user add`), which is
-- what the key guarded; PostgreSQL keeps the key (its checks run outside the gate).
CREATE TABLE users_secure_new (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    last_update TEXT NOT NULL
);
INSERT INTO users_secure_new (id, username, password, last_update)
    SELECT id, username, password, last_update FROM users_secure;
DROP TABLE users_secure;
ALTER TABLE users_secure_new RENAME TO users_secure;
