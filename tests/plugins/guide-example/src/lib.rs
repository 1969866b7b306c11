//! The complete example resource of `docs/plugins.md`, built and tested like any plugin.
//! `tests/tests/docs.rs` checks that every Rust block of the guide is a region of this
//! file, so the guide cannot drift from code that compiles.

use hearth_sdk::prelude::*;

/// A read-only view of facilities.
pub struct FacilityLite;

impl Resource for FacilityLite {
    const NAME: &'static str = "facility-lite";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const READS: &'static [&'static str] = &["facility"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/facility-lite", "facility.s", list).summary("List facilities"),
        Route::get("/api/facility-lite/:fuuid", "facility.r", get_one).summary("Read a facility"),
    ];
}

hearth_sdk::export!(FacilityLite);

fn list(req: &Request) -> Result<Response> {
    let paging = req.paging(50, 500)?;
    let rows = store::query(
        "SELECT uuid, name, city FROM facility ORDER BY name LIMIT $1 OFFSET $2",
        params![paging.limit + 1, paging.offset],
    )?;
    let more = rows.len() > paging.limit as usize;
    let mut items = Json::array();
    for row in rows.iter().take(paging.limit as usize) {
        items.push(Json::from_row(&row));
    }
    Ok(Response::list(items.end(), req.paging_links(paging, more)))
}

fn get_one(req: &Request) -> Result<Response> {
    let fuuid = req.uuid("fuuid")?; // a malformed uuid is a 400 naming the parameter
    let row = store::query_one(
        "SELECT uuid, name, city FROM facility WHERE uuid = $1",
        params![&fuuid],
    )?
    .ok_or_else(ApiError::not_found)?;
    log!(
        "facility {fuuid} read in request {}",
        hearth_sdk::request_id()
    );
    Ok(Response::ok(Json::from_one(&row)))
}

/// The guide's validation example, as a route handler would run it.
#[cfg(test)]
mod validation {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    fn check_patient(req: &Request) -> Result<Response> {
        let body = req.json_object()?;
        let mut v = Validator::new(&body);
        v.required("fname", "First name").length_between(1, 255);
        v.required("DOB", "Date of birth").datetime("Y-m-d");
        v.optional("email", "Email").email();
        v.optional("sex", "Sex").list_option("sex"); // a row of list_options
        v.optional("providerID", "Provider")
            .exists_in("users", Column::int("id"));
        v.finish()?; // 400 with every failure at once
        Ok(Response::ok(Json::null()))
    }

    struct Checker;

    impl Resource for Checker {
        const NAME: &'static str = "checker";
        const VERSION: &'static str = "0.1.0";
        const ROUTES: &'static [Route] = &[Route::post("/api/check", "patient.c", check_patient)];
    }

    #[test]
    fn every_failure_is_reported_at_once() {
        let mut host = MockHost::new().on_query("list_options", Rows::default());
        let response = host.call::<Checker>(TestRequest::post(
            "/api/check",
            serde_json::json!({"DOB": "yesterday", "email": "nope", "sex": "Unknown"}),
        ));
        assert_eq!(response.status, 400, "{}", response.text());
        let errors = &response.body_json()["validationErrors"];
        for field in ["fname", "DOB", "email", "sex"] {
            assert!(errors.get(field).is_some(), "{field} in {errors}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{HostCall, MockHost, TestRequest};

    const FUUID: &str = "9b2d1c55-0f4e-4c0c-9d59-1f2a3b4c5d6e";

    #[test]
    fn a_missing_facility_is_a_404() {
        let mut host = MockHost::new().on_query("FROM facility", Rows::default());
        let response =
            host.call::<FacilityLite>(TestRequest::get(&format!("/api/facility-lite/{FUUID}")));
        assert_eq!(response.status, 404);
        assert_eq!(host.queries().len(), 1); // exactly one statement reached the host
    }

    #[test]
    fn a_read_asks_the_host_for_the_row_then_logs_with_the_request_id() {
        let rows = Rows::from_values(
            &["uuid", "name", "city"],
            vec![vec![FUUID.into(), "Clinic".into(), "Bern".into()]],
        );
        let mut host = MockHost::new()
            .with_request_id("req-1")
            .on_query("FROM facility", rows);
        let response =
            host.call::<FacilityLite>(TestRequest::get(&format!("/api/facility-lite/{FUUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["name"], "Clinic");
        let [
            HostCall::Query { sql, params },
            HostCall::RequestId,
            HostCall::Log { message, .. },
        ] = host.calls()
        else {
            panic!("unexpected host calls: {:?}", host.calls());
        };
        assert!(sql.contains("WHERE uuid = $1"), "{sql}");
        assert_eq!(params, &vec![Value::from(FUUID)]);
        assert_eq!(message, &format!("facility {FUUID} read in request req-1"));
    }
}

/// The guide's API description example: the list route, documented.
#[cfg(test)]
mod described {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    /// The columns the list answers.
    const SHOWN: &[Column] = &[
        Column::text("uuid"),
        Column::text("name"),
        Column::text("city"),
    ];

    struct Described;

    impl Resource for Described {
        const NAME: &'static str = "facility-described";
        const VERSION: &'static str = "0.1.0";
        const READS: &'static [&'static str] = &["facility"];
        const WORDS: &'static [Words] = &[Words::new("facility", "Facilities", "facilities")];
        const ROUTES: &'static [Route] = &[Route::get("/api/facility-lite", "facility.s", list)
            .summary("List facilities")
            .params(&[Param::query("_limit", Schema::Numeric, "Rows per page")])
            .answers_list(Schema::Row(&[SHOWN]))];
    }

    fn rows(city: Value) -> Rows {
        Rows::from_values(
            &["uuid", "name", "city"],
            vec![vec![
                "90cde167-0000-4000-8000-0000000000f1".into(),
                "Main".into(),
                city,
            ]],
        )
    }

    #[test]
    fn what_the_route_answers_is_what_it_declares() {
        let mut host = MockHost::new().on_query("FROM facility", rows("Springfield".into()));
        let response = host.call::<Described>(TestRequest::get("/api/facility-lite"));
        assert_eq!(response.status, 200, "{}", response.text());
    }

    #[test]
    #[should_panic(expected = "answered a payload its declared response schema refuses")]
    fn an_answer_that_breaks_the_declaration_fails_the_test() {
        // `city` is text: a number there is not what the route declares.
        let mut host = MockHost::new().on_query("FROM facility", rows(7.into()));
        host.call::<Described>(TestRequest::get("/api/facility-lite"));
    }
}
