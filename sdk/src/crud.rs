//! Reading the rows a route addresses: one row or a 404, and a page of rows with
//! OpenEMR's `links`.
//!
//! Every table-backed resource answers "get one" and "list" the same way; these helpers
//! keep that shape in one place so a plugin only supplies its SQL and its row mapping.
//!
//! ```no_run
//! # use hearth_sdk::prelude::*;
//! const SELECT: &str = "SELECT f.* FROM facility f";
//! fn list(req: &Request) -> Result<Response> {
//!     let mut search = Search::new();
//!     search.sort(None, &[], "f.name, f.id");
//!     crud::page(req, &search, SELECT, Json::from_row)
//! }
//! fn get_one(req: &Request) -> Result<Response> {
//!     let sql = format!("{SELECT} WHERE f.uuid = $1");
//!     Ok(Response::ok(crud::one(&sql, params![req.uuid("fuuid")?], Json::from_row)?))
//! }
//! ```

use crate::json::Json;
use crate::request::Request;
use crate::response::{ApiError, Response, Result};
use crate::sql::Search;
use crate::store::{self, Row, Value};

/// Rows per page when the request names no `_limit`.
pub const DEFAULT_LIMIT: u32 = 100;

/// The most rows one page may hold, as OpenEMR caps `_limit`.
pub const MAX_LIMIT: u32 = 200;

/// Runs `sql` and maps its first row; a 404 when there is none.
pub fn one(sql: &str, params: &[Value], map: impl Fn(&Row<'_>) -> Json) -> Result<Json> {
    let rows = store::query(sql, params)?;
    rows.get(0).map(|row| map(&row)).ok_or(ApiError::NotFound)
}

/// Runs `select` with `search`'s conditions and maps the first row; a 404 when there is
/// none.
pub fn find(search: &Search, select: &str, map: impl Fn(&Row<'_>) -> Json) -> Result<Json> {
    let rows = search.query(select, 1, 0)?;
    rows.get(0).map(|row| map(&row)).ok_or(ApiError::NotFound)
}

/// Every row `select` finds with `search`'s conditions, mapped, as a JSON array (for the
/// routes where OpenEMR answers a single item as a one-element list). An empty result is
/// a 404.
pub fn find_all(search: &Search, select: &str, map: impl Fn(&Row<'_>) -> Json) -> Result<Json> {
    let rows = search.query(select, MAX_LIMIT, 0)?;
    if rows.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut items = Json::array();
    for row in rows.iter() {
        items.push(map(&row));
    }
    Ok(items.end())
}

/// One page of `select` with `search`'s conditions and order: `_limit` (default
/// [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]) and `_offset` from the request, each row
/// mapped with `map`, and `links` to the first, previous and next pages. An empty page
/// is a 200 with `data: []`.
pub fn page(
    req: &Request,
    search: &Search,
    select: &str,
    map: impl Fn(&Row<'_>) -> Json,
) -> Result<Response> {
    let paging = req.paging(DEFAULT_LIMIT, MAX_LIMIT)?;
    // One row more than the page tells whether a next page exists.
    let rows = search.query(select, paging.limit + 1, paging.offset)?;
    let more = rows.len() > paging.limit as usize;
    let mut items = Json::array();
    for row in rows.iter().take(paging.limit as usize) {
        items.push(map(&row));
    }
    Ok(Response::list(items.end(), req.paging_links(paging, more)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{MockHost, TestRequest};
    use serde_json::json;

    struct Things;
    impl Resource for Things {
        const NAME: &'static str = "things";
        const VERSION: &'static str = "0.1.0";
        const ROUTES: &'static [Route] = &[
            Route::get("/api/thing", "thing.s", |r| {
                crud::page(r, &Search::new(), "SELECT * FROM thing", Json::from_row)
            }),
            Route::get("/api/thing/:id", "thing.r", |r| {
                Ok(Response::ok(crud::one(
                    "SELECT * FROM thing WHERE id = $1",
                    params![r.id("id")?],
                    Json::from_row,
                )?))
            }),
        ];
    }

    fn rows(n: i64) -> Rows {
        Rows::from_values(&["id"], (1..=n).map(|i| vec![i.into()]).collect())
    }

    #[test]
    fn a_page_asks_for_one_row_more_to_know_of_a_next_page() {
        let mut host = MockHost::new().on_query("FROM thing", rows(3));
        let response = host.call::<Things>(TestRequest::get("/api/thing?_limit=2&_offset=4"));
        assert_eq!(response.status, 200);
        let body = response.body_json();
        assert_eq!(body["data"], json!([{"id": 1}, {"id": 2}]));
        assert!(
            body["links"]["next"]
                .as_str()
                .unwrap()
                .ends_with("_offset=6&_limit=2")
        );
        assert!(body["links"]["previous"].is_string());
        assert_eq!(
            host.queries()[0].1,
            vec![Value::Integer(3), Value::Integer(4)]
        );
    }

    #[test]
    fn limits_are_capped_and_default() {
        let mut host = MockHost::new().on_query("FROM thing", rows(0));
        host.call::<Things>(TestRequest::get("/api/thing?_limit=5000"));
        host.call::<Things>(TestRequest::get("/api/thing"));
        let queries = host.queries();
        assert_eq!(queries[0].1[0], Value::Integer(i64::from(MAX_LIMIT) + 1));
        assert_eq!(
            queries[1].1[0],
            Value::Integer(i64::from(DEFAULT_LIMIT) + 1)
        );
    }

    #[test]
    fn one_row_or_a_404_with_the_envelope() {
        let mut host = MockHost::new().on_query("FROM thing", rows(0));
        let response = host.call::<Things>(TestRequest::get("/api/thing/4"));
        assert_eq!(response.status, 404);
        assert_eq!(
            response.body_json(),
            json!({"validationErrors": [], "internalErrors": [], "data": [], "links": []})
        );
    }
}
