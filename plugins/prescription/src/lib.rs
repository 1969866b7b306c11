//! OpenEMR drugs and prescriptions: the formulary (`drugs`, read-only, in OpenEMR's
//! legacy envelope: `GET /api/drug`, `GET /api/drug/:uuid`) and prescriptions
//! (`prescriptions`, in the modern envelope: list, read, create, and a soft delete that
//! sets `active = 0`, as OpenEMR's does). A prescription answers with every column plus
//! the uuids of its patient, encounter, drug and prescriber and the titles of its form,
//! unit, route and interval (OpenEMR's lists).

use hearth_emr::prelude::*;

/// The drug and prescription resources.
pub struct Prescription;

impl Resource for Prescription {
    const NAME: &'static str = "prescription";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Drugs and prescriptions (OpenEMR drugs, prescriptions)";
    const WORDS: &'static [Words] = &[
        Words::new("drug", "Drugs", "the drug formulary"),
        Words::new("prescription", "Prescriptions", "prescriptions"),
    ];
    const READS: &'static [&'static str] = &[
        "drugs",
        "drug_inventory",
        "prescriptions",
        "patient_data",
        "users",
        "form_encounter",
        "list_options",
    ];
    const WRITES: &'static [&'static str] = &["prescriptions"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/drug", "drug.s", list_drugs)
            .acl("patients/med")
            .legacy()
            .summary("List drugs")
            .params(emr::LIST_PARAMS)
            .filters(DRUG_FILTERS)
            .answers_list(DRUG),
        Route::get("/api/drug/:uuid", "drug.r", get_drug)
            .acl("patients/med")
            .legacy()
            .summary("Read a drug")
            .answers(DRUG),
        Route::get("/api/prescription", "prescription.s", list_prescriptions)
            .acl("patients/med")
            .summary("List prescriptions")
            .params(PRESCRIPTION_PARAMS)
            .filters(PRESCRIPTION_FILTERS)
            .answers_list(PRESCRIPTION),
        Route::get(
            "/api/prescription/:uuid",
            "prescription.r",
            get_prescription,
        )
        .acl("patients/med")
        .summary("Read a prescription")
        .answers(PRESCRIPTION),
        Route::post("/api/prescription", "prescription.c", create)
            .acl("patients/med:write")
            .summary("Create a prescription")
            .accepts(Schema::Body(&[WRITABLE], &["drug", "patient_id"]))
            .answers(emr::CREATED_ID_UUID),
        Route::delete("/api/prescription/:uuid", "prescription.d", delete)
            .acl("patients/med:write")
            .summary("Delete a prescription (it becomes inactive)")
            .answers(DELETED),
    ];
}

hearth_sdk::export!(Prescription);

/// `{"message": "record deleted"}`.
const DELETED: Schema = Schema::Object(&[Prop::new("message", Schema::String).required()]);

/// The `drugs` columns a list filters on exactly.
const DRUG_FILTERS: &[Column] = &[
    Column::int("drug_id"),
    Column::text("uuid"),
    Column::text("name"),
    Column::text("ndc_number"),
    Column::text("form"),
    Column::text("route"),
    Column::text("related_code"),
    Column::text("drug_code"),
    Column::int("active"),
    Column::int("consumable"),
    Column::int("dispensable"),
];

/// A drug as answered: its `drugs` columns and the stock on hand over its lots.
const DRUG: Schema = Schema::Row(&[&[
    Column::int("drug_id"),
    Column::text("uuid"),
    Column::text("name"),
    Column::text("ndc_number"),
    Column::int("on_order"),
    Column::real("reorder_point"),
    Column::real("max_level"),
    Column::text("reactions"),
    Column::text("form"),
    Column::text("size"),
    Column::text("unit"),
    Column::text("route"),
    Column::int("substitute"),
    Column::text("related_code"),
    Column::real("cyp_factor"),
    Column::int("active"),
    Column::int("allow_combining"),
    Column::int("allow_multiple"),
    Column::text("drug_code"),
    Column::int("consumable"),
    Column::int("dispensable"),
    Column::datetime("date_created"),
    Column::datetime("last_updated"),
    Column::int("on_hand"),
]]);

const DRUG_SELECT: &str = "SELECT d.*, \
    (SELECT CAST(COALESCE(SUM(di.on_hand), 0) AS BIGINT) FROM drug_inventory di \
    WHERE di.drug_id = d.drug_id AND di.destroy_date IS NULL) AS on_hand FROM drugs d";

const DRUG_SORT: Sort = Sort {
    alias: "d",
    keys: &[
        SortKey::column("drug_id"),
        SortKey::column("name"),
        SortKey::column("ndc_number"),
        SortKey::column("form"),
        SortKey::column("last_updated"),
    ],
    default: "name",
    tiebreak: "drug_id",
};

/// `GET /api/drug`: the formulary, filtered by the `drugs` columns.
fn list_drugs(req: &Request) -> Result<Response> {
    let mut search = Search::on("d");
    search
        .filter_exact(req.query_pairs(), DRUG_FILTERS)?
        .sort_by(req, &DRUG_SORT)?;
    crud::page(req, &search, DRUG_SELECT, Json::from_row)
}

/// `GET /api/drug/:uuid`: one drug, or a 404.
fn get_drug(req: &Request) -> Result<Response> {
    let mut search = Search::on("d");
    search.equals("uuid", req.uuid("uuid")?);
    Ok(req.ok(crud::find(&search, DRUG_SELECT, Json::from_row)?))
}

/// The `prescriptions` columns a body may set (OpenEMR accepts any column; Hearth
/// leaves out the keys, the uuid, `active` and the audit columns it sets itself).
const WRITABLE: &[Column] = &[
    Column::int("patient_id"),
    Column::int("filled_by_id"),
    Column::int("pharmacy_id"),
    Column::int("provider_id"),
    Column::int("encounter"),
    Column::date("start_date"),
    Column::text("drug"),
    Column::int("drug_id"),
    Column::text("rxnorm_drugcode"),
    Column::text("form"),
    Column::text("dosage"),
    Column::text("quantity"),
    Column::text("size"),
    Column::text("unit"),
    Column::text("route"),
    Column::text("interval"),
    Column::int("substitute"),
    Column::int("refills"),
    Column::int("per_refill"),
    Column::date("filled_date"),
    Column::int("medication"),
    Column::text("note"),
    Column::text("site"),
    Column::text("prescriptionguid"),
    Column::int("erx_source"),
    Column::int("erx_uploaded"),
    Column::text("drug_info_erx"),
    Column::text("external_id"),
    Column::date("end_date"),
    Column::text("indication"),
    Column::text("prn"),
    Column::int("ntx"),
    Column::int("rtx"),
    Column::date("txDate"),
    Column::text("usage_category"),
    Column::text("usage_category_title"),
    Column::text("request_intent"),
    Column::text("request_intent_title"),
    Column::text("drug_dosage_instructions"),
    Column::text("diagnosis"),
];

/// The `prescriptions` columns a list filters on exactly.
const PRESCRIPTION_FILTERS: &[Column] = &[
    Column::int("id"),
    Column::text("uuid"),
    Column::int("patient_id"),
    Column::int("provider_id"),
    Column::int("encounter"),
    Column::text("drug"),
    Column::int("drug_id"),
    Column::text("rxnorm_drugcode"),
    Column::int("active"),
    Column::date("start_date"),
    Column::date("end_date"),
    Column::text("request_intent"),
    Column::text("usage_category"),
];

/// Paging, sorting and the patient's uuid.
const PRESCRIPTION_PARAMS: &[Param] = &[
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
    Param::query(
        "patient.uuid",
        Schema::Format("uuid"),
        "The patient's uuid (also `puuid`)",
    ),
];

/// A prescription as answered: every column and the derived ones.
const PRESCRIPTION: Schema = Schema::Row(&[
    emr::IDS,
    WRITABLE,
    &[
        Column::int("active"),
        Column::datetime("date_added"),
        Column::datetime("date_modified"),
        Column::datetime("datetime"),
        Column::text("user"),
        Column::int("created_by"),
        Column::int("updated_by"),
        Column::text("puuid"),
        Column::text_or_null("euuid"),
        Column::text_or_null("drug_uuid"),
        Column::text_or_null("provider_uuid"),
        Column::text_or_null("form_title"),
        Column::text_or_null("unit_title"),
        Column::text_or_null("route_title"),
        Column::text_or_null("route_code"),
        Column::text_or_null("interval_title"),
    ],
]);

const PRESCRIPTION_SELECT: &str = "SELECT rx.*, p.uuid AS puuid, fe.uuid AS euuid, \
    d.uuid AS drug_uuid, u.uuid AS provider_uuid, lf.title AS form_title, \
    lu.title AS unit_title, lr.title AS route_title, lr.notes AS route_code, \
    li.title AS interval_title \
    FROM prescriptions rx JOIN patient_data p ON p.pid = rx.patient_id \
    LEFT JOIN form_encounter fe ON fe.encounter = rx.encounter AND fe.pid = rx.patient_id \
    LEFT JOIN drugs d ON d.drug_id = rx.drug_id \
    LEFT JOIN users u ON u.id = rx.provider_id \
    LEFT JOIN list_options lf ON lf.list_id = 'drug_form' AND lf.option_id = rx.form \
    LEFT JOIN list_options lu ON lu.list_id = 'drug_units' AND lu.option_id = rx.unit \
    LEFT JOIN list_options lr ON lr.list_id = 'drug_route' AND lr.option_id = rx.route \
    LEFT JOIN list_options li ON li.list_id = 'drug_interval' AND li.option_id = rx.\"interval\"";

const PRESCRIPTION_SORT: Sort = Sort {
    alias: "rx",
    keys: &[
        SortKey::column("id"),
        SortKey::column("drug"),
        SortKey::column("start_date"),
        SortKey::column("end_date"),
        SortKey::column("date_added"),
        SortKey::column("date_modified"),
        SortKey::column("patient_id"),
        SortKey::column("active"),
    ],
    default: "-date_added",
    tiebreak: "-id",
};

/// `GET /api/prescription`: every patient's prescriptions, or one patient's
/// (`patient.uuid` or `puuid`), filtered by the `prescriptions` columns.
fn list_prescriptions(req: &Request) -> Result<Response> {
    let mut search = Search::on("rx");
    search.filter_exact(req.query_pairs(), PRESCRIPTION_FILTERS)?;
    for key in ["patient.uuid", "puuid"] {
        if let Some(puuid) = req.query(key) {
            if !hearth_sdk::request::is_uuid(puuid) {
                return Err(ApiError::invalid(
                    key,
                    "Uuid::INVALID_UUID",
                    &format!("{key} must be a valid UUID (valid format)"),
                ));
            }
            search.condition("p.uuid = $?", vec![Value::from(puuid.to_ascii_lowercase())]);
        }
    }
    search.sort_by(req, &PRESCRIPTION_SORT)?;
    crud::page(req, &search, PRESCRIPTION_SELECT, Json::from_row)
}

/// `GET /api/prescription/:uuid`: one prescription (also an inactive one), or a 404 —
/// in both settings: OpenEMR's PrescriptionRestController answers its own 404 here,
/// not the 400 of the other modern-envelope reads.
fn get_prescription(req: &Request) -> Result<Response> {
    match read(&req.uuid("uuid")?) {
        Ok(found) => Ok(req.ok(found)),
        Err(ApiError::NotFound) => Err(ApiError::Response(Response::envelope(
            404,
            Json::empty_array(),
        ))),
        Err(other) => Err(other),
    }
}

fn read(uuid: &str) -> Result<Json> {
    let mut search = Search::on("rx");
    search.equals("uuid", uuid);
    crud::find(&search, PRESCRIPTION_SELECT, Json::from_row)
}

/// OpenEMR's PrescriptionValidator: the drug and the patient are required; Hearth also
/// checks that the patient, prescriber, drug and encounter exist and that the dates are
/// in order, so nothing points nowhere.
fn rules(v: &mut Validator<'_>) {
    v.required("drug", "drug").length_between(1, 255);
    v.required("patient_id", "patient_id")
        .numeric()
        .exists_in("patient_data", Column::int("pid"));
    v.optional("provider_id", "provider_id")
        .numeric()
        .reference("users", Column::int("id"));
    v.optional("drug_id", "drug_id")
        .numeric()
        .reference("drugs", Column::int("drug_id"));
    v.optional("encounter", "encounter")
        .numeric()
        .reference("form_encounter", Column::int("encounter"));
    for key in ["refills", "per_refill", "substitute"] {
        v.optional(key, key).numeric();
    }
}

/// `POST /api/prescription`: 201 `{"id", "uuid"}`, or a 400 naming each bad field.
fn create(req: &Request) -> Result<Response> {
    let fields = req.fields(WRITABLE, rules)?;
    let (start, end) = (fields.get("start_date"), fields.get("end_date"));
    if let (Some(Value::Text(start)), Some(Value::Text(end))) = (start, end)
        && end < start
    {
        return Err(ApiError::invalid(
            "end_date",
            "Date::BEFORE_START",
            "end_date must not be before start_date",
        ));
    }
    if let Some(Value::Integer(encounter)) = fields.get("encounter")
        && let Some(Value::Integer(pid)) = fields.get("patient_id")
        && *encounter != 0
    {
        emr::require_encounter(*pid, *encounter).map_err(|_| {
            ApiError::invalid(
                "encounter",
                "Callback::INVALID_VALUE",
                "encounter is not an encounter of the patient",
            )
        })?;
    }
    let now = hearth_sdk::time::now().datetime();
    let uuid = hearth_sdk::new_uuid();
    let user = req.caller().username.clone();
    let mut insert = Insert::into("prescriptions");
    insert
        .set("uuid", uuid.as_str())
        .set("date_added", now.as_str())
        .set("date_modified", now.as_str())
        .set("datetime", now.as_str())
        .set("active", 1)
        .set("user", user.as_str())
        .fields(&fields);
    let id = insert.insert_id()?;
    Ok(req.created(Json::object().field("id", id).field("uuid", uuid).end()))
}

/// `DELETE /api/prescription/:uuid`: OpenEMR's soft delete (`active = 0`); 404 for an
/// unknown uuid (OpenEMR: 400).
fn delete(req: &Request) -> Result<Response> {
    let uuid = req.uuid("uuid")?;
    Update::table("prescriptions")
        .set("active", 0)
        .set("date_modified", hearth_sdk::time::now().datetime())
        .filter("uuid", uuid.as_str())
        .apply()?;
    Ok(req.ok(Json::object().field("message", "record deleted").end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const UUID: &str = "90cde167-0000-4000-8000-0000000000c1";

    #[test]
    fn a_prescription_needs_a_drug_and_a_patient() {
        let mut host = MockHost::new();
        let response = host.call::<Prescription>(TestRequest::post("/api/prescription", json!({})));
        assert_eq!(response.status, 400, "{}", response.text());
        let errors = &response.body_json()["validationErrors"];
        assert!(errors["drug"].is_object() && errors["patient_id"].is_object());
        assert!(host.writes().is_empty());
    }

    #[test]
    fn delete_sets_the_prescription_inactive() {
        let mut host = MockHost::new().on_execute("UPDATE prescriptions", 1);
        let response =
            host.call::<Prescription>(TestRequest::delete(&format!("/api/prescription/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["message"], "record deleted");
        let (sql, params) = &host.writes()[0];
        assert!(sql.contains(r#""active""#), "{sql}");
        assert_eq!(params[0], Value::Integer(0));
        let response = host.call::<Prescription>(TestRequest::delete("/api/prescription/nope"));
        assert_eq!(response.status, 400);
    }
}
