CREATE TABLE x_visit_note__items (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL
);
