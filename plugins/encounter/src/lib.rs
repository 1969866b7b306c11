//! OpenEMR encounters (`form_encounter` plus a `forms` row "New Patient Encounter"):
//! the standard API's per-patient routes and the portal's own-encounter routes, with
//! EncounterValidator's rules and OpenEMR's response fields.

use hearth_emr::crud::Table;
use hearth_emr::prelude::*;
use hearth_sdk::time;

/// The encounter resource.
pub struct Encounter;

impl Resource for Encounter {
    const NAME: &'static str = "encounter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Encounters (OpenEMR form_encounter)";
    const WORDS: &'static [Words] = &[Words::new("encounter", "Encounters", "encounters (visits)")];
    const READS: &'static [&'static str] = &[
        "patient_data",
        "users",
        "facility",
        "list_options",
        "openemr_postcalendar_categories",
    ];
    const WRITES: &'static [&'static str] = &["form_encounter", "forms", "sequences"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/patient/:puuid/encounter", "encounter.s", |r| {
            ENCOUNTERS.list(r)
        })
        .acl("encounters/auth_a")
        .legacy()
        .summary("List a patient's encounters")
        .params(emr::LIST_PARAMS)
        .answers_list(ENCOUNTER),
        Route::post("/api/patient/:puuid/encounter", "encounter.c", create)
            .acl("encounters/auth_a:write")
            .legacy()
            .summary("Create an encounter")
            .accepts(Schema::Body(&[COLUMNS], &["pc_catid", "class_code"]))
            .answers(ENCOUNTER),
        Route::put("/api/patient/:puuid/encounter/:euuid", "encounter.u", |r| {
            ENCOUNTERS.update(r)
        })
        .acl("encounters/auth_a:write")
        .legacy()
        .summary("Update an encounter")
        .accepts(Schema::Body(&[COLUMNS], &[]))
        .answers(ENCOUNTER),
        Route::get("/api/patient/:puuid/encounter/:euuid", "encounter.r", |r| {
            ENCOUNTERS.get(r)
        })
        .acl("encounters/auth_a")
        .legacy()
        .summary("Read an encounter")
        .answers(ENCOUNTER),
        Route::get("/portal/patient/encounter", "encounter.s", |r| {
            ENCOUNTERS.list(r)
        })
        .legacy()
        .summary("List the signed-in patient's encounters")
        .params(emr::LIST_PARAMS)
        .answers_list(ENCOUNTER),
        Route::get("/portal/patient/encounter/:euuid", "encounter.r", |r| {
            ENCOUNTERS.get(r)
        })
        .legacy()
        .summary("Read one of the signed-in patient's encounters")
        .answers(ENCOUNTER),
    ];
}

/// An encounter as the routes answer it.
const ENCOUNTER: Schema = Schema::Row(&[
    emr::IDS,
    &[Column::int("pid"), Column::int("encounter")],
    COLUMNS,
]);

hearth_sdk::export!(Encounter);

/// A patient's encounters, named by uuid; lists come newest number first, as in
/// OpenEMR, unless `_sort` says otherwise.
const ENCOUNTERS: Table = Table {
    table: emr::Form::ENCOUNTER.table,
    alias: "fe",
    select: SELECT,
    param: "euuid",
    patient: "pid",
    only: "",
    stamp: "last_update",
    columns: COLUMNS,
    filters: &[],
    rules,
    sort: Sort {
        alias: "fe",
        keys: &[
            SortKey::column("id"),
            SortKey::renamed("eid", "encounter"),
            SortKey::column("date"),
            SortKey::column("date_end"),
            SortKey::column("onset_date"),
            SortKey::column("reason"),
            SortKey::column("pc_catid"),
            SortKey::column("class_code"),
            SortKey::column("facility_id"),
            SortKey::column("provider_id"),
            SortKey::column("last_update"),
        ],
        default: "-eid",
        tiebreak: "id",
    },
    map: Json::from_row,
};

/// The `form_encounter` columns a body may set; the server sets `id`, `uuid`, `pid`,
/// `encounter` and `last_update`.
const COLUMNS: &[Column] = &[
    Column::datetime("date"),
    Column::text("reason"),
    Column::text("facility"),
    Column::int("facility_id"),
    Column::datetime("onset_date"),
    Column::text("sensitivity"),
    Column::text("billing_note"),
    Column::int("pc_catid"),
    Column::int("last_level_billed"),
    Column::int("last_level_closed"),
    Column::date("last_stmt_date"),
    Column::int("stmt_count"),
    Column::int("provider_id"),
    Column::int("supervisor_id"),
    Column::text("invoice_refno"),
    Column::text("referral_source"),
    Column::int("billing_facility"),
    Column::text("external_id"),
    Column::int("pos_code"),
    Column::int("parent_encounter_id"),
    Column::text("class_code"),
    Column::text_or_null("discharge_disposition"),
    Column::int("referring_provider_id"),
    Column::int("ordering_provider_id"),
    Column::text_or_null("encounter_type_code"),
    Column::text_or_null("encounter_type_description"),
    Column::datetime("date_end"),
];

/// OpenEMR's encounter fields. Providers and referrers resolve only to users with an
/// NPI, as in OpenEMR. Hearth has no Location resources yet, so the location uuids are
/// null.
const SELECT: &str = "SELECT fe.id, fe.uuid, fe.encounter AS eid, fe.uuid AS euuid, fe.date, fe.reason, \
    fe.onset_date, fe.sensitivity, fe.billing_note, fe.pc_catid, cat.pc_catname, fe.last_level_billed, \
    fe.last_level_closed, fe.last_stmt_date, fe.stmt_count, fe.supervisor_id, fe.invoice_refno, \
    fe.referral_source, fe.external_id, fe.last_update, fe.pos_code, fe.class_code, cls.notes AS class_title, \
    p.pid, p.uuid AS puuid, fe.facility_id, fac.uuid AS facility_uuid, fac.name AS facility_name, \
    CAST(NULL AS TEXT) AS facility_location_uuid, fe.billing_facility, bf.id AS billing_facility_id, \
    bf.uuid AS billing_facility_uuid, bf.name AS billing_facility_name, CAST(NULL AS TEXT) AS billing_location_uuid, \
    fe.provider_id, pr.uuid AS provider_uuid, pr.username AS provider_username, fe.referring_provider_id, \
    rp.uuid AS referrer_uuid, rp.username AS referrer_username, fe.ordering_provider_id, \
    fe.discharge_disposition, dd.title AS discharge_disposition_text, fe.date_end \
    FROM form_encounter fe JOIN patient_data p ON p.pid = fe.pid \
    LEFT JOIN openemr_postcalendar_categories cat ON cat.pc_catid = fe.pc_catid \
    LEFT JOIN list_options cls ON cls.list_id = '_ActEncounterCode' AND cls.option_id = fe.class_code \
    LEFT JOIN facility fac ON fac.id = fe.facility_id \
    LEFT JOIN facility bf ON bf.id = fe.billing_facility \
    LEFT JOIN users pr ON pr.id = fe.provider_id AND pr.npi <> '' \
    LEFT JOIN users rp ON rp.id = fe.referring_provider_id AND rp.npi <> '' \
    LEFT JOIN list_options dd ON dd.list_id = 'discharge-disposition' AND dd.option_id = fe.discharge_disposition";

/// Reference columns and the table whose `id` they name (0 means none).
const REFERENCES: &[(&str, &str)] = &[
    ("facility_id", "facility"),
    ("billing_facility", "facility"),
    ("provider_id", "users"),
    ("supervisor_id", "users"),
    ("referring_provider_id", "users"),
    ("ordering_provider_id", "users"),
];

/// EncounterValidator (`pc_catid` and a `class_code` from `_ActEncounterCode` on
/// insert), plus checks that referenced facilities and users exist.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("pc_catid", "pc_catid", insert);
    v.field("class_code", "class_code", insert)
        .list_option("_ActEncounterCode");
    for (key, table) in REFERENCES {
        v.optional_allow_empty(key, key)
            .numeric()
            .reference(table, Column::int("id"));
    }
}

/// Numbers the encounter from the site's sequence, defaults its date to now, and
/// registers it in `forms`, as OpenEMR's EncounterService does; answers the record.
fn create(req: &Request) -> Result<Response> {
    let pid = emr::patient(req)?.pid;
    let mut fields = ENCOUNTERS.fields(req, true)?;
    fields.set_default("date", time::now().datetime());
    let encounter = emr::next_sequence("encounter")?;
    let mut insert = Insert::into(ENCOUNTERS.table);
    insert.set("encounter", encounter);
    let (id, _) = ENCOUNTERS.insert(insert, Some(pid), &fields)?;
    emr::add_form(req, pid, encounter, id, &emr::Form::ENCOUNTER)?;
    let sql = format!("{SELECT} WHERE fe.id = $1");
    let record = crud::one(&sql, params![id], |row| {
        Json::object().row(row).field("encounter", encounter).end()
    })?;
    Ok(req.created(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";
    const EUUID: &str = "90cde167-0000-4000-8000-0000000000e1";

    fn patient() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    fn found() -> Rows {
        Rows::from_values(&["found"], vec![vec![1.into()]])
    }

    fn encounter_rows() -> Rows {
        Rows::from_values(
            &[
                "id",
                "uuid",
                "eid",
                "euuid",
                "pid",
                "puuid",
                "class_code",
                "class_title",
            ],
            vec![vec![
                2.into(),
                EUUID.into(),
                41.into(),
                EUUID.into(),
                7.into(),
                PUUID.into(),
                "AMB".into(),
                "ambulatory".into(),
            ]],
        )
    }

    fn path(rest: &str) -> String {
        format!("/api/patient/{PUUID}/encounter{rest}")
    }

    #[test]
    fn create_numbers_the_encounter_and_adds_its_form() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM list_options", found())
            .on_query("FROM facility", found())
            .on_query("FROM users", found())
            .on_query(
                "UPDATE sequences",
                Rows::from_values(&["value"], vec![vec![41.into()]]),
            )
            .on_query(
                "INSERT INTO form_encounter",
                Rows::from_values(&["id"], vec![vec![2.into()]]),
            )
            .on_query(
                "INSERT INTO forms",
                Rows::from_values(&["id"], vec![vec![9.into()]]),
            )
            .on_query("WHERE fe.id", encounter_rows());
        let body = json!({"pc_catid": "5", "class_code": "AMB", "facility_id": "3", "billing_facility": "3", "provider_id": "1", "reason": "Checkup", "onset_date": ""});
        let response = host.call::<Encounter>(TestRequest::post(&path(""), body));
        assert_eq!(response.status, 201, "{}", response.text());
        let data = &response.body_json()["data"];
        assert_eq!(data["encounter"], 41);
        assert_eq!(data["euuid"], EUUID);
        assert_eq!(data["class_title"], "ambulatory");
        let writes = host.writes();
        assert!(writes[0].0.starts_with("UPDATE sequences"));
        let (sql, params) = &writes[1];
        assert!(sql.starts_with("INSERT INTO form_encounter"));
        assert!(params.contains(&Value::Integer(41)) && params.contains(&Value::Integer(7)));
        assert!(
            params.contains(&Value::Text("2024-01-02 03:04:05".into())),
            "date defaults to now"
        );
        assert!(
            writes[2].1.contains(&Value::from("newpatient"))
                && writes[2].1.contains(&Value::Integer(2))
        );
    }

    #[test]
    fn create_needs_a_category_and_a_known_class() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM list_options", Rows::default());
        let response =
            host.call::<Encounter>(TestRequest::post(&path(""), json!({"class_code": "XYZ"})));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["pc_catid"]["Required::NON_EXISTENT_KEY"],
            "pc_catid must be provided, but does not exist"
        );
        assert_eq!(
            errors["class_code"]["Callback::INVALID_VALUE"],
            "class_code is invalid"
        );
        assert!(host.writes().is_empty());

        let response =
            host.call::<Encounter>(TestRequest::post(&path(""), json!({"pc_catid": "5"})));
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["class_code"]["Required::NON_EXISTENT_KEY"],
            "class_code must be provided, but does not exist"
        );
    }

    #[test]
    fn references_to_missing_facilities_and_providers_are_400() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM list_options", found())
            .on_query("FROM facility", Rows::default())
            .on_query("FROM users", Rows::default());
        let body = json!({"pc_catid": 5, "class_code": "AMB", "facility_id": 99, "provider_id": "98", "supervisor_id": 0, "date": "2024-13-01"});
        let response = host.call::<Encounter>(TestRequest::post(&path(""), body));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["facility_id"]["Callback::INVALID_VALUE"],
            "facility_id is invalid"
        );
        assert_eq!(
            errors["provider_id"]["Callback::INVALID_VALUE"],
            "provider_id is invalid"
        );
        assert_eq!(
            errors["date"]["DateTime::INVALID_VALUE"],
            "date must be a valid date"
        );
        assert!(
            errors.get("supervisor_id").is_none(),
            "0 means no supervisor"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn an_encounter_for_a_missing_patient_is_404_and_writes_nothing() {
        let mut host = MockHost::new().on_query("FROM patient_data", Rows::default());
        let response = host.call::<Encounter>(TestRequest::post(
            &path(""),
            json!({"pc_catid": 5, "class_code": "AMB"}),
        ));
        assert_eq!(response.status, 404);
        assert_eq!(response.body_json()["data"], json!([]));
        assert!(host.writes().is_empty());
        let response = host.call::<Encounter>(TestRequest::get(&path("")));
        assert_eq!(response.status, 404);
    }

    #[test]
    fn update_is_scoped_by_the_patient_in_the_path() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_execute("UPDATE form_encounter", 0);
        let response = host.call::<Encounter>(TestRequest::put(
            &path(&format!("/{EUUID}")),
            json!({"reason": "Follow-up"}),
        ));
        assert_eq!(
            response.status, 404,
            "an encounter of another patient is not found"
        );
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.ends_with(r#"WHERE "uuid" = $3 AND "pid" = $4"#),
            "{sql}"
        );
        assert_eq!(params[3], Value::Integer(7));
    }

    #[test]
    fn update_validates_and_answers_the_record() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM list_options", Rows::default())
            .on_execute("UPDATE form_encounter", 1)
            .on_query(r#"WHERE fe."pid""#, encounter_rows());
        let response = host.call::<Encounter>(TestRequest::put(
            &path(&format!("/{EUUID}")),
            json!({"class_code": "NOPE"}),
        ));
        assert_eq!(response.status, 400);
        assert!(host.writes().is_empty());
        let response = host.call::<Encounter>(TestRequest::put(
            &path(&format!("/{EUUID}")),
            json!({"reason": "Follow-up"}),
        ));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["eid"], 41);
    }

    #[test]
    fn lists_are_the_patients_newest_first() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM form_encounter", encounter_rows());
        let response = host.call::<Encounter>(TestRequest::get(&path("?_limit=10")));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["euuid"], EUUID);
        let (sql, params) = &host.queries()[1];
        assert!(
            sql.contains(
                r#"WHERE fe."pid" = $1 ORDER BY fe."encounter" DESC NULLS LAST, fe."id" ASC LIMIT $2 OFFSET $3"#
            ),
            "{sql}"
        );
        assert_eq!(params[0], Value::Integer(7));
    }

    #[test]
    fn get_one_of_another_patient_is_404() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM form_encounter", Rows::default());
        let response = host.call::<Encounter>(TestRequest::get(&path(&format!("/{EUUID}"))));
        assert_eq!(response.status, 404);
        assert_eq!(
            host.queries()[1].1[..2],
            [Value::Integer(7), Value::from(EUUID)]
        );
    }

    #[test]
    fn the_portal_reads_the_callers_own_encounters() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data WHERE uuid", patient())
            .on_query("FROM form_encounter", encounter_rows());
        let response =
            host.call::<Encounter>(TestRequest::get("/portal/patient/encounter").as_patient(PUUID));
        assert_eq!(response.status, 200);
        assert_eq!(host.queries()[0].1, vec![Value::from(PUUID)]);
        let response = host.call::<Encounter>(
            TestRequest::get(&format!("/portal/patient/encounter/{EUUID}")).as_patient(PUUID),
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"]["eid"], 41);
        let response = host.call::<Encounter>(TestRequest::get("/portal/patient/encounter"));
        assert_eq!(response.status, 404, "a portal call needs a bound patient");
    }
}
