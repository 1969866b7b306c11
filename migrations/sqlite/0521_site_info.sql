-- What `GET /api/version` and `GET /api/product` read: OpenEMR's `version` row (the
-- OpenEMR release whose API Hearth serves, its database and ACL revisions) and
-- `product_registration` (no row: unregistered). Same tables as
-- postgres/0521_site_info.sql.
CREATE TABLE version (
    v_major INTEGER NOT NULL DEFAULT 0,
    v_minor INTEGER NOT NULL DEFAULT 0,
    v_patch INTEGER NOT NULL DEFAULT 0,
    v_realpatch INTEGER NOT NULL DEFAULT 0,
    v_tag TEXT NOT NULL DEFAULT '',
    v_database INTEGER NOT NULL DEFAULT 0,
    v_acl INTEGER NOT NULL DEFAULT 0
);
INSERT INTO version (v_major, v_minor, v_patch, v_realpatch, v_tag, v_database, v_acl)
    VALUES (8, 2, 0, 0, '-dev', 541, 13);

CREATE TABLE product_registration (
    id INTEGER PRIMARY KEY,
    email TEXT,
    opt_out INTEGER NOT NULL DEFAULT 0
);
