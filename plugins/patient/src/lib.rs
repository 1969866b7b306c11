//! OpenEMR patient demographics (`patient_data`): the standard API's patient routes and
//! the portal's own-patient route, with OpenEMR's fields, filters and validation rules.

use hearth_emr::prelude::*;
use hearth_sdk::time;

/// The patient resource.
pub struct Patient;

impl Resource for Patient {
    const NAME: &'static str = "patient";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Patient demographics (OpenEMR patient_data)";
    const WORDS: &'static [Words] = &[Words::new("patient", "Patients", "patients' demographics")];
    const READS: &'static [&'static str] = &["users", "patient_history"];
    const WRITES: &'static [&'static str] = &["patient_data", "sequences"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/patient", "patient.s", list)
            .acl("patients/demo")
            .summary("Search patients")
            .params(emr::LIST_PARAMS)
            .answers_list(PATIENT),
        Route::post("/api/patient", "patient.c", create)
            .acl("patients/demo:write")
            .summary("Create a patient")
            .accepts(Schema::Body(
                &[emr::PATIENT_COLUMNS],
                &["fname", "lname", "sex", "DOB"],
            ))
            .answers(CREATED),
        Route::put("/api/patient/:puuid", "patient.u", update)
            .acl("patients/demo:write")
            .summary("Update a patient")
            .accepts(Schema::Body(&[emr::PATIENT_COLUMNS], &[]))
            .answers(PATIENT),
        Route::get("/api/patient/:puuid", "patient.r", get_one)
            .acl("patients/demo")
            .summary("Read a patient")
            .answers(PATIENT),
        Route::get("/portal/patient", "patient.s", portal_get)
            .summary("Read the signed-in patient")
            .answers(PATIENT),
    ];
}

/// A patient as the routes answer it.
const PATIENT: Schema = Schema::Row(&[
    emr::IDS,
    &[Column::int("pid"), Column::text("pubpid")],
    emr::PATIENT_COLUMNS,
]);

/// What creating a patient answers.
const CREATED: Schema = Schema::Object(&[
    Prop::new("pid", Schema::Integer).required(),
    Prop::new("uuid", Schema::Format("uuid")).required(),
]);

hearth_sdk::export!(Patient);

/// List filters: these match as "contains", the rest of `EXACT_FILTERS` exactly.
const CONTAINS_FILTERS: &[&str] = &["fname", "lname", "street", "city", "state", "postal_code"];
const EXACT_FILTERS: &[&str] = &[
    "ss",
    "phone_home",
    "phone_biz",
    "phone_cell",
    "sex",
    "country_code",
    "email",
    "DOB",
];
/// `_sort` keys: the patient's own fields; oldest record first by default.
const SORT: Sort = Sort {
    alias: "p",
    keys: &[
        SortKey::column("id"),
        SortKey::column("pid"),
        SortKey::column("pubpid"),
        SortKey::column("title"),
        SortKey::column("fname"),
        SortKey::column("lname"),
        SortKey::column("mname"),
        SortKey::column("DOB"),
        SortKey::column("sex"),
        SortKey::column("street"),
        SortKey::column("city"),
        SortKey::column("state"),
        SortKey::column("postal_code"),
        SortKey::column("country_code"),
        SortKey::column("phone_home"),
        SortKey::column("phone_cell"),
        SortKey::column("phone_biz"),
        SortKey::column("email"),
        SortKey::column("status"),
        SortKey::column("date"),
        SortKey::column("regdate"),
        SortKey::column("last_updated"),
    ],
    default: "id",
    tiebreak: "id",
};

/// Every `patient_data` column, and nothing else (OpenEMR strips what it joins in).
const SELECT: &str = "SELECT p.* FROM patient_data p";

fn list(req: &Request) -> Result<Response> {
    let mut search = Search::on("p");
    for (key, value) in req.query_pairs() {
        if CONTAINS_FILTERS.contains(&key.as_str()) {
            search.contains(key, value);
        } else if EXACT_FILTERS.contains(&key.as_str()) {
            search.equals(key, value.as_str());
        }
    }
    search.sort_by(req, &SORT)?;
    // The answer copies every row's members whole and reads a few columns.
    let listing = crud::listing_with(req, &search, SELECT, store::Form::Both)?;
    let histories = previous_names(listing.rows().filter_map(|r| r.int("pid")))?;
    let mut items = Json::array();
    for row in listing.rows() {
        items.push(patient_json(&row, &histories));
    }
    Ok(req.list(items.end(), listing.links()))
}

fn get_one(req: &Request) -> Result<Response> {
    let puuid = req.uuid("puuid")?;
    Ok(req.ok(find(&puuid)?.ok_or_else(ApiError::not_found)?))
}

fn portal_get(req: &Request) -> Result<Response> {
    let puuid = req
        .caller()
        .patient
        .clone()
        .ok_or_else(ApiError::not_found)?;
    Ok(req.ok(find(&puuid)?.ok_or_else(ApiError::not_found)?))
}

fn create(req: &Request) -> Result<Response> {
    let body = req.json_object()?;
    emr::validate_patient(&body, true)?;
    let fields = Fields::from_json(&body, emr::PATIENT_COLUMNS)?;
    let pid = store::query_one(
        "UPDATE sequences SET value = value + 1 WHERE name = 'pid' RETURNING value",
        params![],
    )?
    .and_then(|row| row.int("value"))
    .ok_or_else(|| ApiError::Internal("the pid sequence is missing".into()))?;
    let uuid = hearth_sdk::new_uuid();
    let now = time::now().datetime();
    let user = staff_id(req)?;
    let pubpid = match fields.get("pubpid") {
        Some(Value::Text(p)) if !p.is_empty() => p.clone(),
        _ => pid.to_string(),
    };
    emr::new_patient(uuid.as_str(), pid, pubpid, &now)
        .set("created_by", user)
        .set("updated_by", user)
        .fields(&fields)
        .run()?;
    let mut data = Json::object();
    data.field("pid", pid).field("uuid", uuid);
    Ok(req.created(data.end()))
}

fn update(req: &Request) -> Result<Response> {
    let puuid = req.uuid("puuid")?;
    let body = req.json_object()?;
    emr::validate_patient(&body, false)?;
    let fields = Fields::from_json(&body, emr::PATIENT_COLUMNS)?;
    let changed = Update::table("patient_data")
        .fields(&fields)
        .set("last_updated", time::now().datetime())
        .set("updated_by", staff_id(req)?)
        .filter("uuid", puuid.as_str())
        .run()?;
    if changed == 0 {
        return Err(unknown_patient(req, &puuid));
    }
    Ok(req.ok(find(&puuid)?.ok_or_else(ApiError::not_found)?))
}

/// A 404, or on a site in OpenEMR compatibility OpenEMR's update answer for a uuid no
/// patient has: a 400 keyed by the uuid.
fn unknown_patient(req: &Request, puuid: &str) -> ApiError {
    if !req.openemr_compatible() {
        return ApiError::not_found();
    }
    let mut reasons = Json::object();
    reasons.field(puuid, format!("UUID {puuid} does not exist"));
    let mut errors = Json::object();
    errors.field("uuid", reasons.end());
    ApiError::Validation(errors.end())
}

/// The patient with `puuid` in OpenEMR's response shape.
fn find(puuid: &str) -> Result<Option<Json>> {
    let rows = store::query_with(
        &format!("{SELECT} WHERE p.uuid = $1"),
        params![puuid],
        store::Form::Both,
    )?;
    let Some(row) = rows.get(0) else {
        return Ok(None);
    };
    let histories = previous_names(row.int("pid"))?;
    Ok(Some(patient_json(&row, &histories)))
}

/// Name history rows of the given patients, newest first.
fn previous_names(pids: impl IntoIterator<Item = i64>) -> Result<Rows> {
    let pids: Vec<Value> = pids.into_iter().map(Value::from).collect();
    if pids.is_empty() {
        return Ok(Rows::default());
    }
    let placeholders: Vec<String> = (1..=pids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT pid, {} FROM patient_history \
         WHERE history_type_key = 'name_history' AND pid IN ({}) ORDER BY date DESC, id DESC",
        NAME_PARTS.join(", "),
        placeholders.join(", ")
    );
    Ok(store::query(&sql, &pids)?)
}

/// A previous name's columns, which are also its keys in `previous_names`.
const NAME_PARTS: [&str; 6] = emr::PREVIOUS_NAME_PARTS;

/// OpenEMR's display form of a previous name.
fn formatted_name(h: &Row<'_>) -> String {
    let part = |i: usize| h.text(NAME_PARTS[i]);
    emr::formatted_previous_name([part(0), part(1), part(2), part(3), part(4), part(5)])
}

/// The suffix OpenEMR answers (see [`emr::patient_suffix`]).
fn suffix<'r>(row: &'r Row<'_>) -> Option<&'r str> {
    emr::patient_suffix(row.text("suffix"), row.text("lname"))
}

/// Every `patient_data` column, with `suffix` as OpenEMR reads it, then OpenEMR's derived
/// `previous_names` and `addresses` (the main address first, dated by the record).
fn patient_json(row: &Row<'_>, histories: &Rows) -> Json {
    let pid = row.int("pid");
    let mut names = Json::array();
    for h in histories.iter().filter(|h| h.int("pid") == pid) {
        let mut name = Json::object();
        for part in NAME_PARTS {
            name.field(part, h.get(part));
        }
        name.field("formatted_name", formatted_name(&h));
        names.push(name.end());
    }
    let text = |column: &str| row.text(column).unwrap_or_default();
    let mut address = Json::object();
    address
        .field("id", None::<i64>)
        .field("contact_id", None::<i64>)
        .field("contact_address_id", None::<i64>)
        .field("period_start", row.get("date"))
        .field("period_end", None::<&str>)
        .field("type", "both")
        .field("use", "home")
        .field("priority", 0)
        .field("line1", text("street"))
        .field("line2", text("street_line_2"))
        .field("city", text("city"))
        .field("district", text("county"))
        .field("state", text("state"))
        .field("postal_code", text("postal_code"))
        .field("country_code", text("country_code"));
    let mut addresses = Json::array();
    addresses.push(address.end());
    let mut out = Json::object_with_capacity(row.json_size_hint() + 512);
    let stored = row.text("suffix").is_some_and(|s| !s.is_empty());
    let suffix = suffix(row);
    if stored || (suffix.is_none() && row.get("suffix").is_null()) {
        // The stored value is the answer: the row's members as they are.
        out.row(row);
    } else {
        out.row_except(row, &["suffix"]).field("suffix", suffix);
    }
    out.field("previous_names", names.end())
        .field("addresses", addresses.end());
    out.end()
}

/// The caller's `users.id`, for `created_by`/`updated_by` (none for non-staff callers).
fn staff_id(req: &Request) -> Result<Option<i64>> {
    if req.caller().subject.is_empty() {
        return Ok(None);
    }
    Ok(store::query_one(
        "SELECT id FROM users WHERE uuid = $1",
        params![req.caller().subject.as_str()],
    )?
    .and_then(|row| row.int("id")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{HostCall, MockHost, TestRequest};
    use serde_json::json;

    fn patient_rows() -> Rows {
        Rows::from_values(
            &[
                "id",
                "uuid",
                "pid",
                "fname",
                "lname",
                "street",
                "provider_uuid",
            ],
            vec![vec![
                1.into(),
                "90cde167-0000-4000-8000-000000000001".into(),
                1.into(),
                "Ann".into(),
                "Smith".into(),
                "1 Main St".into(),
                Value::Null,
            ]],
        )
    }

    #[test]
    fn create_needs_openemrs_required_fields() {
        let mut host = MockHost::new();
        let response = host.call::<Patient>(TestRequest::post(
            "/api/patient",
            json!({"fname": "Ann", "lname": "S", "DOB": "1990-13-01"}),
        ));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["lname"]["LengthBetween::TOO_SHORT"],
            "Last Name must be 2 characters or longer"
        );
        assert_eq!(
            errors["sex"]["Required::NON_EXISTENT_KEY"],
            "sex must be provided, but does not exist"
        );
        assert_eq!(
            errors["DOB"]["DateTime::INVALID_VALUE"],
            "Date of Birth must be a valid date"
        );
        assert!(errors.get("fname").is_none());
        assert!(
            host.calls().is_empty(),
            "nothing is written when validation fails"
        );
    }

    #[test]
    fn create_takes_the_next_pid_and_answers_201() {
        let mut host = MockHost::new()
            .on_query(
                "UPDATE sequences",
                Rows::from_values(&["value"], vec![vec![42.into()]]),
            )
            .on_query("FROM users", Rows::default())
            .on_execute("INSERT INTO patient_data", 1);
        let response = host.call::<Patient>(TestRequest::post(
            "/api/patient",
            json!({"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1990-01-02", "unknown": "ignored"}),
        ));
        assert_eq!(response.status, 201, "{}", response.text());
        let data = &response.body_json()["data"];
        assert_eq!(data["pid"], 42);
        assert!(data["uuid"].is_string());
        let insert = host
            .queries()
            .into_iter()
            .find(|(sql, _)| sql.starts_with("INSERT"))
            .unwrap();
        assert!(insert.0.contains("\"pubpid\""));
        assert!(
            insert.1.contains(&Value::Text("42".into())),
            "pubpid defaults to the pid"
        );
        assert!(!insert.0.contains("unknown"));
    }

    #[test]
    fn get_one_maps_the_row_and_404s_when_missing() {
        let mut host = MockHost::new()
            .on_query("WHERE p.uuid", patient_rows())
            .on_query("FROM patient_history", Rows::default());
        let response = host.call::<Patient>(TestRequest::get(
            "/api/patient/90cde167-0000-4000-8000-000000000001",
        ));
        assert_eq!(response.status, 200);
        let data = &response.body_json()["data"];
        assert_eq!(data["fname"], "Ann");
        assert_eq!(data["addresses"][0]["line1"], "1 Main St");
        assert_eq!(data["previous_names"], json!([]));
        let forms: Vec<_> = host.query_forms().iter().map(|(_, form)| *form).collect();
        assert_eq!(forms, [store::Form::Both, store::Form::Values]);

        let mut empty = MockHost::new().on_query("WHERE p.uuid", Rows::default());
        let response = empty.call::<Patient>(TestRequest::get(
            "/api/patient/90cde167-0000-4000-8000-000000000002",
        ));
        assert_eq!(response.status, 404);
        assert_eq!(response.body_json()["data"], json!([]));
    }

    #[test]
    fn answers_carry_openemrs_derived_fields_and_nothing_it_strips() {
        let history = Rows::from_values(
            &[
                "pid",
                "previous_name_prefix",
                "previous_name_first",
                "previous_name_middle",
                "previous_name_last",
                "previous_name_suffix",
                "previous_name_enddate",
            ],
            vec![vec![
                1.into(),
                "Ms.".into(),
                "Ann".into(),
                Value::Null,
                "Jones".into(),
                "".into(),
                "2019-04-05".into(),
            ]],
        );
        let patient = Rows::from_values(
            &[
                "id", "uuid", "pid", "fname", "lname", "suffix", "street", "date",
            ],
            vec![vec![
                1.into(),
                "90cde167-0000-4000-8000-000000000001".into(),
                1.into(),
                "Ann".into(),
                "Smith Jr.".into(),
                "".into(),
                "1 Main St".into(),
                "2020-02-03 04:05:06".into(),
            ]],
        );
        let mut host = MockHost::new()
            .on_query("WHERE p.uuid", patient)
            .on_query("FROM patient_history", history);
        let response = host.call::<Patient>(TestRequest::get(
            "/api/patient/90cde167-0000-4000-8000-000000000001",
        ));
        let data = &response.body_json()["data"];
        assert_eq!(data["suffix"], "Jr.", "read off the last name");
        assert_eq!(data["lname"], "Smith Jr.", "which stays as stored");
        assert!(data.get("provider_uuid").is_none());
        assert_eq!(
            data["previous_names"],
            json!([{
                "previous_name_prefix": "Ms.", "previous_name_first": "Ann",
                "previous_name_middle": null, "previous_name_last": "Jones",
                "previous_name_suffix": "", "previous_name_enddate": "2019-04-05",
                "formatted_name": "Ms. Ann Jones 2019-04-05"
            }])
        );
        let address = &data["addresses"][0];
        assert!(address["contact_address_id"].is_null());
        assert_eq!(
            address["period_start"], "2020-02-03 04:05:06",
            "dated by the record"
        );
        assert_eq!(
            (address["type"].as_str(), address["use"].as_str()),
            (Some("both"), Some("home"))
        );
        assert_eq!(address["line1"], "1 Main St");
        assert_eq!(address["line2"], "", "empty, not null, as OpenEMR");
    }

    #[test]
    fn only_whole_trailing_words_are_suffixes() {
        let row = |lname: &str, suffix: Value| {
            Rows::from_values(&["lname", "suffix"], vec![vec![lname.into(), suffix]])
        };
        for (lname, stored, expected) in [
            ("Hawaii", Value::Null, None),
            ("Smith III", Value::Null, Some("III")),
            ("Smith sr", "".into(), Some("sr")),
            ("Smith", "Jr.".into(), Some("Jr.")),
            ("Smith", "".into(), None),
        ] {
            let rows = row(lname, stored);
            assert_eq!(suffix(&rows.get(0).unwrap()), expected, "{lname}");
        }
    }

    #[test]
    fn e_mail_messages_are_openemrs() {
        let mut host = MockHost::new();
        let response = host.call::<Patient>(TestRequest::post(
            "/api/patient",
            json!({"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1990-01-02",
                   "email": "nope", "email_direct": "nope"}),
        ));
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body_json()["validationErrors"],
            json!({"email": {"email": "Email is not a valid email"},
                   "email_direct": {"email_direct": "Trusted Email is not a valid email"}})
        );
    }

    #[test]
    fn an_unknown_patient_is_404_or_openemrs_400() {
        let puuid = "90cde167-0000-4000-8000-000000000009";
        let mut host = MockHost::new()
            .on_query("FROM users", Rows::default())
            .on_execute("UPDATE patient_data", 0);
        let path = format!("/api/patient/{puuid}");
        let response = host.call::<Patient>(TestRequest::put(&path, json!({"fname": "Ann"})));
        assert_eq!(response.status, 404);
        let response =
            host.call::<Patient>(TestRequest::put(&path, json!({"fname": "Ann"})).openemr());
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body_json()["validationErrors"],
            json!({"uuid": {puuid: format!("UUID {puuid} does not exist")}})
        );
    }

    #[test]
    fn malformed_uuids_are_400_without_a_query() {
        let mut host = MockHost::new();
        let response = host.call::<Patient>(TestRequest::get("/api/patient/not-a-uuid"));
        assert_eq!(response.status, 400);
        assert!(response.body_json()["validationErrors"]["puuid"].is_object());
        assert!(host.calls().is_empty());
    }

    #[test]
    fn list_filters_match_like_openemr() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient_rows())
            .on_query("FROM patient_history", Rows::default());
        let response = host.call::<Patient>(TestRequest::get(
            "/api/patient?lname=smi&sex=Female&_sort=-DOB&_limit=1&bogus=1",
        ));
        assert_eq!(response.status, 200);
        let (sql, params) = &host.queries()[0];
        assert!(sql.contains("LOWER(p.\"lname\") LIKE $1"), "{sql}");
        assert!(sql.contains("p.\"sex\" = $2"), "{sql}");
        assert!(sql.contains("ORDER BY p.\"DOB\" DESC"), "{sql}");
        assert_eq!(params[0], Value::Text("%smi%".into()));
        assert!(!sql.contains("bogus"));
        assert!(matches!(host.calls()[0], HostCall::Query { .. }));
        assert_eq!(response.body_json()["data"][0]["lname"], "Smith");
        // The patients come with their members (copied whole) and values (read); the
        // previous names with values only.
        let forms: Vec<_> = host.query_forms().iter().map(|(_, form)| *form).collect();
        assert_eq!(forms, [store::Form::Both, store::Form::Values]);
    }

    #[test]
    fn portal_reads_the_callers_own_record() {
        let mut host = MockHost::new()
            .on_query("WHERE p.uuid", patient_rows())
            .on_query("FROM patient_history", Rows::default());
        let response = host.call::<Patient>(
            TestRequest::get("/portal/patient").as_patient("90cde167-0000-4000-8000-000000000001"),
        );
        assert_eq!(response.status, 200);
        assert_eq!(
            host.queries()[0].1[0],
            Value::Text("90cde167-0000-4000-8000-000000000001".into())
        );
    }
}
