//! OpenEMR facilities (`facility`): list, read, create and update, with OpenEMR's
//! whitelist, list filters and FacilityValidator rules.

use hearth_emr::crud::Table;
use hearth_emr::prelude::*;

/// The facility resource.
pub struct Facility;

impl Resource for Facility {
    const NAME: &'static str = "facility";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Facilities (OpenEMR facility)";
    const WORDS: &'static [Words] = &[Words::new("facility", "Facilities", "facilities")];
    const WRITES: &'static [&'static str] = &["facility"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/facility", "facility.s", |r| FACILITIES.list(r))
            .acl("admin/users")
            .summary("List facilities")
            .params(emr::LIST_PARAMS)
            .filters(COLUMNS)
            .answers_list(Schema::Row(&[emr::IDS, COLUMNS])),
        Route::get("/api/facility/:fuuid", "facility.r", |r| FACILITIES.get(r))
            .acl("admin/users")
            .summary("Read a facility")
            .answers(Schema::Row(&[emr::IDS, COLUMNS])),
        Route::post("/api/facility", "facility.c", |r| {
            FACILITIES.create_with(r, |fields| {
                // OpenEMR's defaults for a new facility.
                fields.set("date_created", hearth_sdk::time::now().datetime());
                fields.set("primary_business_entity", 1);
                Ok(())
            })
        })
        .acl("admin/super:write")
        .summary("Create a facility")
        .accepts(Schema::Body(&[COLUMNS], &["name", "facility_npi"]))
        .answers(emr::CREATED_ID_UUID),
        Route::put("/api/facility/:fuuid", "facility.u", |r| {
            FACILITIES.update(r)
        })
        .acl("admin/super:write")
        .summary("Update a facility")
        .accepts(Schema::Body(&[COLUMNS], &[]))
        .answers(Schema::Row(&[emr::IDS, COLUMNS])),
    ];
}

hearth_sdk::export!(Facility);

/// Facilities are named by uuid; lists filter exactly on any whitelisted column and sort
/// by name unless `_sort` says otherwise.
const FACILITIES: Table = Table {
    table: "facility",
    alias: "f",
    select: "SELECT f.* FROM facility f",
    param: "fuuid",
    patient: "",
    only: "",
    stamp: "last_updated",
    columns: COLUMNS,
    filters: COLUMNS,
    rules,
    sort: Sort {
        alias: "f",
        keys: &[
            SortKey::column("id"),
            SortKey::column("name"),
            SortKey::column("city"),
            SortKey::column("state"),
            SortKey::column("postal_code"),
            SortKey::column("country_code"),
            SortKey::column("facility_npi"),
            SortKey::column("facility_code"),
            SortKey::column("last_updated"),
        ],
        default: "name",
        tiebreak: "id",
    },
    map: Json::from_row,
};

/// OpenEMR's whitelist: the columns a body may set and a list may filter on (exactly).
const COLUMNS: &[Column] = &[
    Column::text("name"),
    Column::text("phone"),
    Column::text("fax"),
    Column::text("street"),
    Column::text("city"),
    Column::text("state"),
    Column::text("postal_code"),
    Column::text("country_code"),
    Column::text("federal_ein"),
    Column::text("website"),
    Column::text("email"),
    Column::text("domain_identifier"),
    Column::text("facility_npi"),
    Column::text("facility_taxonomy"),
    Column::text("facility_code"),
    Column::int("billing_location"),
    Column::int("accepts_assignment"),
    Column::text("oid"),
    Column::int("service_location"),
];

/// Optional text fields and their allowed lengths.
const LENGTHS: &[(&str, usize, usize)] = &[
    ("phone", 3, 30),
    ("fax", 3, 30),
    ("city", 2, 255),
    ("state", 2, 50),
    ("street", 2, 255),
    ("postal_code", 2, 11),
    ("country_code", 2, 30),
    ("federal_ein", 2, 15),
    ("facility_code", 2, 31),
    ("facility_taxonomy", 2, 15),
];

/// FacilityValidator; on update every rule is optional but empty values still fail.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("name", "name", insert).length_between(2, 255);
    v.field("facility_npi", "facility_npi", insert)
        .numeric()
        .length_between(10, 15);
    v.optional("domain_identifier", "domain_identifier")
        .numeric()
        .length_between(2, 60);
    for (key, min, max) in LENGTHS {
        v.optional(key, key).length_between(*min, *max);
    }
    v.optional("email", "email").email_address();
    v.optional("website", "website").url();
    for key in ["billing_location", "service_location", "accepts_assignment"] {
        v.optional(key, key).numeric();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const FUUID: &str = "90cde167-0000-4000-8000-0000000000f1";

    fn facility_rows() -> Rows {
        Rows::from_values(
            &["id", "uuid", "name"],
            vec![vec![3.into(), FUUID.into(), "Main Clinic".into()]],
        )
    }

    #[test]
    fn create_answers_201_with_id_and_uuid() {
        let mut host = MockHost::new().on_query(
            "INSERT INTO facility",
            Rows::from_values(&["id"], vec![vec![3.into()]]),
        );
        let response = host.call::<Facility>(TestRequest::post(
            "/api/facility",
            json!({"name": "Main Clinic", "facility_npi": "1234567890", "billing_location": "1", "color": "ignored"}),
        ));
        assert_eq!(response.status, 201, "{}", response.text());
        let data = &response.body_json()["data"];
        assert_eq!(data["id"], 3);
        assert_eq!(data["uuid"], "00000000-0000-4000-8000-000000000001");
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.contains(r#""billing_location""#) && !sql.contains("color"),
            "{sql}"
        );
        assert!(params.contains(&Value::Integer(1)));
    }

    #[test]
    fn create_reports_each_facility_rule() {
        let mut host = MockHost::new();
        let response = host.call::<Facility>(TestRequest::post(
            "/api/facility",
            json!({"name": "X", "facility_npi": "12ab", "phone": "1", "email": "nope", "website": "ftp://x", "service_location": "yes", "domain_identifier": "x"}),
        ));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["name"]["LengthBetween::TOO_SHORT"],
            "name must be 2 characters or longer"
        );
        assert_eq!(
            errors["facility_npi"]["Numeric::NOT_NUMERIC"],
            "facility_npi must be numeric"
        );
        assert_eq!(
            errors["facility_npi"]["LengthBetween::TOO_SHORT"],
            "facility_npi must be 10 characters or longer"
        );
        assert_eq!(
            errors["phone"]["LengthBetween::TOO_SHORT"],
            "phone must be 3 characters or longer"
        );
        assert_eq!(
            errors["email"]["Email::INVALID_VALUE"],
            "email must be a valid email address"
        );
        assert_eq!(
            errors["website"]["Url::INVALID_URL"],
            "website must be a valid URL"
        );
        assert_eq!(
            errors["service_location"]["Numeric::NOT_NUMERIC"],
            "service_location must be numeric"
        );
        assert_eq!(
            errors["domain_identifier"]["Numeric::NOT_NUMERIC"],
            "domain_identifier must be numeric"
        );
        assert!(host.writes().is_empty());

        let response = host.call::<Facility>(TestRequest::post("/api/facility", json!({})));
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["name"]["Required::NON_EXISTENT_KEY"],
            "name must be provided, but does not exist"
        );
        assert_eq!(
            errors["facility_npi"]["Required::NON_EXISTENT_KEY"],
            "facility_npi must be provided, but does not exist"
        );
    }

    #[test]
    fn update_takes_partial_bodies_and_answers_the_record() {
        let mut host = MockHost::new()
            .on_execute("UPDATE facility", 1)
            .on_query("FROM facility", facility_rows());
        let response = host.call::<Facility>(TestRequest::put(
            &format!("/api/facility/{FUUID}"),
            json!({"city": "Springfield"}),
        ));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["name"], "Main Clinic");
        let (sql, params) = &host.writes()[0];
        assert!(sql.ends_with(r#"WHERE "uuid" = $3"#), "{sql}");
        assert_eq!(params[2], Value::from(FUUID));

        let response = host.call::<Facility>(TestRequest::put(
            &format!("/api/facility/{FUUID}"),
            json!({"name": ""}),
        ));
        assert_eq!(
            response.body_json()["validationErrors"]["name"]["NotEmpty::EMPTY_VALUE"],
            "name must not be empty"
        );
    }

    #[test]
    fn unknown_facilities_are_404() {
        let mut host = MockHost::new()
            .on_execute("UPDATE facility", 0)
            .on_query("FROM facility", Rows::default());
        let response = host.call::<Facility>(TestRequest::put(
            &format!("/api/facility/{FUUID}"),
            json!({"city": "Springfield"}),
        ));
        assert_eq!(response.status, 404);
        let response = host.call::<Facility>(TestRequest::get(&format!("/api/facility/{FUUID}")));
        assert_eq!(response.status, 404);
        assert_eq!(response.body_json()["data"], json!([]));
        let response = host.call::<Facility>(TestRequest::get("/api/facility/12"));
        assert_eq!(response.status, 400);
    }

    #[test]
    fn list_filters_on_whitelisted_fields_exactly() {
        let mut host = MockHost::new().on_query("FROM facility", facility_rows());
        let response = host.call::<Facility>(TestRequest::get(
            "/api/facility?name=Main%20Clinic&billing_location=1&bogus=1",
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["uuid"], FUUID);
        let (sql, params) = &host.queries()[0];
        assert!(
            sql.contains(
                r#"WHERE f."name" = $1 AND f."billing_location" = $2 ORDER BY f."name" ASC NULLS FIRST, f."id" ASC"#
            ),
            "{sql}"
        );
        assert_eq!(params[1], Value::Integer(1));
        let response = host.call::<Facility>(TestRequest::get("/api/facility?billing_location=x"));
        assert_eq!(response.status, 400);
    }

    #[test]
    fn lists_sort_by_whitelisted_fields_only() {
        let mut host = MockHost::new().on_query("FROM facility", facility_rows());
        let response = host.call::<Facility>(TestRequest::get("/api/facility?_sort=-city,name"));
        assert_eq!(response.status, 200);
        let (sql, _) = &host.queries()[0];
        assert!(
            sql.contains(
                r#"ORDER BY f."city" DESC NULLS LAST, f."name" ASC NULLS FIRST, f."id" ASC LIMIT"#
            ),
            "{sql}"
        );
        let response = host.call::<Facility>(TestRequest::get("/api/facility?_sort=email"));
        assert_eq!(response.status, 400);
        assert!(response.body_json()["validationErrors"]["_sort"].is_object());
    }
}
