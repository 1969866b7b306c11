//! OpenEMR practitioners: the rows of `users` that have an NPI. List, read, create and
//! update, with OpenEMR's whitelist, exact list filters and PractitionerValidator rules.

use hearth_emr::crud::Table;
use hearth_emr::prelude::*;

/// The practitioner resource.
pub struct Practitioner;

impl Resource for Practitioner {
    const NAME: &'static str = "practitioner";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Practitioners (OpenEMR users with an NPI)";
    const WORDS: &'static [Words] = &[Words::new("practitioner", "Practitioners", "practitioners")];
    const READS: &'static [&'static str] = &["facility", "list_options"];
    const WRITES: &'static [&'static str] = &["users"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/practitioner", "practitioner.s", |r| {
            PRACTITIONERS.list(r)
        })
        .acl("admin/users")
        .summary("List practitioners")
        .params(emr::LIST_PARAMS)
        .filters(COLUMNS)
        .answers_list(Schema::Row(&[emr::IDS, COLUMNS])),
        Route::get("/api/practitioner/:pruuid", "practitioner.r", |r| {
            PRACTITIONERS.get(r)
        })
        .acl("admin/users")
        .summary("Read a practitioner")
        .answers(Schema::Row(&[emr::IDS, COLUMNS])),
        Route::post("/api/practitioner", "practitioner.c", create)
            .acl("admin/users:write")
            .summary("Create a practitioner")
            .accepts(Schema::Body(&[COLUMNS], &["fname", "lname", "npi"]))
            .answers(emr::CREATED_ID_UUID),
        Route::put("/api/practitioner/:pruuid", "practitioner.u", update)
            .acl("admin/users:write")
            .summary("Update a practitioner")
            .accepts(Schema::Body(&[COLUMNS], &[]))
            .answers(Schema::Row(&[emr::IDS, COLUMNS])),
    ];
}

hearth_sdk::export!(Practitioner);

/// Practitioners are the users with an NPI, named by uuid; lists filter exactly on any
/// whitelisted column and come in id order unless `_sort` says otherwise.
const PRACTITIONERS: Table = Table {
    table: "users",
    alias: "u",
    select: SELECT,
    param: "pruuid",
    patient: "",
    only: "npi <> ''",
    stamp: "last_updated",
    columns: COLUMNS,
    filters: COLUMNS,
    rules,
    sort: Sort {
        alias: "u",
        keys: &[
            SortKey::column("id"),
            SortKey::column("fname"),
            SortKey::column("lname"),
            SortKey::column("mname"),
            SortKey::column("npi"),
            SortKey::column("specialty"),
            SortKey::column("facility_id"),
            SortKey::column("city"),
            SortKey::column("state"),
            SortKey::column("username"),
            SortKey::column("last_updated"),
        ],
        default: "id",
        tiebreak: "id",
    },
    map: Json::from_row,
};

/// OpenEMR's whitelist: what a body may set and a list may filter on (exactly).
const COLUMNS: &[Column] = &[
    Column::text("title"),
    Column::text("fname"),
    Column::text("lname"),
    Column::text("mname"),
    Column::text("federaltaxid"),
    Column::text("federaldrugid"),
    Column::text("upin"),
    Column::int("facility_id"),
    Column::text("facility"),
    Column::text("npi"),
    Column::text("email"),
    Column::text("specialty"),
    Column::text("billname"),
    Column::text("url"),
    Column::text("assistant"),
    Column::text("organization"),
    Column::text("valedictory"),
    Column::text("street"),
    Column::text("streetb"),
    Column::text("city"),
    Column::text("state"),
    Column::text("zip"),
    Column::text("phone"),
    Column::text("fax"),
    Column::text("phonew1"),
    Column::text("phonecell"),
    Column::text("notes"),
    Column::text("state_license_number"),
    Column::text_or_null("username"),
];

/// Every column of OpenEMR's `users` table (OpenEMR answers them all), then the titles
/// it joins in: `abook_title` (address-book type), `physician_title` and
/// `physician_code` (physician type). OpenEMR's retired `password` column and the
/// host's own `role` stay out; credentials live in `users_secure`.
const SELECT: &str = "SELECT u.id, u.uuid, u.username, u.authorized, u.info, u.source, u.fname, \
    u.mname, u.lname, u.suffix, u.federaltaxid, u.federaldrugid, u.upin, u.facility, u.facility_id, \
    u.see_auth, u.active, u.npi, u.title, u.specialty, u.billname, u.email, u.email_direct, \
    u.google_signin_email, u.url, u.assistant, u.organization, u.valedictory, u.street, u.streetb, \
    u.city, u.state, u.zip, u.country_code, u.street2, u.streetb2, u.city2, u.state2, u.zip2, \
    u.country_code2, u.phone, u.fax, u.phonew1, u.phonew2, u.phonecell, u.notes, u.cal_ui, \
    u.taxonomy, u.calendar, u.abook_type, u.default_warehouse, u.irnpool, u.state_license_number, \
    u.weno_prov_id, u.newcrop_user_role, u.cpoe, u.physician_type, u.main_menu_role, \
    u.patient_menu_role, u.portal_user, u.supervisor_id, u.billing_facility, u.billing_facility_id, \
    u.date_created, u.last_updated, ab.title AS abook_title, ph.title AS physician_title, \
    ph.codes AS physician_code \
    FROM users u \
    LEFT JOIN list_options ab ON ab.list_id = 'abook_type' AND ab.option_id = u.abook_type \
    LEFT JOIN list_options ph ON ph.list_id = 'physician_type' AND ph.option_id = u.physician_type";

/// PractitionerValidator; on update every rule is optional but empty values still fail.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("fname", "First Name", insert)
        .length_between(2, 255);
    v.field("lname", "Last Name", insert).length_between(2, 255);
    v.field("npi", "NPI", insert)
        .numeric()
        .length_between(10, 15);
    v.optional("facility_id", "Facility Id")
        .numeric()
        .exists_in("facility", Column::int("id"));
    v.optional("email", "Email").email_address();
    if insert {
        v.optional_allow_empty("username", "Username")
            .unique_in("users", Column::text("username"));
    }
}

fn create(req: &Request) -> Result<Response> {
    PRACTITIONERS.create_with(req, |fields| {
        // `users.username` is unique where set; address-book entries have none.
        if fields.get("username") == Some(&Value::Text(String::new())) {
            fields.set("username", Value::Null);
        }
        fields.set("date_created", hearth_sdk::time::now().datetime());
        Ok(())
    })
}

fn update(req: &Request) -> Result<Response> {
    PRACTITIONERS.update_with(req, |fields| {
        // A user name names a login: renaming one is the host's business, not this route's.
        fields.remove("username");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PRUUID: &str = "90cde167-0000-4000-8000-0000000000a1";

    fn found() -> Rows {
        Rows::from_values(&["found"], vec![vec![1.into()]])
    }

    fn practitioner_rows() -> Rows {
        Rows::from_values(
            &["id", "uuid", "fname", "npi"],
            vec![vec![
                4.into(),
                PRUUID.into(),
                "Gregory".into(),
                "1234567890".into(),
            ]],
        )
    }

    fn valid() -> serde_json::Value {
        json!({"fname": "Gregory", "lname": "House", "npi": "1234567890", "facility_id": "3", "email": "g@example.org"})
    }

    #[test]
    fn create_checks_the_facility_and_answers_201() {
        let mut host = MockHost::new().on_query("FROM facility", found()).on_query(
            "INSERT INTO users",
            Rows::from_values(&["id"], vec![vec![4.into()]]),
        );
        let response = host.call::<Practitioner>(TestRequest::post("/api/practitioner", valid()));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["data"]["id"], 4);
        assert!(response.body_json()["data"]["uuid"].is_string());
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.contains(r#""facility_id""#) && !sql.contains("role"),
            "{sql}"
        );
        assert!(params.contains(&Value::Integer(3)));
    }

    #[test]
    fn a_missing_facility_is_a_400_and_nothing_is_written() {
        let mut host = MockHost::new().on_query("FROM facility", Rows::default());
        let response = host.call::<Practitioner>(TestRequest::post("/api/practitioner", valid()));
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body_json()["validationErrors"]["facility_id"]["Callback::INVALID_VALUE"],
            "Facility Id is invalid"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn create_reports_each_practitioner_rule() {
        let mut host = MockHost::new().on_query("FROM users", found());
        let body = json!({"fname": "G", "npi": "12x", "facility_id": "three", "email": "nope", "username": "taken"});
        let response = host.call::<Practitioner>(TestRequest::post("/api/practitioner", body));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["fname"]["LengthBetween::TOO_SHORT"],
            "First Name must be 2 characters or longer"
        );
        assert_eq!(
            errors["lname"]["Required::NON_EXISTENT_KEY"],
            "lname must be provided, but does not exist"
        );
        assert_eq!(errors["npi"]["Numeric::NOT_NUMERIC"], "NPI must be numeric");
        assert_eq!(
            errors["npi"]["LengthBetween::TOO_SHORT"],
            "NPI must be 10 characters or longer"
        );
        assert_eq!(
            errors["facility_id"]["Numeric::NOT_NUMERIC"],
            "Facility Id must be numeric"
        );
        assert_eq!(
            errors["email"]["Email::INVALID_VALUE"],
            "Email must be a valid email address"
        );
        assert_eq!(
            errors["username"]["Unique::NOT_UNIQUE"],
            "Username is already in use"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn an_empty_username_is_stored_as_none() {
        let mut host = MockHost::new().on_query("FROM facility", found()).on_query(
            "INSERT INTO users",
            Rows::from_values(&["id"], vec![vec![4.into()]]),
        );
        let mut body = valid();
        body["username"] = json!("");
        host.call::<Practitioner>(TestRequest::post("/api/practitioner", body));
        let (sql, params) = &host.writes()[0];
        let position = sql
            .split(", ")
            .position(|c| c.contains(r#""username""#))
            .unwrap();
        assert_eq!(params[position], Value::Null);
    }

    #[test]
    fn update_touches_only_practitioners_and_never_the_username() {
        let mut host = MockHost::new()
            .on_execute("UPDATE users", 1)
            .on_query("FROM users u", practitioner_rows());
        let response = host.call::<Practitioner>(TestRequest::put(
            &format!("/api/practitioner/{PRUUID}"),
            json!({"city": "Princeton", "username": "house"}),
        ));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["fname"], "Gregory");
        let (sql, _) = &host.writes()[0];
        assert!(sql.ends_with(r#"WHERE "uuid" = $3 AND npi <> ''"#), "{sql}");
        assert!(!sql.contains("username"));
    }

    #[test]
    fn users_without_an_npi_are_not_practitioners() {
        let mut host = MockHost::new()
            .on_execute("UPDATE users", 0)
            .on_query("FROM users u", Rows::default());
        let response = host.call::<Practitioner>(TestRequest::put(
            &format!("/api/practitioner/{PRUUID}"),
            json!({"city": "X1"}),
        ));
        assert_eq!(response.status, 404);
        let response =
            host.call::<Practitioner>(TestRequest::get(&format!("/api/practitioner/{PRUUID}")));
        assert_eq!(response.status, 404);
        let (sql, _) = host.queries().pop().unwrap();
        assert!(
            sql.contains(r#"WHERE npi <> '' AND u."uuid" = $1"#),
            "{sql}"
        );
    }

    #[test]
    fn list_shows_only_practitioners_filtered_exactly() {
        let mut host = MockHost::new().on_query("FROM users u", practitioner_rows());
        let response = host.call::<Practitioner>(TestRequest::get(
            "/api/practitioner?lname=House&facility_id=3",
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["uuid"], PRUUID);
        let (sql, params) = &host.queries()[0];
        assert!(
            sql.contains(
                r#"WHERE npi <> '' AND u."lname" = $1 AND u."facility_id" = $2 ORDER BY u."id" ASC NULLS FIRST LIMIT"#
            ),
            "{sql}"
        );
        assert_eq!(params[1], Value::Integer(3));
    }
}
