//! The visit-note resource, kept in a table of the plugin's own:
//!
//! - `POST /api/visit-note` (scope `visit_note.c`) stores `{"name": "…"}` and answers its id;
//! - `GET /api/visit-note/:id` (scope `visit_note.r`) reads it back.
//!
//! The table `x_visit_note__items` belongs to the plugin: a plugin owns the tables named with
//! its namespace (`x_`, its name with `-` written `_`, then `__`). Its migrations, in
//! `migrations/` (an SQLite and a PostgreSQL text each), travel inside the component; the
//! host applies them on every site that loads the plugin before the plugin serves it, and
//! the plugin reads and writes its own tables without declaring them. A released migration
//! never changes: add the next one (`Migration::new(2, …)`) for every change of schema.

use hearth_sdk::prelude::*;

/// The plugin.
pub struct VisitNote;

impl Resource for VisitNote {
    const NAME: &'static str = "visit-note";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "The visit-note resource";
    const MIGRATIONS: &'static [Migration] = &[Migration::new(
        1,
        "items",
        include_str!("../migrations/0001_items.sqlite.sql"),
        include_str!("../migrations/0001_items.postgres.sql"),
    )];
    const ROUTES: &'static [Route] = &[
        Route::post("/api/visit-note", "visit_note.c", create).summary("Store one visit-note"),
        Route::get("/api/visit-note/:id", "visit_note.r", get_one).summary("Read one visit-note"),
    ];
}

hearth_sdk::export!(VisitNote);

fn create(req: &Request) -> Result<Response> {
    let body = req.json_object()?;
    let name = match body.get("name").and_then(|name| name.as_str()) {
        Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => return Err(ApiError::invalid("name", "required", "name is required")),
    };
    let row = store::query_one(
        "INSERT INTO x_visit_note__items (name) VALUES ($1) RETURNING id, name",
        params![name],
    )?
    .ok_or_else(|| ApiError::Internal("the insert answered no row".into()))?;
    Ok(Response::created(Json::from_one(&row)))
}

fn get_one(req: &Request) -> Result<Response> {
    let id = req.id("id")?;
    let row = store::query_one(
        "SELECT id, name FROM x_visit_note__items WHERE id = $1",
        params![id],
    )?
    .ok_or_else(ApiError::not_found)?;
    Ok(Response::ok(Json::from_one(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    #[test]
    fn an_item_is_stored_in_the_plugins_own_table() {
        let mut host = MockHost::new().on_query(
            "INSERT INTO x_visit_note__items",
            Rows::from_values(&["id", "name"], vec![vec![7.into(), "first".into()]]),
        );
        let post =
            |body: &[u8]| TestRequest::post("/api/visit-note", Default::default()).raw_body(body);
        let response = host.call::<VisitNote>(post(br#"{"name": " first "}"#));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["data"]["id"], 7);
        assert_eq!(host.queries()[0].1, vec![Value::from("first")]);
        let missing = host.call::<VisitNote>(post(b"{}"));
        assert_eq!(missing.status, 400, "{}", missing.text());
    }

    #[test]
    fn an_item_is_read_back_and_a_missing_one_is_404() {
        let mut host = MockHost::new().on_query(
            "WHERE id = $1",
            Rows::from_values(&["id", "name"], vec![vec![7.into(), "first".into()]]),
        );
        let response = host.call::<VisitNote>(TestRequest::get("/api/visit-note/7"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["name"], "first");
        assert_eq!(host.queries()[0].1, vec![Value::Integer(7)]);
        let mut empty =
            MockHost::new().on_query("WHERE id = $1", Rows::from_values(&["id", "name"], vec![]));
        let response = empty.call::<VisitNote>(TestRequest::get("/api/visit-note/8"));
        assert_eq!(response.status, 404, "{}", response.text());
    }
}
