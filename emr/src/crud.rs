//! Reading the rows a route addresses: one row or a 404, and a list with OpenEMR's
//! `links` (every row unless the client pages); and [`Table`], the
//! list/read/create/update routes of a table whose rows are named by uuid, in one
//! declaration.
//!
//! Every table-backed resource answers "get one" and "list" the same way; these helpers
//! keep that shape in one place so a plugin only supplies its SQL and its row mapping.
//!
//! ```no_run
//! # use hearth_emr::prelude::*;
//! const SELECT: &str = "SELECT f.* FROM facility f";
//! const SORT: Sort = Sort {
//!     alias: "f",
//!     keys: &[SortKey::column("name"), SortKey::column("city")],
//!     default: "name",
//!     tiebreak: "id",
//! };
//! fn list(req: &Request) -> Result<Response> {
//!     let mut search = Search::new();
//!     search.sort_by(req, &SORT)?;
//!     crud::page(req, &search, SELECT, Json::from_row)
//! }
//! fn get_one(req: &Request) -> Result<Response> {
//!     let sql = format!("{SELECT} WHERE f.uuid = $1");
//!     Ok(req.ok(crud::one(&sql, params![req.uuid("fuuid")?], Json::from_row)?))
//! }
//! ```

use crate::patients;
use hearth_sdk::json::Json;
use hearth_sdk::request::{Request, Window};
use hearth_sdk::response::{ApiError, Response, Result};
use hearth_sdk::sql::{Column, Fields, Insert, Search, Sort, Update};
use hearth_sdk::store::{self, Row, Rows, Value};
use hearth_sdk::validate::Validator;
use hearth_sdk::{new_uuid, time};

/// Rows per page for [`Request::paging`] callers that want a default page.
pub const DEFAULT_LIMIT: u32 = 100;

/// The most rows one page may hold, as OpenEMR caps `_limit`.
pub const MAX_LIMIT: u32 = 200;

pub use hearth_sdk::request::DEFAULT_LIST_CAP;

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

/// The rows of a list a request asks for (see [`Request::window`]), read with one
/// query so they come from one snapshot.
pub struct Listing {
    rows: Rows,
    take: usize,
    links: Json,
}

impl Listing {
    /// The rows to answer, in order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().take(self.take)
    }

    /// The envelope's `links`.
    pub fn links(&self) -> Json {
        self.links.clone()
    }
}

/// The rows of `select` with `search`'s conditions and order that the request asks for:
/// a page (`_limit` at most [`MAX_LIMIT`], `_offset`), or, as OpenEMR answers lists,
/// every row when the client names no limit. Every row is at most the site's list cap
/// ([`Request::list_cap`]); a longer list is a 400 that tells the client to page, never
/// a silently shortened answer.
pub fn listing(req: &Request, search: &Search, select: &str) -> Result<Listing> {
    listing_with(req, search, select, store::Form::Values)
}

/// [`listing`], its rows in `form` (see [`store::query_with`]): [`store::Form::Both`] for
/// a list that reads some columns and copies every row's members whole.
pub fn listing_with(
    req: &Request,
    search: &Search,
    select: &str,
    form: store::Form,
) -> Result<Listing> {
    let window = req.window(MAX_LIMIT)?;
    // One row more than asked for tells whether more exist.
    let (limit, offset) = match window {
        Window::Page(paging) => (paging.limit, paging.offset),
        Window::Every { offset, cap } => (cap, offset),
    };
    let rows = search.query_with(select, limit.saturating_add(1), offset, form)?;
    let more = rows.len() > limit as usize;
    if more && let Window::Every { cap, .. } = window {
        return Err(too_many_rows(cap));
    }
    let links = req.window_links(window, more);
    Ok(Listing {
        rows,
        take: limit as usize,
        links,
    })
}

/// The answer to a request for every row of a list longer than the site's cap.
pub fn too_many_rows(cap: u32) -> ApiError {
    ApiError::invalid(
        "_limit",
        "Paging::TOO_MANY_ROWS",
        &format!(
            "This list has more than {cap} rows, more than one answer holds on this site; \
             ask for it in pages with _limit (1 to {MAX_LIMIT}) and _offset"
        ),
    )
}

/// A list of `select` with `search`'s conditions and order (see [`listing`]), each row
/// mapped with `map`, in the route's shape: the envelope with `links` to the first,
/// previous and next pages, or a bare array. An empty list is a 200 with no rows.
pub fn page(
    req: &Request,
    search: &Search,
    select: &str,
    map: impl Fn(&Row<'_>) -> Json,
) -> Result<Response> {
    let listing = listing(req, search, select)?;
    let mut items = Json::array();
    for row in listing.rows() {
        items.push(map(&row));
    }
    Ok(req.list(items.end(), listing.links()))
}

/// Validation rules that differ between create (`true`) and update (`false`).
pub type BodyRules = fn(&mut Validator<'_>, bool);

/// A table whose rows routes name by uuid (`/api/facility/:fuuid`, a patient's
/// `/api/patient/:puuid/encounter/:euuid`, ...), served in OpenEMR's shapes: a sorted,
/// filtered page; one row or a 404; a validated create answering `{"id", "uuid"}`; an
/// update of the given columns answering the row.
///
/// Rows of a patient (`patient` names the column with the `pid`) are read and written
/// only through the patient the route names ([`patients::patient`]: `:puuid`, `:pid`, or the
/// portal caller's own), so a row of another patient is a 404 and is never changed.
///
/// ```
/// use hearth_emr::crud::Table;
/// use hearth_emr::prelude::*;
/// const FACILITIES: Table = Table {
///     table: "facility",
///     alias: "f",
///     select: "SELECT f.* FROM facility f",
///     param: "fuuid",
///     patient: "",
///     only: "",
///     stamp: "last_updated",
///     columns: &[Column::text("name"), Column::text("city")],
///     filters: &[Column::text("name")],
///     rules: |v, insert| {
///         v.field("name", "name", insert).length_between(2, 255);
///     },
///     sort: Sort { alias: "f", keys: &[SortKey::column("name")], default: "name", tiebreak: "id" },
///     map: Json::from_row,
/// };
/// struct Facility;
/// impl Resource for Facility {
///     const NAME: &'static str = "facility";
///     const VERSION: &'static str = "0.1.0";
///     const WRITES: &'static [&'static str] = &["facility"];
///     const ROUTES: &'static [Route] = &[
///         Route::get("/api/facility", "facility.s", |r| FACILITIES.list(r)),
///         Route::get("/api/facility/:fuuid", "facility.r", |r| FACILITIES.get(r)),
///         Route::post("/api/facility", "facility.c", |r| FACILITIES.create(r)),
///         Route::put("/api/facility/:fuuid", "facility.u", |r| FACILITIES.update(r)),
///     ];
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The table written, e.g. `facility`.
    pub table: &'static str,
    /// The table's alias in `select`, e.g. `f`.
    pub alias: &'static str,
    /// The `SELECT … FROM <table> <alias> …` that reads rows; conditions are appended.
    pub select: &'static str,
    /// The route parameter holding a row's uuid, e.g. `fuuid`.
    pub param: &'static str,
    /// The column holding the patient's `pid` for rows of a patient, `""` otherwise.
    pub patient: &'static str,
    /// A condition every row served must meet, on bare column names that are unambiguous
    /// in `select` (e.g. `npi <> ''`: practitioners are the users with an NPI); `""` for
    /// none.
    pub only: &'static str,
    /// The column stamped with the current time on create and update, `""` for none.
    pub stamp: &'static str,
    /// The columns a body may set.
    pub columns: &'static [Column],
    /// The query parameters a list filters on exactly (OpenEMR's search fields).
    pub filters: &'static [Column],
    /// The body's rules (`true` on create).
    pub rules: BodyRules,
    /// How lists may be sorted.
    pub sort: Sort,
    /// Maps a row of `select` to the answer's shape.
    pub map: fn(&Row<'_>) -> Json,
}

impl Table {
    /// The route's patient's `pid` for rows of a patient (404 when there is none),
    /// `None` for other tables.
    pub fn pid(&self, req: &Request) -> Result<Option<i64>> {
        if self.patient.is_empty() {
            return Ok(None);
        }
        Ok(Some(patients::patient(req)?.pid))
    }

    /// A search of the rows of patient `pid` (see [`Table::pid`]) that meet `only`.
    pub fn search(&self, pid: Option<i64>) -> Search {
        let mut search = Search::on(self.alias);
        if let Some(pid) = pid {
            search.equals(self.patient, pid);
        }
        if !self.only.is_empty() {
            search.condition(self.only, vec![]);
        }
        search
    }

    /// The list route: the rows the route may see, filtered by the request's `filters`
    /// parameters, sorted by `_sort`, a page at a time.
    pub fn list(&self, req: &Request) -> Result<Response> {
        let mut search = self.search(self.pid(req)?);
        search
            .filter_exact(req.query_pairs(), self.filters)?
            .sort_by(req, &self.sort)?;
        page(req, &search, self.select, self.map)
    }

    /// The row of patient `pid` named `uuid`; a 404 when there is none.
    pub fn read(&self, pid: Option<i64>, uuid: &str) -> Result<Json> {
        let mut search = self.search(pid);
        search.equals("uuid", uuid);
        find(&search, self.select, self.map)
    }

    /// The read route: the row the uuid route parameter names (400 for a malformed
    /// uuid, 404 when the route may not see such a row).
    pub fn get(&self, req: &Request) -> Result<Response> {
        let pid = self.pid(req)?;
        Ok(req.ok(self.read(pid, &req.uuid(self.param)?)?))
    }

    /// The body's columns, checked by the rules and by type (a 400 names each field).
    pub fn fields(&self, req: &Request, insert: bool) -> Result<Fields> {
        let rules = self.rules;
        req.fields(self.columns, |v| rules(v, insert))
    }

    /// Inserts a row of patient `pid` with `fields`, a new uuid and the stamp, plus the
    /// columns `insert` already sets; answers its `id` and `uuid`.
    pub fn insert(
        &self,
        mut insert: Insert,
        pid: Option<i64>,
        fields: &Fields,
    ) -> Result<(i64, String)> {
        let uuid = new_uuid();
        insert.set("uuid", uuid.as_str());
        if let Some(pid) = pid {
            insert.set(self.patient, pid);
        }
        if !self.stamp.is_empty() {
            insert.set(self.stamp, time::now().datetime());
        }
        let id = insert.fields(fields).insert_id()?;
        Ok((id, uuid))
    }

    /// The create route: 404 for a missing patient, 400 for a body that breaks the
    /// rules, else inserts and answers 201 `{"id", "uuid"}`.
    pub fn create(&self, req: &Request) -> Result<Response> {
        self.create_with(req, |_| Ok(()))
    }

    /// [`Table::create`] with `adjust` changing the validated fields before the insert
    /// (defaults, values a column stores differently, ...).
    pub fn create_with(
        &self,
        req: &Request,
        adjust: impl FnOnce(&mut Fields) -> Result<()>,
    ) -> Result<Response> {
        let pid = self.pid(req)?;
        let mut fields = self.fields(req, true)?;
        adjust(&mut fields)?;
        let (id, uuid) = self.insert(Insert::into(self.table), pid, &fields)?;
        Ok(req.created(Json::object().field("id", id).field("uuid", uuid).end()))
    }

    /// The update route: 404 for a missing patient, 400 for a malformed uuid or a body
    /// that breaks the rules (each optional on update); then writes the given columns
    /// and the stamp to the row (404 when the route may not see it, and nothing changes)
    /// and answers the row.
    pub fn update(&self, req: &Request) -> Result<Response> {
        self.update_with(req, |_| Ok(()))
    }

    /// [`Table::update`] with `adjust` changing the validated fields before the write.
    pub fn update_with(
        &self,
        req: &Request,
        adjust: impl FnOnce(&mut Fields) -> Result<()>,
    ) -> Result<Response> {
        let pid = self.pid(req)?;
        let uuid = req.uuid(self.param)?;
        let mut fields = self.fields(req, false)?;
        adjust(&mut fields)?;
        let mut update = Update::table(self.table);
        if !self.stamp.is_empty() {
            update.set(self.stamp, time::now().datetime());
        }
        update.fields(&fields).filter("uuid", uuid.as_str());
        if let Some(pid) = pid {
            update.filter(self.patient, pid);
        }
        if !self.only.is_empty() {
            update.condition(self.only, vec![]);
        }
        update.apply()?;
        Ok(req.ok(self.read(pid, &uuid)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
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
    fn limits_are_capped_and_every_row_is_the_default() {
        let mut host = MockHost::new().on_query("FROM thing", rows(0));
        host.call::<Things>(TestRequest::get("/api/thing?_limit=5000"));
        host.call::<Things>(TestRequest::get("/api/thing"));
        host.call::<Things>(TestRequest::get("/api/thing?_limit=0"));
        host.call::<Things>(TestRequest::get("/api/thing").list_cap(7));
        let queries = host.queries();
        assert_eq!(queries[0].1[0], Value::Integer(i64::from(MAX_LIMIT) + 1));
        for (i, cap) in [(1, DEFAULT_LIST_CAP), (2, DEFAULT_LIST_CAP), (3, 7)] {
            assert_eq!(
                queries[i].1[0],
                Value::Integer(i64::from(cap) + 1),
                "every row, up to the cap: one more tells a longer list"
            );
        }
    }

    #[test]
    fn every_row_is_answered_up_to_the_cap_then_the_client_is_told_to_page() {
        let mut host = MockHost::new().on_query("FROM thing", rows(3));
        let response = host.call::<Things>(TestRequest::get("/api/thing").list_cap(3));
        assert_eq!(response.status, 200);
        let body = response.body_json();
        assert_eq!(body["data"].as_array().unwrap().len(), 3);
        assert_eq!(
            body["links"],
            json!({"first": "https://localhost/apis/default/api/thing?_offset=0&_limit=0"})
        );
        let response = host.call::<Things>(TestRequest::get("/api/thing").list_cap(2));
        assert_eq!(response.status, 400, "never a silently short list");
        let message = response.body_json()["validationErrors"]["_limit"]["Paging::TOO_MANY_ROWS"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("more than 2 rows") && message.contains("_limit"),
            "{message}"
        );
    }

    #[test]
    fn openemr_sites_read_malformed_paging_numbers_as_absent() {
        let mut host = MockHost::new().on_query("FROM thing", rows(1));
        let strict = host.call::<Things>(TestRequest::get("/api/thing?_limit=ten"));
        assert_eq!(strict.status, 400);
        let lenient =
            host.call::<Things>(TestRequest::get("/api/thing?_limit=ten&_offset=-1").openemr());
        assert_eq!(lenient.status, 200, "{}", lenient.text());
        assert_eq!(
            host.queries().last().unwrap().1,
            vec![
                Value::Integer(i64::from(DEFAULT_LIST_CAP) + 1),
                Value::Integer(0)
            ]
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

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";
    const RUUID: &str = "90cde167-0000-4000-8000-0000000000e1";

    /// Visits of a patient: rows named by uuid, scoped by patient, with a condition.
    const VISITS: Table = Table {
        table: "visit",
        alias: "v",
        select: "SELECT v.* FROM visit v",
        param: "vuuid",
        patient: "pid",
        only: "deleted = 0",
        stamp: "last_updated",
        columns: &[Column::text("reason"), Column::int("room")],
        filters: &[Column::int("room")],
        rules: |v, insert| {
            v.field("reason", "reason", insert).length_between(2, 255);
        },
        sort: Sort {
            alias: "v",
            keys: &[hearth_sdk::sql::SortKey::column("reason")],
            default: "-id",
            tiebreak: "-id",
        },
        map: Json::from_row,
    };

    struct Visits;
    impl Resource for Visits {
        const NAME: &'static str = "visits";
        const VERSION: &'static str = "0.1.0";
        const ROUTES: &'static [Route] = &[
            Route::get("/api/patient/:puuid/visit", "visit.s", |r| VISITS.list(r)),
            Route::get("/api/patient/:puuid/visit/:vuuid", "visit.r", |r| {
                VISITS.get(r)
            }),
            Route::post("/api/patient/:puuid/visit", "visit.c", |r| {
                VISITS.create_with(r, |fields| {
                    fields.set_default("room", 1);
                    Ok(())
                })
            }),
            Route::put("/api/patient/:puuid/visit/:vuuid", "visit.u", |r| {
                VISITS.update_with(r, |fields| {
                    fields.remove("room");
                    Ok(())
                })
            }),
        ];
    }

    fn patient() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    fn visit() -> Rows {
        Rows::from_values(
            &["id", "uuid", "reason"],
            vec![vec![3.into(), RUUID.into(), "Flu".into()]],
        )
    }

    fn path(rest: &str) -> String {
        format!("/api/patient/{PUUID}/visit{rest}")
    }

    #[test]
    fn a_table_lists_the_patients_rows_filtered_and_sorted() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM visit", visit());
        let response = host.call::<Visits>(TestRequest::get(&path("?room=4&_sort=reason")));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"][0]["reason"], "Flu");
        let (sql, params) = &host.queries()[1];
        assert_eq!(
            sql,
            r#"SELECT v.* FROM visit v WHERE v."pid" = $1 AND deleted = 0 AND v."room" = $2 ORDER BY v."reason" ASC NULLS FIRST, v."id" DESC LIMIT $3 OFFSET $4"#
        );
        assert_eq!(params[..2], [Value::Integer(7), Value::Integer(4)]);
        let response = host.call::<Visits>(TestRequest::get(&path("?_sort=room")));
        assert_eq!(response.status, 400, "room is no sort key");
        let response = host.call::<Visits>(TestRequest::get(&path("?room=four")));
        assert_eq!(response.status, 400, "a filter of the wrong type");
    }

    #[test]
    fn a_table_reads_one_row_of_the_patient_or_404() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM visit", Rows::default());
        let response = host.call::<Visits>(TestRequest::get(&path(&format!("/{RUUID}"))));
        assert_eq!(response.status, 404);
        let (sql, params) = &host.queries()[1];
        assert!(
            sql.contains(r#"WHERE v."pid" = $1 AND deleted = 0 AND v."uuid" = $2"#),
            "{sql}"
        );
        assert_eq!(params[..2], [Value::Integer(7), Value::from(RUUID)]);
        let response = host.call::<Visits>(TestRequest::get(&path("/nope")));
        assert_eq!(response.status, 400, "a malformed uuid");
    }

    #[test]
    fn a_table_creates_rows_for_the_patient_with_a_uuid_and_a_stamp() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query(
                "INSERT INTO visit",
                Rows::from_values(&["id"], vec![vec![3.into()]]),
            );
        let response = host.call::<Visits>(TestRequest::post(&path(""), json!({"reason": "Flu"})));
        assert_eq!(response.status, 201, "{}", response.text());
        let data = response.body_json()["data"].clone();
        assert_eq!(data["id"], 3);
        assert!(
            data["uuid"]
                .as_str()
                .is_some_and(hearth_sdk::request::is_uuid)
        );
        let (sql, params) = &host.writes()[0];
        assert_eq!(
            sql,
            r#"INSERT INTO visit ("uuid", "pid", "last_updated", "reason", "room") VALUES ($1, $2, $3, $4, $5) RETURNING id"#
        );
        assert_eq!(
            params[1..],
            [
                Value::Integer(7),
                Value::from("2024-01-02 03:04:05"),
                Value::from("Flu"),
                Value::Integer(1)
            ]
        );
        let response = host.call::<Visits>(TestRequest::post(&path(""), json!({"room": 2})));
        assert_eq!(response.status, 400, "reason is required on create");
        assert_eq!(host.writes().len(), 1, "nothing written for a bad body");
    }

    #[test]
    fn a_table_creates_nothing_for_a_missing_patient() {
        let mut host = MockHost::new().on_query("FROM patient_data", Rows::default());
        let response = host.call::<Visits>(TestRequest::post(&path(""), json!({"reason": "x"})));
        assert_eq!(response.status, 404, "the patient first, then the body");
        assert!(host.writes().is_empty());
    }

    #[test]
    fn an_unknown_uuid_is_openemrs_400_on_openemr_sites() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM visit", Rows::default());
        let path = path(&format!("/{RUUID}"));
        let hearth = host.call::<Visits>(TestRequest::get(&path));
        assert_eq!(hearth.status, 404);
        let openemr = host.call::<Visits>(TestRequest::get(&path).openemr());
        assert_eq!(openemr.status, 400);
        assert_eq!(
            openemr.body_json()["validationErrors"],
            json!({"uuid": {"invalid or nonexisting value": format!(" value {RUUID}")}})
        );
        let sorted =
            host.call::<Visits>(TestRequest::get(&path_list("?_sort=room,-reason")).openemr());
        assert_eq!(sorted.status, 200, "an unknown _sort name is left out");
        let (sql, _) = host.queries().pop().unwrap();
        assert!(
            sql.contains(r#"ORDER BY v."reason" DESC NULLS LAST, v."id" DESC"#),
            "{sql}"
        );
    }

    fn path_list(query: &str) -> String {
        format!("/api/patient/{PUUID}/visit{query}")
    }

    #[test]
    fn a_table_updates_only_the_patients_row_and_answers_it() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE visit", 1)
            .on_query("FROM visit", visit());
        let body = json!({"reason": "Cold", "room": 9});
        let response = host.call::<Visits>(TestRequest::put(&path(&format!("/{RUUID}")), body));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["uuid"], RUUID);
        let (sql, params) = &host.writes()[0];
        assert_eq!(
            sql,
            r#"UPDATE visit SET "last_updated" = $1, "reason" = $2 WHERE "uuid" = $3 AND "pid" = $4 AND deleted = 0"#,
            "update_with dropped room"
        );
        assert_eq!(params[3], Value::Integer(7));

        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE visit", 0);
        let body = json!({"reason": "Cold"});
        let response = host.call::<Visits>(TestRequest::put(&path(&format!("/{RUUID}")), body));
        assert_eq!(response.status, 404, "another patient's row is not found");
        let response = host.call::<Visits>(TestRequest::put(
            &path(&format!("/{RUUID}")),
            json!({"reason": "C"}),
        ));
        assert_eq!(response.status, 400, "rules run on update too");
    }
}
