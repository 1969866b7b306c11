//! OpenEMR immunizations (`immunizations`, vaccines coded in CVX): the standard API's
//! read-only routes across patients, `GET /api/immunization` (filtered by OpenEMR's
//! search fields, sorted and paged) and `GET /api/immunization/:uuid`, in OpenEMR's
//! legacy envelope, with ImmunizationService's derived fields: the patient's uuid, the
//! CVX text, and the titles and HL7 codes of the route, site and refusal reason.

use hearth_emr::prelude::*;

/// The immunization resource.
pub struct Immunization;

impl Resource for Immunization {
    const NAME: &'static str = "immunization";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Immunizations (OpenEMR immunizations, CVX)";
    const WORDS: &'static [Words] = &[Words::new("immunization", "Immunizations", "immunizations")];
    const READS: &'static [&'static str] = &[
        "immunizations",
        "patient_data",
        "users",
        "codes",
        "list_options",
        "form_encounter",
    ];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/immunization", "immunization.s", list)
            .acl("patients/med")
            .legacy()
            .summary("List immunizations")
            .params(LIST_PARAMS)
            .filters(FILTERS)
            .answers_list(RECORD),
        Route::get("/api/immunization/:uuid", "immunization.r", get_one)
            .acl("patients/med")
            .legacy()
            .summary("Read an immunization")
            .answers(RECORD),
    ];
}

hearth_sdk::export!(Immunization);

/// Paging, sorting and the patient's uuid.
const LIST_PARAMS: &[Param] = &[
    Param::query(
        "_sort",
        Schema::String,
        "Comma-separated field names; a leading - sorts descending",
    ),
    Param::query(
        "_limit",
        Schema::Numeric,
        "Rows per page (every row when absent)",
    ),
    Param::query("_offset", Schema::Numeric, "Rows to skip"),
    Param::query("puuid", Schema::Format("uuid"), "The patient's uuid"),
];

/// OpenEMR's search fields (the `immunizations` columns), matched exactly.
const FILTERS: &[Column] = &[
    Column::int("id"),
    Column::text("uuid"),
    Column::int("patient_id"),
    Column::datetime("administered_date"),
    Column::text("cvx_code"),
    Column::text("manufacturer"),
    Column::text("lot_number"),
    Column::int("administered_by_id"),
    Column::text("route"),
    Column::text("administration_site"),
    Column::text("completion_status"),
    Column::int("added_erroneously"),
    Column::int("encounter_id"),
];

/// One immunization as answered: every `immunizations` column and the derived fields.
const RECORD: Schema = Schema::Row(&[
    emr::IDS,
    &[
        Column::text("puuid"),
        Column::int("patient_id"),
        Column::datetime("administered_date"),
        Column::text("cvx_code"),
        Column::text_or_null("cvx_code_text"),
        Column::text("manufacturer"),
        Column::text("lot_number"),
        Column::int("administered_by_id"),
        Column::text("administered_by"),
        Column::text_or_null("administered_by_uuid"),
        Column::date("education_date"),
        Column::date("vis_date"),
        Column::text("note"),
        Column::datetime("create_date"),
        Column::datetime("update_date"),
        Column::real("amount_administered"),
        Column::text("amount_administered_unit"),
        Column::date("expiration_date"),
        Column::text("route"),
        Column::text_or_null("route_display"),
        Column::text_or_null("route_code"),
        Column::text("administration_site"),
        Column::text_or_null("site_display"),
        Column::text_or_null("site_code"),
        Column::int("added_erroneously"),
        Column::text("completion_status"),
        Column::text("information_source"),
        Column::text("refusal_reason"),
        Column::text_or_null("refusal_reason_display"),
        Column::text_or_null("refusal_reason_code"),
        Column::int("refusal"),
        Column::text("reason_code"),
        Column::text("reason_description"),
        Column::int("encounter_id"),
        Column::text_or_null("euuid"),
    ],
]);

/// The immunization, its patient, vaccine (CVX, code type 100), administering user,
/// encounter and list titles.
const SELECT: &str = "SELECT i.*, p.uuid AS puuid, cvx.code_text AS cvx_code_text, \
    u.uuid AS administered_by_uuid, r.title AS route_display, r.notes AS route_code, \
    s.title AS site_display, s.notes AS site_code, rr.title AS refusal_reason_display, \
    rr.notes AS refusal_reason_code, \
    CASE WHEN i.refusal_reason = '' THEN 0 ELSE 1 END AS refusal, fe.uuid AS euuid \
    FROM immunizations i JOIN patient_data p ON p.pid = i.patient_id \
    LEFT JOIN codes cvx ON cvx.code_type = 100 AND cvx.code = i.cvx_code \
    LEFT JOIN users u ON u.id = i.administered_by_id \
    LEFT JOIN list_options r ON r.list_id = 'drug_route' AND r.option_id = i.route \
    LEFT JOIN list_options s ON s.list_id = 'immunization_administered_site' \
    AND s.option_id = i.administration_site \
    LEFT JOIN list_options rr ON rr.list_id = 'immunization_refusal_reason' \
    AND rr.option_id = i.refusal_reason \
    LEFT JOIN form_encounter fe ON fe.encounter = i.encounter_id AND fe.pid = i.patient_id";

/// Newest first unless asked otherwise.
const SORT: Sort = Sort {
    alias: "i",
    keys: &[
        SortKey::column("id"),
        SortKey::column("administered_date"),
        SortKey::column("cvx_code"),
        SortKey::column("manufacturer"),
        SortKey::column("lot_number"),
        SortKey::column("expiration_date"),
        SortKey::column("completion_status"),
        SortKey::column("create_date"),
        SortKey::column("update_date"),
        SortKey::renamed("patient_id", "i.patient_id"),
    ],
    default: "-administered_date",
    tiebreak: "-id",
};

/// `GET /api/immunization`: every patient's immunizations, or one patient's
/// (`puuid`), filtered by OpenEMR's search fields.
fn list(req: &Request) -> Result<Response> {
    let mut search = Search::on("i");
    search.filter_exact(req.query_pairs(), FILTERS)?;
    if let Some(puuid) = req.query("puuid") {
        if !hearth_sdk::request::is_uuid(puuid) {
            return Err(ApiError::invalid(
                "puuid",
                "Uuid::INVALID_UUID",
                "puuid must be a valid UUID (valid format)",
            ));
        }
        search.condition("p.uuid = $?", vec![Value::from(puuid.to_ascii_lowercase())]);
    }
    search.sort_by(req, &SORT)?;
    crud::page(req, &search, SELECT, Json::from_row)
}

/// `GET /api/immunization/:uuid`: one immunization, or a 404.
fn get_one(req: &Request) -> Result<Response> {
    let mut search = Search::on("i");
    search.equals("uuid", req.uuid("uuid")?);
    Ok(req.ok(crud::find(&search, SELECT, Json::from_row)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-0000000000b1";

    #[test]
    fn lists_filter_by_openemrs_fields_and_the_patient() {
        let mut host = MockHost::new().on_query("FROM immunizations", Rows::default());
        let response = host.call::<Immunization>(TestRequest::get(&format!(
            "/api/immunization?cvx_code=140&patient_id=7&puuid={UUID}&ignored=1"
        )));
        assert_eq!(response.status, 200, "{}", response.text());
        let (sql, params) = &host.queries()[0];
        assert!(sql.contains(r#"i."cvx_code" = $1"#), "{sql}");
        assert!(sql.contains("p.uuid = $3"), "{sql}");
        assert_eq!(
            params[..3],
            [Value::from("140"), Value::Integer(7), Value::from(UUID)]
        );
        assert!(
            sql.contains(r#"ORDER BY i."administered_date" DESC"#),
            "{sql}"
        );
        let response =
            host.call::<Immunization>(TestRequest::get("/api/immunization?patient_id=x"));
        assert_eq!(response.status, 400);
        let response = host.call::<Immunization>(TestRequest::get("/api/immunization?puuid=nope"));
        assert_eq!(response.status, 400);
    }

    #[test]
    fn an_unknown_immunization_is_404() {
        let mut host = MockHost::new().on_query("FROM immunizations", Rows::default());
        let response =
            host.call::<Immunization>(TestRequest::get(&format!("/api/immunization/{UUID}")));
        assert_eq!(response.status, 404);
        let response = host.call::<Immunization>(TestRequest::get("/api/immunization/nope"));
        assert_eq!(response.status, 400);
    }
}
