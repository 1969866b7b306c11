-- Patient documents, as OpenEMR keeps them: the category tree (`categories`, a path such
-- as `/Categories/Medical Record` names one), the documents (`documents`, `foreign_id` is
-- the patient's pid) and which category holds each (`categories_to_documents`).
--
-- OpenEMR writes a document's bytes to the site's documents folder (or CouchDB) and keeps
-- its path in `documents.url`. Hearth keeps them in the database, in
-- `document_contents` (one row per document): a plugin never sees a file, the request's one
-- transaction covers the row and its bytes together, and replicas on one PostgreSQL share
-- them with nothing else to mount. `documents.hash` is the SHA-256 of the bytes (hex),
-- checked on every download. Same tables as postgres/0510_documents.sql.
CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    value TEXT NOT NULL DEFAULT '',
    parent INTEGER NOT NULL DEFAULT 0,
    lft INTEGER NOT NULL DEFAULT 0,
    rght INTEGER NOT NULL DEFAULT 0,
    aco_spec TEXT NOT NULL DEFAULT 'patients|docs',
    codes TEXT NOT NULL DEFAULT ''
);
-- OpenEMR's shipped categories (ids, names and tree as its database.sql has them), with
-- the LOINC document types Hearth gives them in `codes` (FHIR DocumentReference.type).
INSERT INTO categories (id, name, parent, lft, rght, codes) VALUES
    (1, 'Categories', 0, 0, 29, ''),
    (2, 'Lab Report', 1, 1, 2, 'LOINC:11502-2'),
    (3, 'Medical Record', 1, 3, 4, 'LOINC:11506-3'),
    (4, 'Patient Information', 1, 5, 10, 'LOINC:51851-4'),
    (5, 'Patient ID card', 4, 6, 7, 'LOINC:51851-4'),
    (6, 'Advance Directive', 1, 11, 18, 'LOINC:42348-3'),
    (7, 'Do Not Resuscitate Order', 6, 12, 13, 'LOINC:42348-3'),
    (8, 'Durable Power of Attorney', 6, 14, 15, 'LOINC:42348-3'),
    (9, 'Living Will', 6, 16, 17, 'LOINC:42348-3'),
    (10, 'Patient Photograph', 4, 8, 9, 'LOINC:72170-4'),
    (11, 'CCR', 1, 19, 20, 'LOINC:34133-9'),
    (12, 'CCD', 1, 21, 22, 'LOINC:34133-9'),
    (13, 'CCDA', 1, 23, 24, 'LOINC:34133-9'),
    (14, 'Imaging', 1, 25, 26, 'LOINC:18748-4'),
    (15, 'Onsite Portal', 1, 27, 28, 'LOINC:51851-4');

CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL DEFAULT 'file_url',
    size INTEGER NOT NULL DEFAULT 0,
    date TEXT,
    url TEXT NOT NULL DEFAULT '',
    mimetype TEXT NOT NULL DEFAULT '',
    pages INTEGER,
    owner INTEGER,
    revision TEXT,
    foreign_id INTEGER,
    docdate TEXT,
    hash TEXT NOT NULL DEFAULT '',
    list_id INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL DEFAULT '',
    storagemethod INTEGER NOT NULL DEFAULT 0,
    encounter_id INTEGER NOT NULL DEFAULT 0,
    date_expires TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX documents_patient ON documents (foreign_id);

CREATE TABLE categories_to_documents (
    category_id INTEGER NOT NULL,
    document_id INTEGER NOT NULL,
    PRIMARY KEY (category_id, document_id)
);
CREATE INDEX categories_to_documents_document ON categories_to_documents (document_id);

-- The bytes of each document (Hearth's storage; see above).
CREATE TABLE document_contents (
    document_id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
