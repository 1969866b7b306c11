CREATE TABLE x_visit_note__items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
